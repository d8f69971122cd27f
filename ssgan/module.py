"""Lightning modules: the K+1-class semi-supervised GAN and its supervised-only baseline.

Both train the same discriminator net with manual optimization, keep an exponential moving
average (EMA) of its weights for evaluation, and log ``{split}/{name}`` metrics.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from ssgan import losses
from ssgan.callbacks import last_epoch_fraction
from ssgan.config import class_path
from ssgan.errors import UserError, first_line
from ssgan.nets import build_discriminator, build_generator, resolve_arch, uniform_noise
from ssgan.nets.layers import data_dependent_init

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def _numpy_rng_state() -> tuple:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)


def metric_safe(name: str) -> str:
    """A class name as a metric-key part: "T-shirt/top" -> "T-shirt_top"."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def class_metric_names(class_names: Sequence[str]) -> list[str]:
    """Each class's metric-key part (``metric_safe``); names that come out alike ("a b" and "a_b") get
    their class index appended, so that no class's metric overwrites another's."""
    safe = [metric_safe(name) for name in class_names]
    alike = {name for name in safe if safe.count(name) > 1}
    names = [f"{name}_{index}" if name in alike else name for index, name in enumerate(safe)]
    if len(set(names)) < len(names):  # a suffixed name met another class's own ("a b", "a_b", "a_b_1"): all suffixed,
        names = [f"{name}_{index}" for index, name in enumerate(safe)]  # which "<name>_<index>" keeps apart
    return names


log = logging.getLogger(__name__)

# an Adam learning rate above which a conv net is warned about: the MLP recipe's 3e-3 is ten times the conv recipe's 3e-4
CONV_LR_WARN_ABOVE = 1e-3


def refuse_low_precision_weights(precision: str | int) -> None:
    """A one-line ``UserError`` for a ``trainer.precision`` that keeps the weights in another dtype than
    fp32 (``bf16-true``, ``16-true``, ``64-true``): the nets, their data init and the EMA average are
    written for fp32 weights, with lower-precision compute under autocast (``*-mixed``)."""
    text = "64-true" if str(precision) == "64" else str(precision)  # Lightning reads 64 as 64-true
    if text == "64-true":  # higher, not lower: the fix is fp32 itself
        raise UserError(f"trainer.precision={precision} is not supported (the nets, their data init and the EMA are "
                        "written for fp32 weights); use trainer.precision=32, the default")
    if text.endswith("-true") and text != "32-true":
        raise UserError(f"trainer.precision={precision} is not supported (the weights must stay fp32); use "
                        "trainer.precision=bf16-mixed (or 16-mixed on a GPU) for lower-precision compute, or 32")


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite; training stops before the bad step is applied."""


def diverged_message(error: DivergenceError, last_good: Any, clip_setting: str) -> str:
    """The one line for a fit that diverged, the same in both entry points: what diverged, the last good
    checkpoint (``last_good``, or None), and ``clip_setting``, the entry point's spelling of gradient clipping."""
    if last_good is None:
        return f"training diverged: {error}; no checkpoint was saved before it (try a lower learning rate or {clip_setting})"
    return (f"training diverged: {error}; the last good checkpoint is {last_good} (try a lower learning rate or "
            f"{clip_setting}, resuming from it in a new folder)")


def check_optimizer_factory(factory: OptimizerFactory | None, name: str) -> None:
    """Builds the optimizer once on a throwaway parameter, so that a bad setting (``lr=-0.1``) fails
    now, in one line, not at the start of training."""
    if factory is None:
        return
    parameter = nn.Parameter(torch.zeros(1))
    try:
        optimizer = factory([parameter])
    except Exception as error:  # torch's ValueError for lr=-0.1, an IndexError for betas=[0.5], ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = _text_setting(factory, name)
        if text is not None:  # Hydra reads a mistyped number (lr=3e-3x, betas=[0.5,abc]) as text
            raise UserError(f"{name} does not build: {text}") from None
        raise UserError(f"{name} does not build: {type(error).__name__}: {reason} (check its settings, "
                        f"such as {name}.lr and {name}.betas)") from None
    # the steps call step() once a batch on dense gradients, without a closure: LBFGS (which needs one) and
    # SparseAdam (sparse gradients only) stopped the first batch with a traceback from inside torch
    parameter.grad = torch.zeros_like(parameter)
    try:
        optimizer.step()
    except Exception as error:
        raise UserError(f"{name} ({type(optimizer).__module__}.{type(optimizer).__name__}) cannot take ssgan's steps, one "
                        f"step() a batch on dense gradients without a closure ({first_line(error)}); use an optimizer such as "
                        "torch.optim.Adam (the default), AdamW or SGD") from None


def _text_setting(factory: OptimizerFactory, name: str) -> str | None:
    """For a factory (a ``functools.partial``) given text where its optimizer's default is a number:
    which setting, and that default as the example; else None."""
    import inspect

    def shown(value: Any) -> str:  # as it is written on the command line: [0.5,abc]
        return f"[{','.join(shown(item) for item in value)}]" if isinstance(value, (list, tuple)) else str(value)

    def has_text(value: Any) -> bool:
        return isinstance(value, str) or (isinstance(value, (list, tuple)) and any(has_text(item) for item in value))

    optimizer, settings = getattr(factory, "func", None), getattr(factory, "keywords", None) or {}
    try:
        defaults = {key: parameter.default for key, parameter in inspect.signature(optimizer).parameters.items()}
    except (TypeError, ValueError):  # not a partial, or a callable without a signature
        return None
    for key, value in settings.items():
        default = defaults.get(key)
        if has_text(value) and isinstance(default, (int, float, list, tuple)) and not isinstance(default, bool):
            return (f"{name}.{key}={shown(value)} holds text where a number belongs; write e.g. "
                    f"{name}.{key}={shown(default)} ({optimizer.__name__}'s default)")
    return None


def optimizer_factories(model: "ClassifierModule") -> list[tuple[str, Callable[..., torch.optim.Optimizer]]]:
    """The model's optimizer factories by setting name: the discriminator's, and the generator's if it has one."""
    generator = getattr(model, "optimizer_g_factory", None)
    return [("optimizer_d", model.optimizer_d_factory)] + ([("optimizer_g", generator)] if generator is not None else [])


def refuse_another_module(ckpt_path: str, checkpoint: dict[str, Any], model: "ClassifierModule",
                          choose: Callable[[str], str]) -> None:
    """A one-line ``UserError`` if ``checkpoint`` was written by another module class than ``model``'s (an
    ``SSGAN`` run resumed as ``model=supervised``): the nets differ, and Lightning's error lists weight names.
    ``choose(class_path)`` spells the class as the entry point takes it (``model=ssgan``)."""
    recorded = checkpoint.get("ssgan_module")
    built = class_path(type(model))
    if not isinstance(recorded, str) or recorded == built:
        return
    # looked up only in modules already imported: a checkpoint is data and makes ssgan import nothing (a user's
    # own model class, whose module this run has not imported, is compared by its name)
    module_name, _, name = recorded.rpartition(".")
    module = sys.modules.get(module_name)
    recorded_type = getattr(module, name, None) if module is not None else None
    if recorded_type is not None and not (isinstance(recorded_type, type) and issubclass(recorded_type, ClassifierModule)):
        raise UserError(f"{ckpt_path} records its model class as {recorded}, which is not an ssgan model; the checkpoint "
                        "is damaged or not ssgan's")
    # a subclass of the recorded class (a user's SSGAN with a changed step), or its base, has the same nets
    related = isinstance(recorded_type, type) and (issubclass(type(model), recorded_type) or issubclass(recorded_type, type(model)))
    if not related:
        raise UserError(f"{ckpt_path} was written by {recorded}, and this run builds {built}; resume with "
                        f"{choose(recorded)}, or start a new run without ckpt_path")


def refuse_another_optimizer(ckpt_path: str, checkpoint: dict[str, Any], model: "ClassifierModule",
                             choose: Callable[[str, str], str]) -> None:
    """A one-line ``UserError`` if ``checkpoint`` was trained with other optimizer classes than ``model``'s
    factories build: its optimizer states (Adam's moments, SGD's momentum buffers) fit no other class, and
    Lightning would fail inside fit, or go on with the wrong state without a word. ``choose(setting, class_path)``
    spells the fix as the entry point takes it (``model.optimizer_d._target_=torch.optim.SGD``)."""
    trained_with = checkpoint.get("ssgan_optimizers")
    if not isinstance(trained_with, list):  # a checkpoint from before ssgan recorded them
        return
    for (setting, factory), recorded in zip(optimizer_factories(model), trained_with):
        built = class_path(type(factory([nn.Parameter(torch.zeros(1))])))
        if built != recorded:
            # torch.optim.adam.Adam is written torch.optim.Adam in configs
            shown = {path: path.replace(f".{path.split('.')[-2]}.", ".", 1) if path.startswith("torch.optim.") else path
                     for path in (built, recorded)}
            raise UserError(f"{ckpt_path} was trained with {shown[recorded]} as model.{setting}, and this run builds "
                            f"{shown[built]}, whose state it cannot take; resume with {choose(setting, shown[recorded])} "
                            "(and its settings), or start a new run from scratch")


def warn_if_the_conv_net_gets_a_high_lr(model: "ClassifierModule", choose: Callable[[str, str], str], tail: str = "") -> None:
    """Warns when a conv net's Adam runs above 1e-3, such as at the MLP recipe's 3e-3 that a ``data=cifar10`` run
    without its experiment gets: the reference conv recipe uses 3e-4, and on Fashion-MNIST the conv net reached
    23 % at 3e-3 against 61 % with that recipe (docs/benchmarks.md). ``choose(setting, value)`` spells a setting
    (``optimizer_d.lr``, ``feature_matching``) as the entry point takes it; other optimizers are left alone."""
    if model.arch != "conv":
        return
    high: dict[str, float] = {}  # optimizer setting -> its largest learning rate, where that is too high
    for setting, factory in optimizer_factories(model):
        try:
            optimizer = factory([nn.Parameter(torch.zeros(1))])
        except Exception:  # an optimizer that takes no CPU parameter (a GPU-only one): not the Adam this is about
            continue
        if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
            lr = max(float(group["lr"]) for group in optimizer.param_groups)
            if lr > CONV_LR_WARN_ABOVE:
                high[setting] = lr
    if not high:
        return
    fixes = [choose(f"{setting}.lr", "0.0003") for setting in high]
    if getattr(model, "feature_matching", None) == "squared":  # the MLP recipe's distance; the conv recipe's is absolute
        fixes.append(choose("feature_matching", "absolute"))
    given = " ".join(choose(f"{setting}.lr", f"{lr:g}") for setting, lr in high.items())
    log.warning("the conv net trains with Adam at %s, above %g, where it learns poorly (the reference conv recipe's rate "
                "is 3e-4); set %s%s", given, CONV_LR_WARN_ABOVE, " ".join(fixes), tail)


def default_adam(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The reference optimizer: Adam, lr 3e-3, beta1 = 0.5 (fused: one kernel per step, the same update).

    torch's epsilon (``sqrt(v) + 1e-8``) stands for the reference's ``sqrt(v + 1e-8)``, which floors the step's
    denominator at 1e-4; ``eps=1e-4`` is the closest torch setting, and it moved Fashion-MNIST by less than the
    spread of single runs (docs/benchmarks.md, "The reference's Adam epsilon")."""
    return torch.optim.Adam(params, lr=3e-3, betas=(0.5, 0.999), fused=True)


class ClassifierModule(pl.LightningModule):
    """What the GAN and the baseline share: the discriminator, its EMA, evaluation and the lr schedule.

    Args:
        image_shape: (C, H, W) of the images; the datamodule provides it.
        num_classes: K, the number of real classes.
        arch: discriminator/generator architecture: ``auto`` (the CIFAR conv net for 32x32 RGB, the
            MNIST MLP otherwise), ``mlp`` or ``conv``.
        optimizer_d: factory building the discriminator's optimizer from its parameters.
        lr_decay_start: fraction of ``max_epochs`` after which the learning rate decays linearly,
            reaching 0 one epoch after the last, as the reference CIFAR-10 and SVHN scripts'
            ``lr * min(3 - epoch/400, 1)`` over 1200 epochs does (2/3; with 20 epochs, epochs 14-19 use
            0.9, 0.75, ..., 0.15 of the rate); 1 keeps it constant, as the reference MNIST script does
            over its 300 epochs (``experiment=mnist_100``).
        data_init: initialise the discriminator's weight-normalised layers from the first training
            batch (the reference does so), unless the weights come from a checkpoint.
        ema_decay: decay of the averaged discriminator used for validation, test and prediction;
            ``None`` evaluates the raw weights. The early steps use ``min(decay, (1+n)/(10+n))``.
        gradient_clip_val: clips each step's gradient norm, if set.
        class_names: names of the K classes, kept in the checkpoint.
        net_kwargs: extra keyword arguments of the discriminator net (e.g. ``hidden_noise`` of the MLP).
        torch_compile: compiles the trained nets with ``torch.compile`` (fuses the elementwise work
            and draws the noise in compiled code; the first steps pay for the compilation).
        channels_last: keeps the conv nets' weights and inputs in channels-last memory format
            (faster convolutions on recent CPUs and on tensor-core GPUs; no effect on the MLP).
        skip_nonfinite_batches: how many batches with a non-finite loss or gradient may be skipped
            (their steps not applied) before the run stops as diverged; 0 stops at the first.
    """

    # what validation logs: the metrics a checkpoint or early stopping can pick the best epoch by
    validation_metrics: tuple[str, ...] = ("val/acc",)

    def __init__(self, image_shape: Sequence[int], num_classes: int, arch: str = "auto",
                 optimizer_d: OptimizerFactory | None = None, lr_decay_start: float = 2 / 3,
                 ema_decay: float | None = 0.999, gradient_clip_val: float | None = None,
                 class_names: Sequence[str] | None = None, net_kwargs: dict[str, Any] | None = None,
                 data_init: bool = True, torch_compile: bool = False, channels_last: bool = False,
                 skip_nonfinite_batches: int = 0) -> None:
        super().__init__()
        if skip_nonfinite_batches < 0:
            raise UserError(f"model.skip_nonfinite_batches={skip_nonfinite_batches} is negative; use 0 (stop at the "
                            "first non-finite loss) or a number of batches to skip")
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise UserError(f"model.ema_decay={ema_decay} is outside [0, 1); use e.g. model.ema_decay=0.999, "
                            "or null to evaluate the raw discriminator")
        if lr_decay_start < 0:  # a factor below 1 from the first epoch, which no schedule means
            raise UserError(f"model.lr_decay_start={lr_decay_start} is negative; use a fraction of the training in [0, 1] "
                            "after which the learning rate decays, e.g. model.lr_decay_start=0.6667 (1: no decay)")
        if gradient_clip_val is not None and (isinstance(gradient_clip_val, bool) or not gradient_clip_val > 0):
            # 0 or a negative norm clipped nothing, without a word
            raise UserError(f"model.gradient_clip_val={gradient_clip_val} is no gradient norm to clip to; use a positive "
                            "number, e.g. model.gradient_clip_val=1, or null for no clipping")
        check_optimizer_factory(optimizer_d, "model.optimizer_d")
        self.skip_nonfinite_batches = skip_nonfinite_batches
        self.register_buffer("skipped_batches", torch.zeros((), dtype=torch.long))  # checkpointed
        self.automatic_optimization = False
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.arch = resolve_arch(arch, self.image_shape)
        self.optimizer_d_factory = optimizer_d or default_adam
        self.lr_decay_start, self.ema_decay, self.gradient_clip_val = lr_decay_start, ema_decay, gradient_clip_val
        self.class_names = list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
        if len(self.class_names) != num_classes:  # predictions and per-class metrics are named by position
            raise ValueError(f"class_names holds {len(self.class_names)} names for {num_classes} classes")
        self.discriminator = build_discriminator(self.arch, self.image_shape, num_classes, **(net_kwargs or {}))
        self.ema_discriminator = None
        if ema_decay is not None:
            self.ema_discriminator = copy.deepcopy(self.discriminator).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        # saved in checkpoints, so a resumed run does not initialise again
        self.data_init = data_init
        self.register_buffer("initialized", torch.tensor(not data_init))
        self._init_checked = False
        self._ema_steps = 0
        self._train_sums: torch.Tensor | None = None  # the epoch's running sums of the train/ metrics
        self._train_names: list[str] = []
        self._train_steps = 0
        self._val_finite: torch.Tensor | None = None  # whether every validation output of the epoch was finite
        # (first epoch, epochs) of the current learning-rate schedule; None: the whole run.
        # Self-training restarts the schedule for each round.
        self.schedule_stage: tuple[int, int] | None = None
        self._net_kwargs = dict(net_kwargs or {})
        low, high = self.discriminator.input_range
        # uint8 pixels -> the net's input range, as one multiply-add inside the step
        self.pixel_scale, self.pixel_offset = (high - low) / 255.0, low
        self.torch_compile, self.channels_last = torch_compile, channels_last and self.arch == "conv"
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        # the test report beyond accuracy: logged as test/f1_macro, test/ece, test/acc_class/<name>
        self.test_report = MetricCollection({
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
            "ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1"),
            "acc_per_class": MulticlassAccuracy(num_classes, average=None),
        })
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        self.test_confusion_matrix: torch.Tensor | None = None  # the last test's (K, K) counts

    # -- helpers ------------------------------------------------------------------------------
    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float in the discriminator's input range."""
        images = images.to(torch.float32, memory_format=self.memory_format)
        return images.mul_(self.pixel_scale).add_(self.pixel_offset)

    def trained_nets(self) -> list[nn.Module]:
        """The nets the optimizers train (the EMA copy is not among them)."""
        return [self.discriminator]

    def configure_model(self) -> None:
        """Applies the speed options (channels-last, torch.compile) to the trained nets, once."""
        if getattr(self, "_speed_options_applied", False):
            return
        self._speed_options_applied = True
        for net in self.trained_nets() + ([self.ema_discriminator] if self.ema_discriminator is not None else []):
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
        if self.torch_compile:
            for net in self.trained_nets():
                net.compile(dynamic=False)  # in place: the state dict keeps its keys

    @property
    def classifier(self) -> nn.Module:
        """The discriminator used for evaluation: the EMA copy when enabled."""
        return self.ema_discriminator if self.ema_discriminator is not None else self.discriminator

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (B, K) of uint8 or float images, from the evaluation discriminator."""
        if images.dtype == torch.uint8:
            images = self.to_input(images)
        return self.classifier(images)[0]

    @torch.no_grad()
    def initialize_from_batch(self, *images: torch.Tensor) -> None:
        """Data-dependent initialisation of the discriminator, once, on the first training batch."""
        if self._init_checked:  # a Python flag: no device sync on every step
            return
        self._init_checked = True
        if bool(self.initialized):  # e.g. restored from a checkpoint
            return
        data_dependent_init(self.discriminator, torch.cat(images))
        self.initialize_other_nets(max(len(images[-1]), 2))  # batch statistics need two
        self._take_rank_zero_weights(self.trained_nets())  # every rank initialised from its own batch
        if self.ema_discriminator is not None:
            self.ema_discriminator.load_state_dict(self.discriminator.state_dict())
        self.initialized.fill_(True)

    def initialize_other_nets(self, batch_size: int) -> None:
        """Data-dependent initialisation of the nets besides the discriminator (none here)."""

    def _take_rank_zero_weights(self, nets: Iterable[nn.Module]) -> None:
        """Under distributed training, copies rank 0's weights of ``nets`` to every rank."""
        if self._trainer is not None and self.trainer.world_size > 1:
            for net in nets:
                for tensor in net.state_dict().values():
                    torch.distributed.broadcast(tensor, src=0)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.ema_discriminator is None:
            return
        self.ema_updates += 1  # the buffer, for checkpoints; the Python count avoids a device sync
        self._ema_steps += 1
        n = float(self._ema_steps)
        decay = min(self.ema_decay, (1 + n) / (10 + n))
        ema_params = list(self.ema_discriminator.parameters())
        torch._foreach_lerp_(ema_params, list(self.discriminator.parameters()), 1.0 - decay)

    def _nonfinite(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> str | None:
        """What is not finite after the backward pass: ``"loss"``, ``"gradient"``, ``"another process's loss"``
        (under DDP with 16-mixed) or ``None``.

        The loss and every gradient's norm are checked together, in one device sync.
        """
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        checks = [loss.detach().float().reshape(1)]
        # under 16-mixed the gradients are scaled: an overflow is the GradScaler's to handle (it skips
        # that step and lowers its scale), not a divergence; only the loss says the run diverged
        if grads and getattr(self.trainer.precision_plugin, "scaler", None) is None:
            checks.append(torch.stack(torch._foreach_norm(grads)).float())
        finite = torch.isfinite(torch.cat(checks))  # (1 + number of gradients,)
        all_finite = bool(finite.all())
        if len(checks) == 1 and self.trainer.world_size > 1:
            # each rank checked only its own loss: all skip or stop together, or the ranks' GradScalers part ways
            # (one steps and lowers its scale, the other does not) and a stopped rank leaves the others hanging
            all_finite = bool(self.trainer.strategy.reduce_boolean_decision(all_finite, all=True))
        if all_finite:
            return None
        return "loss" if not bool(finite[0]) else "gradient" if not bool(finite.all()) else "another process's loss"

    def optimizer_step_block(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, name: str) -> bool:
        """The canonical manual step (inside a toggle): zero_grad, backward, a finiteness check, step (which
        clips, if asked: ``on_before_optimizer_step``).

        A non-finite loss or gradient is never applied: it raises ``DivergenceError`` naming what
        diverged and where, or, while fewer than ``skip_nonfinite_batches`` batches were skipped,
        skips the step and returns False. It also returns False for a step that 16-mixed's GradScaler skipped.
        """
        optimizer.zero_grad()
        self.manual_backward(loss)
        what = self._nonfinite(loss, optimizer)
        if what is not None:
            optimizer.zero_grad()
            where = f"at epoch {self.current_epoch}, batch {self.trainer.fit_loop.epoch_loop.batch_idx}"
            detail = (f"{name}_loss became {loss.item()}" if what == "loss" else f"a {name} gradient became non-finite"
                      if what == "gradient" else f"{name}_loss became non-finite in another process")
            if int(self.skipped_batches) < self.skip_nonfinite_batches:
                self.skipped_batches += 1
                log.warning("skipped a batch: %s %s (%d of at most %d skipped)", detail, where,
                            int(self.skipped_batches), self.skip_nonfinite_batches)
                return False
            skipped = f" after skipping {int(self.skipped_batches)} batch(es)" if self.skip_nonfinite_batches else ""
            raise DivergenceError(f"{detail} {where}{skipped}")
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)  # 16-mixed only
        # the scale tensor itself (get_scale() would wait for the GPU twice): the backward above has made it
        scale_before = scaler._scale.clone() if scaler is not None and scaler._scale is not None else None
        optimizer.step()
        # the GradScaler skips a step whose scaled gradients overflowed, and lowers its scale: then nothing
        # was applied, and the caller must not update the EMA or go on as if it had been (one wait for the GPU)
        return scale_before is None or bool(scaler._scale >= scale_before)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clips the gradient norm to ``gradient_clip_val``. Lightning calls this inside ``optimizer.step()``,
        after 16-mixed's GradScaler has unscaled the gradients: clipped before the step, as in Lightning's
        manual-optimization example, they would still carry the loss scale (about 65,536), and the threshold
        would shrink by it."""
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")

    def lr_lambda(self, epoch: int) -> float:
        """The learning-rate factor of ``epoch``: 1, then linear decay over the last ``1 - lr_decay_start`` of
        training (or of the self-training stage), toward 0 at the epoch after the last, as in the reference."""
        if self.schedule_stage is not None:
            start, length = self.schedule_stage
        else:
            start, length = 0, (self.trainer.max_epochs if self._trainer is not None and self.trainer.max_epochs else 1)
        if self.lr_decay_start >= 1 or length <= 0:
            return 1.0
        return max(0.0, min(1.0, (1.0 - (epoch - start) / length) / (1.0 - self.lr_decay_start)))

    @torch.no_grad()
    def reset_weights(self) -> None:
        """Re-initialises the trained nets in place (self-training's ``reset_weights``); data init runs again
        (unless ``data_init`` is off)."""
        for net, fresh in zip(self.trained_nets(), self.fresh_nets()):
            net.load_state_dict(fresh.state_dict())
        # each rank drew its own fresh weights from its own random stream: all train rank 0's
        self._take_rank_zero_weights(self.trained_nets())
        self.initialized.fill_(not self.data_init)  # data init runs again only if the model asks for it
        self._init_checked = False
        if self.ema_discriminator is not None:
            self.ema_discriminator.load_state_dict(self.discriminator.state_dict())
            self.ema_updates.zero_()
            self._ema_steps = 0

    def fresh_nets(self) -> list[nn.Module]:
        """Newly initialised nets matching ``trained_nets()``."""
        return [build_discriminator(self.arch, self.image_shape, self.num_classes, **self._net_kwargs)]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # applied when training starts, when this process's rank is known: under DDP each rank's own
        self._rng_to_restore = checkpoint.get("ssgan_rng")
        self._rng_per_rank = checkpoint.get("ssgan_rng_per_rank")
        sums = checkpoint.get("ssgan_train_sums")  # a mid-epoch checkpoint: the epoch's train/ means go on from them
        if sums:
            self._train_names, self._train_steps = list(sums["names"]), int(sums["steps"])
            self._train_sums = sums["sums"]  # moved to the module's device at train start (it is not there yet)

    def _restore_rng(self) -> bool:
        """Restores the checkpoint's random streams (this rank's, if it holds one per rank); whether it did."""
        state = getattr(self, "_rng_to_restore", None)
        per_rank = getattr(self, "_rng_per_rank", None)
        if per_rank and len(per_rank) == self.trainer.world_size:
            state = per_rank[self.trainer.global_rank]
        self._rng_to_restore = self._rng_per_rank = None
        if not state:
            return False
        torch.set_rng_state(state["torch"])
        if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(state["python"])
        return bool(per_rank) and len(per_rank) == self.trainer.world_size

    def _decorrelate_ranks(self) -> None:
        """Gives each DDP rank its own random streams (noise layers, z), from the same seed on every rank:
        otherwise every rank would generate the same fake batch and draw the same noise. Rank 0 keeps
        the stream of a run in one process."""
        rank = self.trainer.global_rank
        if rank > 0:
            seed = (torch.initial_seed() + 1_000_003 * rank) % 2**32  # the run's seed, the same on every rank, moved
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)

    def on_fit_start(self) -> None:
        precision = str(self.trainer.precision)
        refuse_low_precision_weights(precision)
        # the optimizer settings as this run's factories made them: Lightning restores a checkpoint's
        # optimizer and scheduler states after this hook, and with them that run's settings
        self._configured_optimizer_settings = [[{key: value for key, value in group.items() if key not in ("params", "lr")}
                                                for group in optimizer.param_groups] for optimizer in self.trainer.optimizers]
        fused = any(opt.defaults.get("fused") for opt in self.trainer.optimizers)
        if self.gradient_clip_val is not None and "mixed" in precision and fused:
            # Lightning cannot clip the gradients of a fused optimizer under mixed precision
            raise UserError(f"model.gradient_clip_val with trainer.precision={precision} needs unfused Adam; add "
                            "model.optimizer_d.fused=false (and model.optimizer_g.fused=false for ssgan)")

    def on_train_epoch_start(self) -> None:
        self._validate_the_final_epoch()

    def _validate_the_final_epoch(self) -> None:
        trainer = self.trainer
        every = trainer.check_val_every_n_epoch
        if every not in (None, 1) and trainer.max_epochs is not None and trainer.current_epoch == trainer.max_epochs - 1:
            # the final weights are always validated (val/acc, best.ckpt, last.ckpt), whatever the interval; read
            # now, since self-training extends max_epochs round by round
            trainer.check_val_every_n_epoch = 1

    def follow_lr_schedule(self) -> list[tuple[float, float]]:
        """Sets each optimizer's learning rate to what this run's schedule gives the epoch about to start; returns
        each scheduler's (before, after) factor of its base rate.

        A restored checkpoint brings the rate of its own run's schedule: resumed with more epochs (or into a new
        self-training round), the run would train its first epoch at that rate (0 after the last epoch of a
        finished run) and only then follow its own schedule.
        """
        changes = []
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler  # a LambdaLR: last_epoch is the epoch about to start
            if not hasattr(scheduler, "lr_lambdas"):  # a subclass's own scheduler follows its own rules
                continue
            rates = [base * factor(scheduler.last_epoch) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
            groups = scheduler.optimizer.param_groups
            base = scheduler.base_lrs[0]
            if base:
                changes.append((groups[0]["lr"] / base, rates[0] / base))
            for group, rate in zip(groups, rates):
                group["lr"] = rate
            scheduler._last_lr = rates
        return changes

    def apply_configured_optimizer_settings(self) -> list[str]:
        """Puts this run's optimizer settings (base learning rate, betas, weight decay, ...) back over those a
        restored checkpoint brought, keeping its moments and step counts; returns what changed, e.g.
        ``"model.optimizer_d.lr: 1e+12 -> 0.001"``.

        Resumed into a new folder with a lower ``model.optimizer_d.lr`` (after a divergence, say), the run
        would otherwise train on at the checkpoint's rate without a word.
        """
        def plain(value: Any) -> Any:
            return list(value) if isinstance(value, tuple) else value

        changes = []
        configured = getattr(self, "_configured_optimizer_settings", [])
        names = ("model.optimizer_d", "model.optimizer_g")
        for index, (optimizer, settings) in enumerate(zip(self.trainer.optimizers, configured)):
            for group, wanted in zip(optimizer.param_groups, settings):
                for key, value in wanted.items():
                    if plain(group.get(key)) != plain(value):
                        shown = "lr" if key == "initial_lr" else key  # LambdaLR's base rate is the setting's lr
                        changes.append(f"{names[min(index, 1)]}.{shown}: {plain(group.get(key))} -> {plain(value)}")
                        group[key] = value
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if hasattr(scheduler, "lr_lambdas"):  # follow_lr_schedule then sets each group's rate from these
                scheduler.base_lrs = [group.get("initial_lr", base)
                                      for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs)]
        return list(dict.fromkeys(changes))  # once per setting, not per parameter group

    def on_train_start(self) -> None:
        self._validate_the_final_epoch()  # a run resumed mid-way through its last epoch skips on_train_epoch_start
        changed = self.apply_configured_optimizer_settings()
        if changed and self.trainer.is_global_zero:
            log.warning("resuming with this run's optimizer settings, not the checkpoint's: %s", ", ".join(changed))
        moved = [(before, after) for before, after in self.follow_lr_schedule()
                 if not math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-12)]
        if moved and self.trainer.is_global_zero:
            before, after = moved[0]
            log.warning("resuming at epoch %d: the learning rate follows this run's schedule, %.3g times its base rate "
                        "this epoch, where the checkpoint's schedule gave %.3g", self.current_epoch, after, before)
        if self.ema_discriminator is not None:
            self._ema_steps = int(self.ema_updates)  # once: a resumed run continues its count
        if not self._restore_rng() and self.trainer.world_size > 1:
            self._decorrelate_ranks()
        if self._train_sums is not None:  # restored from a mid-epoch checkpoint before the module's move
            self._train_sums = self._train_sums.to(self.device)

    def accumulate_train_metrics(self, **values: torch.Tensor) -> None:
        """Adds this step's scalars to the epoch's running sums, logged as ``train/{name}`` epoch means.

        One tensor op per step: ``self.log`` costs Lightning about 0.5 ms per key and step, which
        is several per cent of an MLP iteration on a CPU.
        """
        stacked = torch.stack([value.detach().float() for value in values.values()])  # (M,)
        if self._train_sums is not None and list(values) != self._train_names:
            # sums restored from a mid-epoch checkpoint of other settings (e.g. model.entropy_weight
            # turned on): this epoch's means start afresh from here rather than mix two sets of terms
            log.info("this epoch's train/ means count from the resumed batch on: the checkpoint logged %s",
                     ", ".join(self._train_names))
            self._train_sums = None
        if self._train_sums is None:
            self._train_names, self._train_sums, self._train_steps = list(values), stacked, 1
        else:
            self._train_sums += stacked
            self._train_steps += 1

    def on_train_epoch_end(self) -> None:
        if self._train_sums is not None:
            means = (self._train_sums / self._train_steps).tolist()
            self.log_dict({f"train/{name}": mean for name, mean in zip(self._train_names, means)}, on_epoch=True,
                          sync_dist=self.trainer.world_size > 1)  # under DDP: the mean over ranks
            self._train_sums, self._train_steps = None, 0
        if last_epoch_fraction(self.trainer) < 1:
            return  # trainer.max_steps or max_time cut the epoch short: a resume finishes it at its own rate
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    # -- evaluation -----------------------------------------------------------------------------
    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], metric: MulticlassAccuracy, split: str) -> None:
        images, labels = batch
        logits = self(images)  # (B, K)
        if split == "val":  # no device sync here: read once at the epoch's end
            finite = torch.isfinite(logits).all()
            self._val_finite = finite if self._val_finite is None else self._val_finite & finite
        metric.update(logits, labels)
        self.log(f"{split}/acc", metric, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        # Finite gradients can still step to weights whose outputs are not: stop before the epoch's
        # checkpoints save them, so the last good checkpoint stays the last one written. Every rank
        # decides together (each saw its own shard), so none waits for a rank that stopped.
        finite = True if self._val_finite is None else bool(self._val_finite)
        self._val_finite = None
        if self.trainer.state.fn != "fit":
            return
        if self.trainer.world_size > 1:
            finite = bool(self.trainer.strategy.reduce_boolean_decision(finite, all=True))
        if not finite:
            raise DivergenceError(f"the discriminator's validation outputs became non-finite at epoch {self.current_epoch}")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_acc, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)  # (B, K)
        self.test_acc.update(logits, labels)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True, prog_bar=True)
        probabilities = torch.softmax(logits.float(), dim=1)  # (B, K)
        self.test_report.update(probabilities, labels)
        self.test_confusion.update(probabilities, labels)

    def on_test_epoch_end(self) -> None:
        report = self.test_report.compute()
        per_class = report.pop("acc_per_class").tolist()  # (K,)
        # torchmetrics already synced these over the ranks; sync_dist averages equal values (and keeps Lightning quiet)
        distributed = self.trainer.world_size > 1
        self.log_dict({f"test/{name}": value for name, value in report.items()}, sync_dist=distributed)
        self.log_dict({f"test/acc_class/{name}": acc for name, acc in zip(class_metric_names(self.class_names), per_class)},
                      sync_dist=distributed)
        # (K, K), rows true and columns predicted: the ConfusionMatrixPlot callback draws it
        self.test_confusion_matrix = self.test_confusion.compute().cpu()
        self.test_report.reset()
        self.test_confusion.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Records the module class and the datamodule's class and arguments, so that the ``ssgan``
        tools rebuild both from the checkpoint alone."""
        checkpoint["ssgan_module"] = class_path(type(self))
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        if self._trainer is not None and "epoch_progress" in fit_loop and last_epoch_fraction(self.trainer) < 1:
            # the end-of-epoch save of an epoch that trainer.max_steps or max_time cut short: Lightning counts the
            # epoch as processed, and a resume would finish its batches and then count it twice (a whole epoch
            # skipped); saved as the mid-epoch checkpoint it is, the resume finishes the epoch once
            for counts in fit_loop["epoch_progress"].values():
                counts["processed"] = counts["completed"]
        if self._trainer is not None and self.trainer.optimizers:  # what a resume must build to take their states
            checkpoint["ssgan_optimizers"] = [class_path(type(optimizer)) for optimizer in self.trainer.optimizers]
        # the random streams (noise layers, z): a resumed run draws what the uninterrupted one would
        rng = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_rng_state(),  # plain types: checkpoints load with weights_only=True
            "python": random.getstate(),
        }
        sums = self._train_sums.detach().cpu() if self._train_sums is not None else None
        checkpoint["ssgan_rng"] = rng
        if self._trainer is not None and self.trainer.world_size > 1 and torch.distributed.is_initialized():
            # every rank saves (Lightning's save_checkpoint runs on all of them, then meets in a barrier)
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, (rng, sums))
            checkpoint["ssgan_rng_per_rank"] = [rank_rng for rank_rng, _ in gathered]
            if sums is not None:
                # the ranks' mean: restored on every rank, it gives the epoch's synced mean of the whole run
                sums = torch.stack([rank_sums for _, rank_sums in gathered]).mean(dim=0)
        if sums is not None:  # mid-epoch: the running sums of the epoch's train/ metrics so far
            checkpoint["ssgan_train_sums"] = {"names": list(self._train_names), "sums": sums, "steps": self._train_steps}
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "hparams"):
            checkpoint["ssgan_datamodule"] = {"class_path": class_path(type(datamodule)),
                                              "init_args": _absolute_paths(dict(datamodule.hparams))}

    def predict_step(self, batch: torch.Tensor | tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.softmax(self(images), dim=1)  # (B, K)


def _absolute_paths(init_args: dict[str, Any]) -> dict[str, Any]:
    """The datamodule's arguments with its relative folders (``root``, ``*_dir``) made absolute, so the
    ``ssgan`` tools find the data from any working folder."""
    import os

    return {key: os.path.abspath(os.path.expanduser(value))
            if isinstance(value, str) and (key == "root" or key.endswith("_dir")) and value else value
            for key, value in init_args.items()}


class SSGAN(ClassifierModule):
    """The K+1-class semi-supervised GAN of Salimans et al. 2016 with feature matching.

    Per batch: one discriminator step on L = L_supervised + unlabeled_weight * L_unsupervised
    (+ entropy_weight * H, the class posterior's entropy on the unlabeled images) over the
    labeled, unlabeled and generated images (G(z) detached), then one generator step, on fresh
    z, on the feature-matching loss (or the non-saturating loss) against the updated discriminator.
    Feature matching compares G(z) with the same unlabeled batch (the reference draws a second
    one; the expectation is the same).

    Args (besides those of ``ClassifierModule``):
        latent_dim: size of z ~ U(0, 1)^latent_dim.
        unlabeled_weight: weight of L_unsupervised in the discriminator loss.
        entropy_weight: weight of the conditional entropy of the unlabeled images' class posterior
            in the discriminator loss (Dai et al. 2017); 0, the paper's, leaves it out.
        generator_loss: ``feature_matching`` (the paper's) or ``non_saturating``.
        optimizer_g: factory building the generator's optimizer.
        generator_kwargs: extra keyword arguments of the generator net (e.g. ``hidden`` of the MLP).
        feature_matching: distance between the feature means, ``squared`` (the MNIST recipe) or
            ``absolute`` (the CIFAR-10 recipe).
    """

    def __init__(self, image_shape: Sequence[int], num_classes: int, arch: str = "auto", latent_dim: int = 100,
                 unlabeled_weight: float = 1.0,
                 generator_loss: Literal["feature_matching", "non_saturating"] = "feature_matching",
                 optimizer_d: OptimizerFactory | None = None, optimizer_g: OptimizerFactory | None = None,
                 lr_decay_start: float = 2 / 3, ema_decay: float | None = 0.999,
                 gradient_clip_val: float | None = None, class_names: Sequence[str] | None = None,
                 net_kwargs: dict[str, Any] | None = None, data_init: bool = True,
                 generator_kwargs: dict[str, Any] | None = None, torch_compile: bool = False,
                 channels_last: bool = False, feature_matching: Literal["squared", "absolute"] = "squared",
                 skip_nonfinite_batches: int = 0, entropy_weight: float = 0.0) -> None:
        super().__init__(image_shape, num_classes, arch, optimizer_d, lr_decay_start, ema_decay, gradient_clip_val,
                         class_names, net_kwargs, data_init, torch_compile, channels_last, skip_nonfinite_batches)
        if generator_loss not in ("feature_matching", "non_saturating"):
            raise UserError(f"unknown generator_loss '{generator_loss}'; use model.generator_loss=feature_matching or non_saturating")
        if feature_matching not in ("squared", "absolute"):
            raise UserError(f"unknown feature_matching '{feature_matching}'; use model.feature_matching=squared or absolute")
        if latent_dim < 1:
            raise UserError(f"model.latent_dim={latent_dim} must be at least 1; use e.g. model.latent_dim=100")
        if unlabeled_weight < 0:
            raise UserError(f"model.unlabeled_weight={unlabeled_weight} is negative; use 0 or more, e.g. model.unlabeled_weight=1.0")
        if entropy_weight < 0:
            raise UserError(f"model.entropy_weight={entropy_weight} is negative; use 0 or more, e.g. model.entropy_weight=1.0")
        check_optimizer_factory(optimizer_g, "model.optimizer_g")
        self.feature_matching = feature_matching
        self.save_hyperparameters(ignore=["optimizer_d", "optimizer_g"])  # factories: not plain data, and not needed to load the nets
        self.latent_dim, self.unlabeled_weight, self.generator_loss = latent_dim, unlabeled_weight, generator_loss
        self.entropy_weight = entropy_weight
        self.optimizer_g_factory = optimizer_g or default_adam
        self._generator_kwargs = dict(generator_kwargs or {})
        self.generator = build_generator(self.arch, self.image_shape, latent_dim, **self._generator_kwargs)

    def trained_nets(self) -> list[nn.Module]:
        return [self.discriminator, self.generator]

    @torch.no_grad()
    def sample(self, num_images: int, seed: int | None = None, batch_size: int = 100) -> torch.Tensor:
        """``num_images`` generated images (N, C, H, W) as floats in [0, 1].

        The generator runs in training mode (batch statistics in its batchnorm, as in the steps
        that trained it), in batches of at most ``batch_size``, split evenly; its running statistics
        are left as they were. Batch statistics make an image depend on its batch: the same seed
        gives the same images only for the same ``num_images``.
        """
        noise_source = torch.Generator().manual_seed(seed) if seed is not None else None
        # batchnorm needs two images a batch: one image is drawn as the first of two
        drawn = max(num_images, 2)
        z = torch.rand(drawn, self.latent_dim, generator=noise_source).to(self.device)  # (N, latent_dim)
        # even chunks: a remainder of one image (N = 101) would fail in batchnorm, like N = 1
        chunks = z.tensor_split(min(math.ceil(drawn / max(batch_size, 2)), drawn // 2))  # each of 2 or more
        saved_state = {name: buffer.clone() for name, buffer in self.generator.named_buffers()}
        was_training = self.generator.training
        self.generator.train()
        try:
            images = torch.cat([self.generator(chunk) for chunk in chunks])[:num_images]  # (N, C, H, W)
        finally:
            self.generator.train(was_training)
            for name, buffer in self.generator.named_buffers():
                buffer.copy_(saved_state[name])
        low, high = self.discriminator.input_range
        return ((images.float() - low) / (high - low)).clamp_(0, 1)

    def setup(self, stage: str) -> None:
        # before the strategy converts the batch norms and wraps the model: on the CPU, DDP's wrap itself stops
        # with torch's traceback ("SyncBatchNorm layers only work with GPU modules"), before on_fit_start
        if stage == "fit" and getattr(self.trainer.strategy, "_layer_sync", None) is not None:
            self._refuse_synced_batch_norms()
        super().setup(stage)

    def on_fit_start(self) -> None:
        if any(isinstance(layer, nn.SyncBatchNorm) for layer in self.generator.modules()):  # converted by hand
            self._refuse_synced_batch_norms()
        super().on_fit_start()

    @staticmethod
    def _refuse_synced_batch_norms() -> None:
        # rank 0 alone draws the sample grids, and a synced batch norm in training mode waits for every rank
        raise UserError("trainer.sync_batchnorm=true would make the generator's batch norms wait for every process "
                        "whenever rank 0 draws samples, and hang the run; leave sync_batchnorm off for ssgan "
                        "(the discriminator has no batch norm)")

    @torch.no_grad()
    def initialize_other_nets(self, batch_size: int) -> None:
        """The generator's data-dependent init on a batch of z, for a net that asks for one (the reference
        CIFAR-10 generator's output layer; the MNIST one has none)."""
        if getattr(self.generator, "data_init", False):
            data_dependent_init(self.generator, uniform_noise(batch_size, self.latent_dim, self.device))

    def fresh_nets(self) -> list[nn.Module]:
        return super().fresh_nets() + [build_generator(self.arch, self.image_shape, self.latent_dim,
                                                       **self._generator_kwargs)]

    def configure_optimizers(self):
        opt_d = self.optimizer_d_factory(self.discriminator.parameters())
        opt_g = self.optimizer_g_factory(self.generator.parameters())
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, self.lr_lambda) for opt in (opt_d, opt_g)]
        return [opt_d, opt_g], schedulers

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        labeled_u8, labels, unlabeled_u8 = batch
        labeled, unlabeled = self.to_input(labeled_u8), self.to_input(unlabeled_u8)  # (B_l, C, H, W), (B_u, C, H, W)
        self.initialize_from_batch(labeled, unlabeled)
        opt_d, opt_g = self.optimizers()
        fake_count = max(len(unlabeled), 2)  # as many as the unlabeled images, but two for G's batchnorm at batch size 1
        with torch.no_grad():  # G(z) is a constant of the D loss: no graph through G here
            fake = self.generator(uniform_noise(fake_count, self.latent_dim, self.device))  # (B_u, C, H, W)

        # Discriminator step. One forward over all three batches: the nets hold no batch
        # statistics and their noise/dropout is per sample, so this equals three separate passes.
        with self.toggled_optimizer(opt_d):
            logits, _ = self.discriminator(torch.cat([labeled, unlabeled, fake]))
            logits_labeled, logits_unlabeled, logits_fake = logits.split([len(labeled), len(unlabeled), len(fake)])
            loss_supervised = losses.supervised_loss(logits_labeled, labels)
            loss_unsupervised = losses.unsupervised_loss(logits_unlabeled, logits_fake)
            loss_d = loss_supervised + self.unlabeled_weight * loss_unsupervised
            if self.entropy_weight:
                loss_entropy = losses.conditional_entropy(logits_unlabeled.float())
                loss_d = loss_d + self.entropy_weight * loss_entropy
            stepped = self.optimizer_step_block(opt_d, loss_d, "discriminator")
        if not stepped:  # a skipped batch (non-finite, or the GradScaler's): no EMA update and no generator step either
            return
        self.update_ema()

        # Generator step on fresh z, against the updated discriminator (whose parameters the toggle freezes).
        with self.toggled_optimizer(opt_g):
            fake = self.generator(uniform_noise(fake_count, self.latent_dim, self.device))  # (B_u, C, H, W)
            if self.generator_loss == "feature_matching":
                with torch.no_grad():
                    _, features_real = self.discriminator(unlabeled)  # (B_u, F)
                _, features_fake = self.discriminator(fake)  # (B_u, F)
                # in fp32: under bf16 autocast the batch means' small differences would round away
                loss_g = losses.feature_matching_loss(features_real.float(), features_fake.float(), self.feature_matching)
            else:
                loss_g = losses.non_saturating_generator_loss(self.discriminator(fake)[0])
            if not self.optimizer_step_block(opt_g, loss_g, "generator"):
                return

        with torch.no_grad():
            train_acc = (logits_labeled.argmax(dim=1) == labels).float().mean()
        entropy_term = {"loss_entropy": loss_entropy} if self.entropy_weight else {}
        self.accumulate_train_metrics(loss_supervised=loss_supervised, loss_unsupervised=loss_unsupervised,
                                      loss_generator=loss_g, acc_labeled=train_acc, **entropy_term)


class SupervisedBaseline(ClassifierModule):
    """The same discriminator net trained on the labeled batches alone (cross-entropy), for comparison.

    It sees the same splits, batches, optimizer, schedule, EMA and evaluation as ``SSGAN``.
    """

    def __init__(self, image_shape: Sequence[int], num_classes: int, arch: str = "auto",
                 optimizer_d: OptimizerFactory | None = None, lr_decay_start: float = 2 / 3,
                 ema_decay: float | None = 0.999, gradient_clip_val: float | None = None,
                 class_names: Sequence[str] | None = None, net_kwargs: dict[str, Any] | None = None,
                 data_init: bool = True, torch_compile: bool = False, channels_last: bool = False,
                 skip_nonfinite_batches: int = 0) -> None:
        super().__init__(image_shape, num_classes, arch, optimizer_d, lr_decay_start, ema_decay, gradient_clip_val,
                         class_names, net_kwargs, data_init, torch_compile, channels_last, skip_nonfinite_batches)
        self.save_hyperparameters(ignore=["optimizer_d"])  # a factory: not plain data, and not needed to load the net

    def configure_optimizers(self):
        opt_d = self.optimizer_d_factory(self.discriminator.parameters())
        return [opt_d], [torch.optim.lr_scheduler.LambdaLR(opt_d, self.lr_lambda)]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        labeled_u8, labels, unlabeled_u8 = batch  # the unlabeled batch serves only the initialisation
        labeled = self.to_input(labeled_u8)
        if not self._init_checked:
            self.initialize_from_batch(labeled, self.to_input(unlabeled_u8))
        opt_d = self.optimizers()
        with self.toggled_optimizer(opt_d):
            logits, _ = self.discriminator(labeled)  # (B_l, K)
            loss = losses.supervised_loss(logits, labels)
            stepped = self.optimizer_step_block(opt_d, loss, "supervised")
        if not stepped:
            return
        self.update_ema()
        with torch.no_grad():
            train_acc = (logits.argmax(dim=1) == labels).float().mean()
        self.accumulate_train_metrics(loss_supervised=loss, acc_labeled=train_acc)
