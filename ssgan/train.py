"""Training entry point: ``train(cfg) -> metrics`` behind a thin ``@hydra.main``.

Run ``ssgan-train`` (or ``python -m ssgan.train``) with Hydra overrides, e.g.
``ssgan-train data=fashion_mnist data.num_labeled=100 model=ssgan trainer.max_epochs=20 seed=1``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import logging
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.accelerators import CPUAccelerator, CUDAAccelerator
from pytorch_lightning.callbacks import Checkpoint, EarlyStopping, ModelCheckpoint
from pytorch_lightning.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from ssgan.atomic import atomic_write, checkpoint_in_folder, saved_files, unwritable_reason, write_failure_fix
from ssgan.callbacks import (AtomicCheckpointIO, KeepBestAcrossFolders, SpeedMonitor, SyncedSigterm, ctrl_c_ignored,
                             last_epoch_fraction, sigterm_stops_outside_lightning)
from ssgan.command_line import (EARLIER_RUN_ASIDE, _command_line_settings, _earlier_run, _several_processes,
                                escape_unencodable_output, hide_lightning_noise, last_checkpoints, main,
                                sigterm_default_again)
from ssgan.config import (CONFIG_DIR, check_argument_types, class_path, config_text, fits_type, group_options, hydra_value,
                          import_class, reads_as, recorded_class)
from ssgan.cpu import keep_freed_memory, matmul_rates
from ssgan.data.datamodule import SemiSupervisedDataModule
from ssgan.errors import UserError, first_line
from ssgan.module import (SSGAN, ClassifierModule, DivergenceError, diverged_message, refuse_another_module,
                          refuse_another_optimizer, refuse_low_precision_weights, warn_if_the_conv_net_gets_a_high_lr)
from ssgan.self_training import (SelfTraining, refuse_changed_schedule, refuse_mismatched_rounds, saved_schedule,
                                  trained_text)

log = logging.getLogger("ssgan.train")  # not "__main__" under python -m ssgan.train

KNOWN_ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")

# Lightning's DDP strategies that keep find_unused_parameters off (also those named *_find_unused_parameters_false)
PLAIN_DDP = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Writes JSON atomically (a temporary file renamed into place), so readers never see half a file;
    a file that cannot be written (a full disk) is a one-line error."""
    try:
        atomic_write(path, lambda temporary: temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n"))
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}; {write_failure_fix(error)}, or run in another "
                        "folder") from None


def instantiate(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a ``UserError`` raised by the target through unwrapped."""
    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def build_trainer(cfg: DictConfig, output_dir: Path, has_validation: bool = True,
                  validation_metrics: Sequence[str] = ClassifierModule.validation_metrics) -> pl.Trainer:
    """Instantiates the Trainer with its callbacks and loggers, turning Lightning's setup errors into one line.

    Without validation images (``has_validation=False``) the checkpoints that pick the best epoch by a
    validation metric are left out: there is nothing to pick by. A callback that monitors a ``val/``
    metric other than ``validation_metrics`` (what the model logs) is refused before any training.
    """
    for key, group in (("logger", "logger=none (no logs), logger=csv or logger=tensorboard"),
                       ("callbacks", "callbacks=none, or +callbacks.<name>._target_=<class>")):
        if key in (cfg.get("trainer") or {}):  # the trainer gets this from its group: the setting was ignored
            raise UserError(f"trainer.{key} is set by the {key} group, so it would be ignored; use {group}")
    # why no val/ metric will be logged, and how to have one
    no_validation = no_validation_reason(has_validation, (cfg.get("trainer") or {}).get("limit_val_batches"),
                                         lambda key: f"data.{key}", lambda key: f"trainer.{key}")
    callbacks = []
    checkpoint_files: dict[tuple[str, str], tuple[str, Any]] = {}  # (dirpath, filename) -> the callback's name, monitor
    for name, callback_cfg in (cfg.get("callbacks") or {}).items():
        if callback_cfg is None:
            continue
        if not isinstance(callback_cfg, DictConfig) or "_target_" not in callback_cfg:  # e.g. +callbacks.mine=5
            raise UserError(f"callbacks.{name} is no callback's config; give its class, e.g. "
                            f"+callbacks.{name}._target_=pytorch_lightning.callbacks.EarlyStopping, or remove it")
        try:
            callback = instantiate(callback_cfg)
        except InstantiationException as error:  # e.g. ModelCheckpoint's "`mode` can be min, max but got maximum"
            if not isinstance(error.__cause__, (MisconfigurationException, ValueError, TypeError)):
                raise  # a crash, not a setting: it keeps its traceback
            reason = first_line(error.__cause__).replace("`", "")
            raise UserError(f"callbacks.{name} does not build: {reason} "
                            f"(check the callbacks.{name}.* overrides)") from None
        if not isinstance(callback, pl.Callback):  # Lightning stopped inside fit with a traceback
            raise UserError(f"callbacks.{name} builds a {type(callback).__name__}, not a Lightning callback; give a "
                            f"pytorch_lightning.callbacks class (or a subclass of pytorch_lightning.Callback) as "
                            f"callbacks.{name}._target_")
        if no_validation and isinstance(callback, ModelCheckpoint) and str(callback.monitor).startswith("val/"):
            log.info("%s: no best.ckpt is kept, and the last weights are tested", no_validation[0])
            continue  # nothing to pick the best epoch by
        # without validation no val/ metric is logged at all (e.g. early stopping on val/acc)
        check_monitored_metric(callback, () if no_validation else validation_metrics, f"callbacks.{name}.monitor",
                               *no_validation)
        check_kept_checkpoints(callback, f"callbacks.{name}.save_top_k")
        check_callback_folder(callback, f"callbacks.{name}.dirpath")
        if isinstance(callback, ModelCheckpoint) and callback.dirpath and callback.filename:  # e.g. filename=best twice
            place = (str(callback.dirpath), str(callback.filename))
            other, other_monitor = checkpoint_files.setdefault(place, (name, callback.monitor))
            if other_monitor != callback.monitor:  # the same monitor (last.ckpt at epoch ends and mid-epoch) is one file
                raise UserError(f"callbacks.{name} and callbacks.{other} both save {place[1]}.ckpt in {place[0]}, each "
                                f"over the other's; give callbacks.{name}.filename another name")
        callbacks.append(callback)
    if uses_self_training(cfg):
        callbacks.append(instantiate(cfg.self_training))
    elif cfg.get("self_training") is not None:
        instantiate(cfg.self_training)  # its values checked as with rounds on (a sweep's twin jobs fail alike)
        _warn_of_unused_self_training_settings()
    callbacks.append(SyncedSigterm())  # whatever cfg.callbacks holds: a DDP run must stop on SIGTERM, not hang
    callbacks.append(KeepBestAcrossFolders())  # a resume in a new or moved folder keeps the run's best.ckpt
    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if logger_cfg is None:
            continue
        try:
            loggers.append(instantiate(logger_cfg))
        except InstantiationException as error:
            if not isinstance(error.__cause__, ModuleNotFoundError):
                raise
            # Lightning's: "Neither `tensorboard` nor `tensorboardX` is available. ..."
            missing = str(error.__cause__).splitlines()[0].replace("`", "").split(". ")[0].rstrip(".")  # its first sentence
            raise UserError(f"logger={name} needs a package that is not installed ({missing}); pip install "
                            f"'ssgan[{name}]', or use logger=csv") from None
        check_logger_folder(loggers[-1], f"logger.{name}.save_dir")
    try:
        plugins = [AtomicCheckpointIO()]
        if SLURMEnvironment.detect() and not TorchElasticEnvironment.detect():  # torchrun's ranks come first, as in Lightning
            # Lightning's auto-requeue does not fit these runs: it saves a checkpoint from inside its
            # SIGUSR1 handler (wherever in a step the signal lands; under DDP with a barrier that can
            # meet no match), into a run folder that the requeued job's new Hydra folder never looks
            # in, and the test after fit then loads that mid-epoch checkpoint instead of the trained
            # weights. SLURM's SIGTERM stops the run cleanly instead (exit 143, naming the checkpoint).
            plugins.append(SLURMEnvironment(auto_requeue=False))
        extra = {}
        if cfg.trainer.get("enable_checkpointing") is None and not any(isinstance(c, Checkpoint) for c in callbacks):
            # without our checkpoint callbacks (callbacks=none) Lightning would add its own, writing a
            # checkpoint every epoch into the logger's folder, where no resume or clean-up looks
            extra["enable_checkpointing"] = False
        if str(cfg.trainer.get("strategy", "auto")) == "auto" and _several_processes(cfg.trainer):
            # Lightning's default for several devices is plain DDP, which stops at the first GAN step: each of
            # the two optimizer steps leaves the other net's parameters without gradients
            extra["strategy"] = "ddp_find_unused_parameters_true"
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                          default_root_dir=str(output_dir), plugins=plugins, **extra)
    except Exception as error:  # Lightning raises MisconfigurationException/ValueError for bad devices etc.
        raise trainer_setup_error(error, "the trainer.* overrides", "trainer.accelerator") from None
    warn_if_bf16_is_slow(trainer)
    return trainer


def trainer_setup_error(error: Exception, where: str, accelerator_setting: str) -> UserError:
    """Lightning's error for trainer settings that do not work here (devices, accelerator), in one line; for an
    accelerator this machine lacks (``trainer.accelerator=gpu`` without a GPU), the fix names the one it has."""
    reason = first_line(error.__cause__ or error)
    if "No supported gpu backend" in reason or "accelerator is not available" in reason:
        return UserError(f"the trainer settings do not work on this machine: {reason} (use {accelerator_setting}=cpu, "
                         f"or {accelerator_setting}=auto to take a GPU where there is one)")
    # a setting or a pair of settings Lightning takes no such value of: no fault of the machine's
    return UserError(f"Lightning refuses the trainer settings: {reason} (check {where})")


# why a run logs no val/ metric, and what gives it one (check_monitored_metric's default)
NO_VALIDATION_IMAGES = ("no validation images (data.num_val=0)", "hold some out, e.g. data.num_val=100")


def no_validation_reason(has_validation: bool, limit_val_batches: Any, data_name: Callable[[str], str],
                         trainer_name: Callable[[str], str]) -> tuple[str, ...]:
    """(why a run logs no val/ metric, how to have one), each setting spelt as the entry point takes it; () when
    it validates. No validation images, or ``limit_val_batches`` of 0."""
    if not has_validation:
        return (f"no validation images ({data_name('num_val')}=0)", f"hold some out, e.g. {data_name('num_val')}=100")
    if isinstance(limit_val_batches, (int, float)) and not isinstance(limit_val_batches, bool) and limit_val_batches == 0:
        return (f"no validation batches ({trainer_name('limit_val_batches')}={limit_val_batches})",
                f"leave {trainer_name('limit_val_batches')} out")
    return ()


def check_monitored_metric(callback: Any, validation_metrics: Sequence[str], setting: str,
                           no_validation: str = NO_VALIDATION_IMAGES[0], fix: str = NO_VALIDATION_IMAGES[1]) -> None:
    """Refuses a checkpoint or early-stopping callback that monitors a validation metric the model does
    not log; Lightning would find out only at the end of the first validation, after an epoch of training.
    (The ``train/`` metrics' names depend on the settings: Lightning checks those, and
    ``monitored_metric_error`` puts its error in one line.)"""
    monitor = getattr(callback, "monitor", None) if isinstance(callback, (ModelCheckpoint, EarlyStopping)) else None
    if isinstance(monitor, str) and monitor.startswith("val/") and monitor not in validation_metrics:
        if not validation_metrics:
            raise UserError(f"{setting}={monitor}, but this run has {no_validation}, so no val/ metric is logged; "
                            f"{fix}, or monitor a train/ metric")
        raise UserError(f"{setting}={monitor} is not a metric this model logs; validation logs "
                        f"{', '.join(validation_metrics)}: set {setting}={validation_metrics[0]}")


def monitored_metric_error(error: BaseException) -> UserError | None:
    """Lightning's error for a checkpoint (or early stopping) monitoring a metric that is not logged, in one
    line that names the fix; None for other errors."""
    text = first_line(error).replace("`", "")
    if "could not find the monitored key" in text:  # ModelCheckpoint's, with the logged names
        text = text.split(" HINT:")[0].rstrip(".")
    elif not text.startswith("Early stopping conditioned on metric"):  # EarlyStopping's, with the logged names
        return None
    names = re.findall(r"[\w.-]+/[\w./-]+", text.split("metrics:" if "metrics:" in text else "following:")[-1])
    example = "val/acc" if "val/acc" in names else next((name for name in names if name.startswith("train/")), "val/acc")
    return UserError(f"{text}; set the callback's monitor to one of those, e.g. {example}")


def check_kept_checkpoints(callback: Any, setting: str) -> None:
    """Refuses a checkpoint that picks the best epochs by a metric and keeps several under one file name
    (``best.ckpt``, no version counter): each save would overwrite the file, so it would hold the latest
    validated epoch, not the best, and ``best_epoch`` and ``test_ckpt=best`` would say so quietly."""
    if not isinstance(callback, ModelCheckpoint) or callback.monitor is None or callback.save_top_k in (0, 1):
        return
    if "{" in (callback.filename or "{") or callback._enable_version_counter:
        return  # each kept checkpoint gets a name of its own
    raise UserError(f"{setting}={callback.save_top_k} would keep {callback.save_top_k if callback.save_top_k > 0 else 'all'} "
                    f"checkpoints under the one name {callback.filename}.ckpt, each overwriting the last, so it would hold "
                    f"the latest epoch, not the best; use {setting}=1, or a filename with {{epoch}} in it")


def check_logger_folder(logger: Any, setting: str) -> None:
    """A one-line error for a logger whose ``save_dir`` cannot be written; Lightning would stop with a
    traceback from inside ``fit``, after the first epoch's training."""
    _check_output_folder(getattr(logger, "save_dir", None), setting)


def check_callback_folder(callback: Any, setting: str, fix: str | None = None) -> None:
    """A one-line error for a callback's ``dirpath`` (checkpoints, sample grids, plots) that cannot be written; the
    write failed with a traceback inside ``fit`` or at its end, and left the run's folder half-made."""
    _check_output_folder(getattr(callback, "dirpath", None), setting, fix)


def _check_output_folder(folder: Any, setting: str, fix: str | None = None) -> None:
    reason = unwritable_reason(folder) if isinstance(folder, (str, Path)) and str(folder) else None
    if reason:
        raise UserError(f"cannot write {setting}={folder}: {reason}; {fix or f'give {setting}=<a folder you can write to>'}")


def check_accelerator(accelerator: Any, name: str) -> None:
    """A one-line ``UserError`` for an accelerator name that neither Lightning nor a plugin of it knows
    (checked before any data are read; ``name`` spells the setting as the entry point takes it)."""
    from pytorch_lightning.accelerators import AcceleratorRegistry

    if not isinstance(accelerator, str):  # an Accelerator object (_target_): Lightning checks it
        return
    known = list(KNOWN_ACCELERATORS) + sorted(set(AcceleratorRegistry.available_accelerators()) - set(KNOWN_ACCELERATORS))
    if accelerator not in known:
        raise UserError(f"unknown accelerator '{accelerator}'; use {name}= one of {', '.join(known)}")


def refuse_plain_ddp(strategy: Any, trains_a_generator: bool, name: str) -> None:
    """A one-line ``UserError`` for plain DDP with the GAN: each of its two optimizer steps leaves the other
    net's parameters without gradients, which plain DDP stops at (mid-fit, with a long traceback)."""
    if not trains_a_generator or not isinstance(strategy, str):
        return
    base = strategy.removesuffix("_find_unused_parameters_false")
    if base in PLAIN_DDP:
        raise UserError(f"{name}={strategy} stops at the GAN's first step (each optimizer step leaves the other net "
                        f"without gradients); use {name}={base}_find_unused_parameters_true")


def _in_a_cluster() -> bool:
    """Whether a launcher that starts the other nodes' processes, or a hand-made multi-node set-up, is in place."""
    from pytorch_lightning.plugins.environments import (LSFEnvironment, MPIEnvironment, SLURMEnvironment,
                                                        TorchElasticEnvironment)

    # (Lightning detects no Kubeflow job by itself: its users pass the plugin, and set MASTER_ADDR)
    return (any(environment.detect() for environment in (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment,
                                                          MPIEnvironment))
            or "NODE_RANK" in os.environ or "MASTER_ADDR" in os.environ)


def check_trainer_counts(settings: Any, name: Callable[[str], str],
                         other_name: Callable[[str], str] = lambda key: key) -> None:
    """One-line errors for trainer settings (``settings``: the trainer's config) that would train
    nothing, never end, or crash inside Lightning; ``name`` spells a trainer setting as its entry point
    takes it, ``other_name`` a model's or data's (``"model.gradient_clip_val"``)."""
    clip = settings.get("gradient_clip_val")
    if clip is not None and not (fits_type(clip, "float") and clip <= 0):
        # Lightning refuses its automatic clipping under manual optimization, from inside fit
        raise UserError(f"{name('gradient_clip_val')}={config_text(clip)} is Lightning's automatic clipping, which these "
                        f"modules' manual optimization does not take; clip with {other_name('model.gradient_clip_val')}="
                        f"{config_text(clip)} instead")
    accumulate = settings.get("accumulate_grad_batches")
    if accumulate is not None and accumulate != 1:
        raise UserError(f"{name('accumulate_grad_batches')}={config_text(accumulate)} is Lightning's automatic gradient "
                        "accumulation, which manual optimization does not take (each batch makes its own steps); "
                        f"for larger steps raise {other_name('data.batch_size')} instead")
    deterministic = settings.get("deterministic")
    if deterministic is not None and not isinstance(deterministic, bool) and deterministic != "warn":
        # Lightning acts on a bool or "warn" alone: any other value would quietly leave the run nondeterministic
        shown = repr(deterministic) if isinstance(deterministic, str) and deterministic.lower() in ("true", "false") \
            else config_text(deterministic)  # the text "true" (e.g. from ${oc.env:...}) is no bool
        raise UserError(f"{name('deterministic')}={shown} is not true, false or warn; use e.g. {name('deterministic')}=true")
    nodes = settings.get("num_nodes")
    if fits_type(nodes, "int") and not isinstance(nodes, bool) and nodes > 1 and not _in_a_cluster():
        # Lightning's plain environment would make this machine node 0 and wait for the others forever,
        # deaf to SIGTERM and Ctrl-C
        raise UserError(f"{name('num_nodes')}={nodes} asks for {nodes} machines, but this one runs in no cluster job (no "
                        "SLURM, torchrun, LSF or MPI environment, and no NODE_RANK or MASTER_ADDR set), so it would "
                        f"wait for the others forever; use {name('num_nodes')}=1 here, or start the run on each node "
                        "through the cluster's launcher")
    max_epochs = settings.get("max_epochs")
    if max_epochs is not None and (not fits_type(max_epochs, "int") or max_epochs < 1):
        raise UserError(f"{name('max_epochs')}={config_text(max_epochs)} is not a number of epochs; use 1 or more, e.g. "
                        f"{name('max_epochs')}=20 (the learning-rate schedule needs a fixed end)")
    max_steps = settings.get("max_steps")
    if max_epochs is None and max_steps not in (None, -1):  # Lightning would then train with max_epochs=-1
        raise UserError(f"{name('max_steps')}={config_text(max_steps)} without {name('max_epochs')} leaves the run no "
                        f"number of epochs, which the learning-rate schedule needs; set {name('max_epochs')} too, e.g. "
                        f"{name('max_epochs')}=20")
    every = settings.get("check_val_every_n_epoch")
    if every is not None and (not fits_type(every, "int") or every < 1):
        raise UserError(f"{name('check_val_every_n_epoch')}={config_text(every)} is not a number of epochs; use 1 or more, "
                        f"e.g. {name('check_val_every_n_epoch')}=1")
    interval = settings.get("val_check_interval")
    if fits_type(interval, "float") and interval <= 0:  # Lightning divides by it, from inside fit
        raise UserError(f"{name('val_check_interval')}={config_text(interval)} validates at no point; give a fraction of "
                        f"an epoch in (0, 1] (e.g. {name('val_check_interval')}=0.5: twice an epoch) or a number of "
                        "batches of 1 or more, or leave it out")
    limit = settings.get("limit_train_batches")
    if fits_type(limit, "float") and limit <= 0:
        raise UserError(f"{name('limit_train_batches')}={limit} trains on no batch; give a fraction in (0, 1] or a "
                        "number of batches of 1 or more, or leave it out")
    check_batch_limit_values(settings, name)


def check_batch_limit_values(settings: Any, name: Callable[[str], str]) -> None:
    """A one-line ``UserError`` for a ``limit_*_batches`` or ``val_check_interval`` above 1 that is no whole number
    (Lightning's own error, when it builds the trainer, read as settings that "do not work on this machine"; it
    takes 3.0 as 3 batches)."""
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches"):
        limit = settings.get(key)
        if isinstance(limit, float) and limit > 1 and not limit.is_integer():  # Lightning takes 3.0 as 3 batches
            raise UserError(f"{name(key)}={limit} is neither a fraction of the batches in [0, 1] nor a whole number of "
                            f"batches; give e.g. {name(key)}=0.5 or {name(key)}={max(1, round(limit))}")
    interval = settings.get("val_check_interval")
    if isinstance(interval, float) and interval > 1 and not interval.is_integer():  # Lightning takes 2.0 as 2 batches
        key = "val_check_interval"
        raise UserError(f"{name(key)}={interval} is neither a fraction of an epoch in (0, 1] nor a whole number of "
                        f"batches; give e.g. {name(key)}=0.5 or {name(key)}={round(interval)}")


def check_batch_limits(settings: Any, datamodule: Any, name: Callable[[str], str], world_size: int = 1) -> None:
    """A one-line ``UserError`` for a fraction in ``limit_{train,val,test}_batches`` that keeps no batch of
    ``datamodule``'s loader; Lightning refuses it only when that loop starts: the test's after all the training.

    Under DDP (``world_size`` processes) Lightning applies the limit to each process's loader, which holds
    a shard: the counts are those of the smallest shard.
    """
    if settings.get("fast_dev_run"):  # Lightning then runs its own number of batches, whatever the limits say
        return
    split = datamodule.split

    def eval_batches(images: int) -> int:  # the last rank's shard, images[rank::world_size], is the smallest
        return -(-(images // world_size) // datamodule.eval_batch_size)

    batches = {
        "train": max(world_size, len(split.unlabeled) // datamodule.batch_size) // world_size,
        "val": eval_batches(len(split.val)),
        "test": eval_batches(len(datamodule.data.test_images)) if datamodule.has_test_set else 0,
    }
    batches["predict"] = batches["test"]  # ssgan-cli predict classifies the test images
    for stage, count in batches.items():
        key = f"limit_{stage}_batches"
        limit = settings.get(key)
        if isinstance(limit, float) and 0 < limit < 1 and count and int(limit * count) == 0:
            per_process = " per process" if world_size > 1 else ""
            raise UserError(f"{name(key)}={limit} keeps {limit} of this data's {count} {stage} batch"
                            f"{'es' if count > 1 else ''}{per_process}, which is none; give a fraction of at least {1 / count:.3g} "
                            f"or a number of batches, e.g. {name(key)}=1")
    # Lightning refuses a validation every N batches beyond the epoch's only when fit starts, with a traceback
    interval, limit = settings.get("val_check_interval"), settings.get("limit_train_batches")
    if (isinstance(interval, int) and not isinstance(interval, bool) and settings.get("check_val_every_n_epoch", 1) is not None
            and interval > 0):
        train_batches = batches["train"]
        if isinstance(limit, float) and 0 <= limit <= 1:
            train_batches = int(limit * train_batches)
        elif isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            train_batches = min(limit, train_batches)
        if 0 < train_batches < interval:
            raise UserError(f"{name('val_check_interval')}={interval} is more than the {train_batches} training batches of "
                            f"an epoch; give at most {train_batches}, or a fraction of the epoch, e.g. "
                            f"{name('val_check_interval')}=0.5")


# bf16 multiplies measured below this share of the fp32 rate are slower, beyond the measurement's noise
BF16_SLOWER = 0.9


def warn_if_bf16_is_slow(trainer: pl.Trainer) -> None:
    """Warns when bf16 is asked for where it is slow: on a GPU older than Ampere (compute capability below 8.0,
    such as a T4 or V100, which has no bf16 units, so torch emulates it), or on a CPU that multiplies bf16
    matrices more slowly than fp32 ones, measured (bf16 autocast then only adds casts and slower multiplies):
    CPUs without bf16 units, and some with AVX-512-BF16."""
    if not str(trainer.precision).startswith("bf16") or not _is_rank_zero():  # one line, not one per DDP process
        return
    if isinstance(trainer.accelerator, CUDAAccelerator):
        if getattr(trainer.strategy.launcher, "_start_method", None) in ("fork", "forkserver"):
            return  # asking the GPU starts CUDA here, and processes forked after that cannot use it
        capability = gpu_capability(trainer.root_device)
        if capability is not None and capability < (8, 0):
            log.warning("trainer.precision=%s: this GPU (%s, compute capability %d.%d) has no bf16 units, so bf16 is "
                        "emulated and slow; use trainer.precision=16-mixed (or 32-true) here", trainer.precision,
                        torch.cuda.get_device_name(trainer.root_device), *capability)
        return
    if not isinstance(trainer.accelerator, CPUAccelerator):
        return
    rates = matmul_rates()
    if rates["bf16"] < BF16_SLOWER * rates["fp32"]:
        log.warning("trainer.precision=%s: this CPU multiplies bf16 matrices more slowly than fp32 ones (%.0f against "
                    "%.0f GFLOP/s, measured now), so bf16 makes training slower (docs/benchmarks.md); use "
                    "trainer.precision=32-true here", trainer.precision, rates["bf16"], rates["fp32"])


def gpu_capability(device: torch.device) -> tuple[int, int] | None:
    """The CUDA compute capability of ``device`` as (major, minor), or None where torch cannot tell (no CUDA)."""
    try:
        return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]
    except (AssertionError, RuntimeError):  # torch built without CUDA, or no driver
        return None


def _warn_of_unused_self_training_settings() -> None:
    """Warns of ``self_training.*`` settings on the command line of a run without rounds: they went unused
    without a word (``self_training.threshold=0.8`` alone, when ``self_training.rounds=N`` turns the rounds on)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        given = [item for item in HydraConfig.get().overrides.task
                 if item.lstrip("+~").startswith("self_training.") and not item.lstrip("+~").startswith("self_training.rounds=")]
    except ValueError:  # not inside a Hydra job
        return
    if given and _is_rank_zero():
        log.warning("%s %s no effect in this run, which has no self-training rounds (self_training.rounds=N or "
                    "self_training=default turns them on)", " ".join(given), "has" if len(given) == 1 else "have")


def uses_self_training(cfg: DictConfig) -> bool:
    """Whether the config asks for self-training rounds (``self_training.rounds`` > 0)."""
    if cfg.get("self_training") is None:
        return False
    rounds = cfg.self_training.get("rounds", 0)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise UserError(f"self_training.rounds={rounds} is not a number of rounds; use 0 (off) or more, "
                        "e.g. self_training.rounds=2")
    return rounds > 0


def method_name(cfg: DictConfig) -> str | None:
    """The method's name in reports: the model config's name, plus ``+self-training`` with rounds."""
    method = cfg.get("method")
    if method and uses_self_training(cfg):
        method += "+self-training"
    return method


def requested_run(cfg: DictConfig) -> dict[str, Any]:
    """What a run was asked to do (data set, method, labels, seeds), as far as the config can tell."""
    from hydra.core.hydra_config import HydraConfig

    getters = {
        "dataset": lambda: HydraConfig.get().runtime.choices.get("data"),
        "method": lambda: method_name(cfg),
        "num_labeled": lambda: cfg.data.get("num_labeled"),
        "label_fraction": lambda: cfg.data.get("label_fraction"),
        "seed": lambda: cfg.get("seed"),
        "split_seed": lambda: cfg.data.get("split_seed"),
        "num_val": lambda: cfg.data.get("num_val"),
    }
    fields = {}
    for key, getter in getters.items():
        try:
            fields[key] = getter()
        except Exception:  # a bad value in the config: record what can be read
            continue
    return fields


def check_run_options(cfg: DictConfig) -> dict[str, Any] | None:
    """Checks the task's own options (checkpoint paths, which weights to test, required settings) before any work.

    Returns the checkpoint that ``ckpt_path`` resumes from, memory-mapped (no weights read), if any.
    """

    overwrite = cfg.get("overwrite", False)
    if not isinstance(overwrite, bool):  # text such as overwrite=no would read as true, and delete the earlier run
        raise UserError(f"overwrite={config_text(overwrite)} is not true or false; use overwrite=true or overwrite=false")
    for node in ("data", "model", "trainer"):
        missing = sorted(OmegaConf.missing_keys(cfg[node])) if cfg.get(node) is not None else []
        if missing:
            key = missing[0] if missing[0].startswith(f"{node}.") else f"{node}.{missing[0]}"
            example = "PATH" if key.endswith(".root") else "VALUE"
            raise UserError(f"{key} must be set for {node}={_choice(node) or node}; add {key}={example}")
    test_ckpt = cfg.get("test_ckpt", "last")
    if test_ckpt not in ("last", "best"):
        raise UserError(f"test_ckpt={config_text(test_ckpt)} is not an option; use test_ckpt=last or test_ckpt=best")
    seed = cfg.get("seed")
    if not fits_type(seed, "int") or not 0 <= seed < 2**32:
        text = isinstance(seed, str) and reads_as(seed, "int")  # e.g. ${oc.env:SEED}, which gives text
        raise UserError(f"seed={repr(seed) if text else seed} is not a seed; use a whole number from 0 to 4294967295, e.g. seed=0"
                        + (" (it is text: write ${oc.decode:${oc.env:...}} for a value from the environment)" if text else ""))
    max_epochs = cfg.trainer.get("max_epochs") if cfg.get("trainer") is not None else None
    if cfg.get("trainer") is not None:
        check_trainer_counts(cfg.trainer, lambda key: f"trainer.{key}")
        if max_epochs is None and cfg.trainer.get("max_steps") in (None, -1):  # Lightning would train 1000 epochs
            raise UserError("trainer.max_epochs=null leaves the run no number of epochs, which the learning-rate schedule "
                            "needs; give one, e.g. trainer.max_epochs=20")
        check_accelerator(cfg.trainer.get("accelerator", "auto"), "trainer.accelerator")
        refuse_plain_ddp(cfg.trainer.get("strategy"), _trains_a_generator(cfg), "trainer.strategy")
    if cfg.get("trainer") is not None and cfg.trainer.get("precision") is not None:
        refuse_low_precision_weights(cfg.trainer.precision)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not isinstance(ckpt_path, str):
        raise UserError(f"ckpt_path={config_text(ckpt_path)} is not a checkpoint; give the path of a .ckpt file "
                        "(e.g. <run>/checkpoints/last.ckpt) or ckpt_path=last")
    if ckpt_path in ("best", "hpc"):  # Lightning's names for fit resolve to no file of an ssgan run
        raise UserError(f"ckpt_path={ckpt_path} is not a resume point; resume with ckpt_path=last (to go on from "
                        "another checkpoint, give its path, e.g. ckpt_path=<run>/checkpoints/best.ckpt)")
    if ckpt_path not in (None, "last") and Path(ckpt_path).expanduser().is_dir():
        folder = Path(ckpt_path).expanduser()
        example = checkpoint_in_folder(folder) or folder / ("last.ckpt" if folder.name == "checkpoints" else "checkpoints/last.ckpt")
        # ckpt_path=last resumes the run folder's last*.ckpt: offered for a run's folder, or its checkpoints/, that has one
        run_folder = (f", or ckpt_path=last with hydra.run.dir={hydra_value(str(example.parent.parent))}"
                      if example.parent.name == "checkpoints" and last_checkpoints(example.parent.parent) else "")
        raise UserError(f"ckpt_path={ckpt_path} is a folder; give the path of a .ckpt file in it (e.g. "
                        f"ckpt_path={hydra_value(str(example))}){run_folder}")
    if ckpt_path not in (None, "last") and not Path(ckpt_path).expanduser().is_file():
        raise UserError(f"ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file (e.g. <run>/checkpoints/last.ckpt)")
    checkpoint = _resume_checkpoint(Path(cfg.paths.output_dir), ckpt_path)
    # opened now, before any work: a file of another kind is refused in one line
    resumed_from = _open_checkpoint(str(checkpoint)) if checkpoint is not None else None
    earlier_run = _earlier_run(Path(cfg.paths.output_dir))
    if ckpt_path is None and earlier_run and not cfg.get("overwrite", False):
        raise UserError(f"{cfg.paths.output_dir} already holds a run ({earlier_run}); resume it with "
                        f"ckpt_path={hydra_value(resume_path(Path(cfg.paths.output_dir)))}, start in another folder "
                        "(hydra.run.dir=...), or replace it with overwrite=true")
    output_dir = Path(cfg.paths.output_dir).resolve()
    if (checkpoint is not None and ckpt_path != "last" and earlier_run and not cfg.get("overwrite", False)
            and output_dir not in checkpoint.resolve().parents):
        # another folder's checkpoint would go on over this folder's run, its metrics, checkpoints and curves
        raise UserError(f"{cfg.paths.output_dir} already holds a run ({earlier_run}), and ckpt_path={ckpt_path} is "
                        "another folder's checkpoint; resume it in a new folder (hydra.run.dir=...), resume this folder's "
                        "own run with ckpt_path=last, or write over it with overwrite=true")
    hpc_checkpoints = sorted(path.name for path in Path(cfg.paths.output_dir).glob("hpc_ckpt_*.ckpt"))
    if hpc_checkpoints and SLURMEnvironment.detect():  # Lightning loads these for fit, validate and test on SLURM
        raise UserError(f"{cfg.paths.output_dir} holds Lightning's {hpc_checkpoints[-1]}, which Lightning on SLURM would "
                        "load instead of this run's weights; move the hpc_ckpt_*.ckpt files out of the run's folder")
    # Lightning would warn and quietly train from scratch when this run's folder holds no last checkpoint
    if ckpt_path == "last" and not last_checkpoints(Path(cfg.paths.output_dir)):
        raise UserError(f"ckpt_path=last found no last.ckpt in this run's folder {cfg.paths.output_dir}; resume in the "
                        "killed run's folder with hydra.run.dir=<its run folder> ckpt_path=last, or give "
                        "ckpt_path=<its run folder>/checkpoints/last.ckpt")
    check_setting_types(cfg)
    if ckpt_path is not None and _RunRecord.saved is not None:
        check_resumed_settings(cfg, _RunRecord.saved)
    if resumed_from is not None and max_epochs is not None:
        check_resumed_epochs(cfg, checkpoint, resumed_from)
    return resumed_from


def _trains_a_generator(cfg: DictConfig) -> bool:
    """Whether the model the config builds is the GAN (a class with a generator), not the supervised baseline."""
    try:
        cls = import_class(str(cfg.model._target_))
    except Exception:  # no model, or a target that does not exist: Hydra's instantiate reports it
        return False
    return isinstance(cls, type) and issubclass(cls, SSGAN)


def refuse_another_split(ckpt_path: str, checkpoint: dict[str, Any], datamodule: Any, name: Callable[[str], str],
                         choose: Callable[[type], str] = lambda cls: f"data={cls.name}") -> None:
    """A one-line ``UserError`` if ``checkpoint`` was trained on another data set, with other split settings
    than ``datamodule``'s, or on other training data: resuming restores the checkpoint's split, so the run
    would report labels it never trained on, or split positions that now name other images.
    ``name`` spells a data setting as the entry point takes it, ``choose`` the choice of a datamodule class."""
    stored = checkpoint.get("ssgan_datamodule") or {}
    trained_on = str(stored.get("class_path") or "")
    if trained_on and trained_on.rpartition(".")[2] != type(datamodule).__qualname__:
        try:
            trained_class = recorded_class(trained_on, SemiSupervisedDataModule, ckpt_path, "data")
            choice = choose(trained_class)
        except Exception:  # a class this ssgan does not have
            trained_class, choice = None, None
        shown = getattr(trained_class, "name", None) or trained_on.rpartition(".")[2]
        root = (stored.get("init_args") or {}).get("root")
        where = f" {name('root')}={root}" if root is not None else ""
        fix = f"resume it with {choice}{where}, or" if choice else "resume it with the data it was trained on, or"
        raise UserError(f"{ckpt_path} was trained on the {shown} data, not on {datamodule.name}; {fix} start a new run "
                        "from scratch")
    changed = datamodule.changed_split_settings(checkpoint)
    if changed:
        shown = ", ".join(f"{name(key)}: {config_text(before)} -> {config_text(now)}" for key, before, now in changed)
        its_own = " ".join(f"{name(key)}={config_text(before)}" for key, before, _ in changed)
        raise UserError(f"{ckpt_path} was trained on another split ({shown}); resume it with its own ({its_own}), "
                        "or start a new run from scratch")
    if datamodule.changed_data(checkpoint):  # this one reads the data
        raise UserError(f"{ckpt_path} was trained on other training images than {datamodule.name} holds now; "
                        f"{datamodule.changed_data_hint}")


def check_resumed_epochs(cfg: DictConfig, checkpoint: Path, state: dict[str, Any]) -> None:
    """Refuses to resume a checkpoint that has trained more epochs than the run now asks for, or whose
    self-training rounds have begun on another schedule.

    Lightning would stop inside ``fit`` with a traceback (two or more epochs over), or report the run
    finished with more epochs than asked (one over); a run asking for exactly the epochs trained is
    the finished run, which ``train`` reports without training.
    """
    round_epochs, rounds, epochs_per_round = 0, 0, 1
    if uses_self_training(cfg):
        rounds, epochs_per_round = int(cfg.self_training.rounds), int(cfg.self_training.epochs_per_round)
        round_epochs = rounds * epochs_per_round
        refuse_changed_schedule(str(checkpoint), state, int(cfg.trainer.max_epochs), epochs_per_round,
                                train_on=f"; to train on, give more rounds from its checkpoint in a new folder "
                                         f"(self_training.rounds={rounds + 1} hydra.run.dir=<a new folder>)")
    refuse_mismatched_rounds(str(checkpoint), state, int(cfg.trainer.max_epochs), rounds, epochs_per_round,
                             settings={"max_epochs": "trainer.max_epochs={}", "rounds": "self_training.rounds={}",
                                       "on": _own_self_training_settings(checkpoint, state, Path(cfg.paths.output_dir))})
    refuse_fewer_epochs(checkpoint, state, int(cfg.trainer.max_epochs), round_epochs, setting="trainer.max_epochs")


def _own_self_training_settings(checkpoint: Path, state: dict[str, Any], output_dir: Path) -> str:
    """The self-training settings that a checkpoint whose rounds have begun was trained with, as overrides: those
    its run recorded (``<run>/.hydra/overrides.yaml``), with the schedule the checkpoint holds for what they leave to
    the config (``trainer.max_epochs``, ``self_training.epochs_per_round``)."""
    def key(item: str) -> str:
        return item.lstrip("+~").partition("=")[0]

    run_folder = checkpoint.resolve().parent.parent
    recorded: list[str] = []
    # not this command's own record (Hydra has rewritten the output folder's), nor a folder that is no run's
    if checkpoint.resolve().parent.name == "checkpoints" and run_folder != output_dir.resolve():
        try:
            recorded = _recorded_overrides(run_folder / ".hydra")
        except Exception:  # an unreadable or damaged record: the schedule alone
            recorded = []
    own = [item for item in recorded if key(item).startswith("self_training") or key(item) == "trainer.max_epochs"]
    if not any(key(item) == "self_training" or key(item).startswith("self_training.") for item in own):
        own = ["e.g.", "self_training=default", "self_training.rounds=<its rounds>"]
    base_epochs, epochs_per_round = saved_schedule(state) or (None, None)
    for setting, value in (("trainer.max_epochs", base_epochs), ("self_training.epochs_per_round", epochs_per_round)):
        if value is not None and setting not in {key(item) for item in own}:
            own.append(f"{setting}={value}")
    return " ".join(item if item == "e.g." or "<" in item else shlex.quote(item) for item in own)


def refuse_fewer_epochs(checkpoint: str | Path, state: dict[str, Any], max_epochs: int | None, round_epochs: int,
                        setting: str) -> None:
    """A one-line ``UserError`` if ``state`` (a loaded checkpoint) has trained more epochs than
    ``max_epochs`` plus the self-training rounds' ``round_epochs``; ``setting`` names the option to raise."""
    if max_epochs is None or max_epochs < 0:  # -1: no limit
        return
    started, trained = trained_text(state)  # a mid-epoch checkpoint's partly trained epoch counts
    if started > max_epochs + round_epochs:
        rounds = f" + {round_epochs} in self-training rounds" if round_epochs else ""
        raise UserError(f"{checkpoint} has trained {trained}, more than {setting}={max_epochs}{rounds}; "
                        f"resume with {setting}={started - round_epochs} or more")


def _resume_checkpoint(output_dir: Path, ckpt_path: str | None) -> Path | None:
    """The file that ``ckpt_path`` names (``last``: the newest last*.ckpt of the run, as Lightning resolves it), if any."""
    if ckpt_path == "last":
        candidates = last_checkpoints(output_dir)
        return candidates[-1] if candidates else None
    return Path(ckpt_path).expanduser() if ckpt_path and Path(ckpt_path).expanduser().is_file() else None


def check_setting_types(cfg: DictConfig) -> None:
    """Checks the plain-typed settings of every class the config builds against its ``__init__`` signature."""
    nodes = {name: cfg.get(name) for name in ("data", "model", "self_training")}
    nodes.update({f"callbacks.{name}": node for name, node in (cfg.get("callbacks") or {}).items()})
    nodes.update({f"logger.{name}": node for name, node in (cfg.get("logger") or {}).items()})
    for prefix, node in nodes.items():
        if node is None or not OmegaConf.is_dict(node) or "_target_" not in node:
            continue
        cls = _target_class(str(node._target_), prefix)
        if cls is None:
            continue
        # a class that is no model (a factory function that returns one is left to build)
        if prefix == "model" and isinstance(cls, type) and not issubclass(cls, ClassifierModule):
            # Hydra would build it and the run stop in a traceback at the first ssgan method it lacks
            raise UserError(f"model._target_={node._target_} is not an ssgan model (a subclass of "
                            f"{class_path(ClassifierModule)}); use model=ssgan or model=supervised")
        try:
            arguments = OmegaConf.to_container(node, resolve=True)
        except Exception:  # an interpolation that does not resolve: Hydra's instantiate reports it
            continue
        if isinstance(cls, type):
            check_argument_types(cls, arguments, prefix)


def _target_class(target: str, prefix: str) -> Any:
    """What ``{prefix}._target_`` names, found as Hydra finds it; a one-line ``UserError`` (with the nearest
    existing name) when no such module or name exists (Hydra's own error spans several lines), and None
    when the module exists but fails to import for another reason (Hydra's instantiate reports that)."""
    import difflib
    import importlib

    from hydra._internal.utils import _locate

    try:
        return _locate(target)
    except Exception as error:  # noqa: BLE001 - sorted out below
        cause = error.__cause__ or error
    module_name, _, name = target.rpartition(".")
    if isinstance(cause, ModuleNotFoundError) and cause.name and not target.startswith(cause.name):
        return None  # the target's module exists but needs a package that is not installed
    try:
        names = [key for key in vars(importlib.import_module(module_name)) if not key.startswith("_")]
    except ModuleNotFoundError as missing:
        if missing.name and not target.startswith(missing.name):
            return None
        raise UserError(f"{prefix}._target_={target} names nothing to build (no module {missing.name or module_name}); "
                        "give the full import path of a class, e.g. ssgan.module.SSGAN") from None
    except Exception:  # noqa: BLE001 - the module fails to import: Hydra's instantiate reports why
        return None
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {module_name}.{close[0]}?" if close else "give the full import path of a class"
    raise UserError(f"{prefix}._target_={target} names nothing to build ({module_name} has no {name}); {hint}")


# Settings that may change when a run resumes: where the data lie, how fast things run, evaluation batch
# sizes, and the guards a diverged run is resumed with (the divergence error advises gradient clipping).
RESUME_MAY_CHANGE = {"data.root", "data.download", "data.split_cache_dir", "data.image_cache_dir", "data.eval_batch_size",
                     "model.torch_compile", "model.channels_last", "model.gradient_clip_val",
                     "model.skip_nonfinite_batches", "self_training.eval_batch_size"}
RESUME_OWN_KEYS = ("ckpt_path", "hydra.run.dir", "overwrite")  # the resume command's own overrides


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"<prefix>.a.b": 1}``; an empty dict stays a value of its own."""
    if isinstance(node, dict) and node:
        return {key: value for name, child in node.items() for key, value in _flatten(child, f"{prefix}.{name}").items()}
    return {prefix: node}


def _settings(cfg: DictConfig) -> dict[str, Any]:
    """The settings that make a run what it is (``seed``, ``data``, ``model``, ``self_training``), flattened,
    with interpolations resolved where they resolve."""
    settings: dict[str, Any] = {}
    for section in ("seed", "data", "model", "self_training"):
        node = cfg.get(section)
        try:
            value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        except Exception:  # e.g. ${hydra:...} outside the run that wrote it
            value = OmegaConf.to_container(node, resolve=False)
        settings.update(_flatten(value, section))
    return settings


def _changed_settings(cfg: DictConfig, earlier_record: Path) -> list[tuple[str, str, str]]:
    """The settings (``seed``, ``data.*``, ``model.*``, ``self_training.*``) that ``cfg`` gives otherwise than the
    run of ``earlier_record`` (its ``.hydra/``) ran with, as (key, value before, value now) in override text, those
    both have first."""
    earlier_config = earlier_record / "config.yaml"
    if not earlier_config.is_file():
        return []
    before = _settings(OmegaConf.load(earlier_config))
    now = _settings(cfg)

    def differs(key: str) -> bool:
        if key in RESUME_MAY_CHANGE:
            return False
        if key in before and key in now:
            return before[key] != now[key]
        # on one side only: a changed setting when the other side holds its parent as a value (e.g.
        # model.net_kwargs: {} against model.net_kwargs.hidden_noise); else a setting that a newer
        # ssgan added (or an older one had), whose record says nothing of this run
        other = now if key in before else before
        parts = key.split(".")
        return any(".".join(parts[:end]) in other for end in range(1, len(parts)))

    def shown_value(settings: dict[str, Any], key: str) -> str:
        return config_text(settings[key]) if key in settings else "(not set)"

    # settings both configs have come first: a changed value says more than a group's extra keys
    changed = [key for key in sorted(before.keys() | now.keys(), key=lambda key: (key not in before or key not in now, key))
               if differs(key)]
    return [(key, shown_value(before, key), shown_value(now, key)) for key in changed]


def _shown_changes(changed: list[tuple[str, str, str]]) -> str:
    return ", ".join(f"{key}: {before} -> {now}" for key, before, now in changed)


def check_resumed_settings(cfg: DictConfig, earlier_record: Path) -> None:
    """Refuses to resume a run (``ckpt_path=...`` in its folder) with other settings than it ran with.

    The run's checkpoint holds weights, optimizer and self-training state for the settings recorded
    in its ``.hydra/``: going on with another model, data split, seed or self-training schedule would
    mix two runs under one record (``trainer.*`` may change, e.g. a higher ``trainer.max_epochs``).
    """
    changed = _changed_settings(cfg, earlier_record)
    if not changed:
        return
    key, rounds_before, rounds_now = changed[0]
    if len(changed) == 1 and key == "self_training.rounds" and rounds_before.isdigit() and rounds_now.isdigit() and \
            0 < int(rounds_before) < int(rounds_now):
        # more rounds for a run that had its own: they train from its checkpoint in a new folder
        overrides = [item for item in _resume_overrides(_recorded_overrides(earlier_record))
                     if item.lstrip("+").partition("=")[0] != "self_training.rounds"] + [f"self_training.rounds={rounds_now}"]
        output_dir = Path(cfg.paths.output_dir)
        command = resume_command(overrides, output_dir.with_name(output_dir.name + "_more_rounds"),
                                 str(output_dir / "checkpoints" / "last.ckpt"))
        raise UserError(f"this run's checkpoint was trained with other settings ({_shown_changes(changed)}); its own "
                        f"folder keeps its own rounds, and more rounds train from its checkpoint in a new folder: {command}")
    shown = _shown_changes(changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    raise UserError(f"this run's checkpoint was trained with other settings ({shown}{more}); resume it with its own: "
                    f"{resume_command(_resume_overrides(_recorded_overrides(earlier_record)), cfg.paths.output_dir)}")


def warn_of_settings_changed_since(cfg: DictConfig, checkpoint: Path, resumed_from: dict[str, Any] | None = None,
                                   model: pl.LightningModule | None = None) -> None:
    """Names the settings that a resume in a new folder changes from those the run of ``checkpoint`` recorded
    (``<run>/.hydra/`` beside its ``checkpoints/``): such a resume may change them (a lower learning rate after a
    divergence), but a changed seed, batch size or noise went on without a word. The optimizer's settings
    have their own message (``ClassifierModule``), the split and the model class their refusals. A checkpoint
    without that record (``ssgan-cli``'s, or one copied elsewhere) is held to the model settings it stores."""
    run_folder = checkpoint.resolve().parent.parent
    if checkpoint.parent.name == "checkpoints" and run_folder == Path(cfg.paths.output_dir).resolve():
        return  # this run's own (held to its settings by check_resumed_settings)
    record = run_folder / ".hydra"
    if checkpoint.parent.name == "checkpoints" and (record / "config.yaml").is_file():
        changed = [change for change in _changed_settings(cfg, record)
                   if not change[0].startswith(("model.optimizer_d.", "model.optimizer_g."))]
    elif resumed_from is not None and model is not None:
        changed = _changed_hyperparameters(resumed_from.get("hyper_parameters"), dict(model.hparams))
    else:
        changed = []
    if changed:
        log.warning("resuming %s with settings other than its run's: %s", checkpoint, _shown_changes(changed))


def _changed_hyperparameters(before: Any, now: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The model arguments that differ between a checkpoint's stored hyperparameters and this run's, as
    ``_changed_settings`` gives them; not those of the data (shape, classes) nor LightningCLI's own keys."""
    if not isinstance(before, dict):
        return []

    def plain(value: Any) -> Any:  # a tuple stored, a list given: the same setting
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    shared = sorted(key for key in before.keys() & now.keys()
                    if not key.startswith("_") and key not in ("image_shape", "num_classes", "class_names"))
    return [(f"model.{key}", config_text(before[key]), config_text(now[key])) for key in shared
            if plain(before[key]) != plain(now[key])]


# What a resume may set anew beside RESUME_MAY_CHANGE: the command's settings of these sections are kept
# in the resume command it is given (e.g. a higher trainer.max_epochs), in place of the run's own
RESUME_FREE_SECTIONS = ("trainer", "logger", "callbacks", "test_ckpt")


def _resume_overrides(recorded: list[str]) -> list[str]:
    """The run's recorded overrides, with the current command's overrides that a resume may change (its trainer,
    logger and callbacks settings, test_ckpt, RESUME_MAY_CHANGE) in place of the recorded ones of the same keys.
    A group chosen anew (``callbacks=none``) drops the recorded settings inside that group, which it may not have."""
    from hydra.core.hydra_config import HydraConfig

    def key(item: str) -> str:
        return item.lstrip("+~").partition("=")[0]

    try:
        current = list(HydraConfig.get().overrides.task)
    except ValueError:  # not inside a Hydra job
        current = []
    carried = {key(item): item for item in current if key(item) not in RESUME_OWN_KEYS
               and (key(item).split(".")[0] in RESUME_FREE_SECTIONS or key(item) in RESUME_MAY_CHANGE)}
    chosen = {name for name in carried if "." not in name}  # group choices: callbacks=none, trainer=cpu
    merged = [carried.pop(key(item), item) for item in recorded
              if key(item) in carried or key(item).split(".")[0] not in chosen]
    return merged + list(carried.values())


def _recorded_overrides(record: Path) -> list[str]:
    overrides = record / "overrides.yaml"
    return [str(item) for item in OmegaConf.load(overrides)] if overrides.is_file() else []


def resume_path(output_dir: Path) -> str:
    """What ``ckpt_path`` resumes the run in ``output_dir``: ``last``, or where it has no last checkpoint (a disk that
    filled up before the first was written) the newest other one it saved, such as ``checkpoints/best.ckpt``."""
    if last_checkpoints(output_dir):
        return "last"
    saved = saved_files(output_dir / "checkpoints", "*.ckpt")
    return str(saved[0]) if saved else "last"


def resume_command(overrides: list[str], output_dir: str | Path, ckpt_path: str | None = "last") -> str:
    """The ``ssgan-train`` command that resumes the run of ``overrides`` in ``output_dir`` from ``ckpt_path``
    (None: that starts it there again, for a run that saved no checkpoint)."""
    kept = [item for item in overrides if item.lstrip("+~").partition("=")[0] not in RESUME_OWN_KEYS]
    resumed = [] if ckpt_path is None else [f"ckpt_path={hydra_value(ckpt_path)}"]
    return shlex.join(["ssgan-train", *kept, f"hydra.run.dir={hydra_value(str(output_dir))}", *resumed])


# What a run writes into its folder, besides Hydra's .hydra/ record and log: overwrite=true removes
# these files (and then their folders, if empty), never anything else a user may keep there.
RUN_OUTPUTS = ("metrics.json", "confusion_matrix.png", "checkpoints/*.ckpt", "samples/epoch_*.png",
               "csv/metrics.csv", "csv/hparams.yaml", "tensorboard/events.out.tfevents.*", "tensorboard/hparams.yaml")


@contextlib.contextmanager
def _replacing_earlier_run(output_dir: Path) -> Iterator[None]:
    """overwrite=true: the earlier run's outputs are set aside while the new run starts, and deleted once it has
    saved a checkpoint or its metrics.

    A start that stops before that (a setting Lightning or the model refuses inside fit, Ctrl-C in the first
    epoch) puts them back, so a failed start never costs the earlier run. Only the run's own outputs
    (``RUN_OUTPUTS``) move: nothing else a user keeps in the folder is touched. The earlier run's lines in
    the Hydra log (``train.log``), which this run appends to, are dropped with them.
    """
    aside = output_dir / EARLIER_RUN_ASIDE
    shutil.rmtree(aside, ignore_errors=True)  # a start killed before it saved anything left one behind
    moved = [path for pattern in RUN_OUTPUTS for path in sorted(output_dir.glob(pattern)) if path.is_file()]
    for path in moved:
        (aside / path.relative_to(output_dir)).parent.mkdir(parents=True, exist_ok=True)
        path.rename(aside / path.relative_to(output_dir))
    try:
        yield
    except BaseException:
        saved = (output_dir / "metrics.json").is_file() or any((output_dir / "checkpoints").glob("*.ckpt"))
        if not saved:  # the new run saved nothing: the earlier run is still this folder's run
            for path in moved:
                path.parent.mkdir(parents=True, exist_ok=True)
                (aside / path.relative_to(output_dir)).rename(path)
            shutil.rmtree(aside, ignore_errors=True)
            # and its record and log too (a stop by a signal, or an error after some batches, included)
            _RunRecord.trained, _RunRecord.put_back = False, True
            raise
        _drop_earlier_run(output_dir, aside, moved)
        raise
    _drop_earlier_run(output_dir, aside, moved)


def _drop_earlier_run(output_dir: Path, aside: Path, moved: list[Path]) -> None:
    """Deletes the earlier run's set-aside outputs, their folders if now empty, and its lines of the Hydra log."""
    shutil.rmtree(aside, ignore_errors=True)
    for folder in {path.parent for path in moved} - {output_dir}:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    for path, size in _RunRecord.log_sizes.items():
        if path.parent.resolve() == output_dir.resolve():
            _drop_head(path, size)
    _RunRecord.log_sizes = {}  # the earlier run's lines are gone: a later restore has nothing of them to cut back to
    log.info("overwrite=true: removed the earlier run's %d file(s) (%s) from %s", len(moved),
             ", ".join(sorted({str(path.relative_to(output_dir).parent / "*") if path.parent != output_dir else path.name
                               for path in moved})), output_dir)


def _drop_head(path: Path, size: int) -> None:
    """Removes the first ``size`` bytes of ``path`` in place (the log handler appends, so it writes on at the end)."""
    if not path.is_file() or size <= 0:
        return
    with open(path, "r+b") as handle:
        handle.seek(size)
        tail = handle.read()
        handle.seek(0)
        handle.write(tail)
        handle.truncate()


def _is_rank_zero() -> bool:
    """Whether this is the global rank 0 (Lightning's rank, read from RANK, LOCAL_RANK, SLURM_PROCID, ...):
    under SLURM or multi-node torchrun, LOCAL_RANK alone names a rank 0 on every node or task."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _given_on_command_line(key: str) -> bool:
    """Whether this run's command line sets ``key`` (Hydra's overrides; False outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        overrides = list(HydraConfig.get().overrides.task)
    except Exception:  # no Hydra run (a composed config in tests)
        return False
    return any(override.lstrip("+~").split("=", 1)[0] == key for override in overrides)


def _choice(group: str) -> str | None:
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get().runtime.choices.get(group)
    except Exception:  # no Hydra run (a composed config in tests)
        return None


def _model_choice(module_class: str) -> str:
    """The override that builds ``module_class``: ``model=ssgan`` for a class of conf/model/, else ``model._target_=...``."""
    for option in group_options("model"):
        if OmegaConf.load(CONFIG_DIR / "model" / f"{option}.yaml").get("_target_") == module_class:
            return f"model={option}"
    return f"model._target_={module_class}"


def train(cfg: DictConfig) -> dict[str, Any]:
    """Trains and tests one model as ``cfg`` says; returns (and writes to ``metrics.json``) its metrics."""
    resumed_from = check_run_options(cfg)
    keep_freed_memory()  # a few ms of page faults an iteration otherwise (ssgan.cpu)
    output_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()  # loads and splits now, so bad data settings fail before any training
    if resumed_from is not None:
        refuse_another_split(cfg.ckpt_path, resumed_from, datamodule, lambda key: f"data.{key}")
    model = instantiate(cfg.model, image_shape=datamodule.image_shape, num_classes=datamodule.num_classes,
                                    class_names=list(datamodule.classes))
    if resumed_from is not None:
        refuse_another_module(cfg.ckpt_path, resumed_from, model, _model_choice)
        refuse_another_optimizer(cfg.ckpt_path, resumed_from, model, lambda setting, cls: f"model.{setting}._target_={cls}")
        if _is_rank_zero():
            warn_of_settings_changed_since(cfg, _resume_checkpoint(output_dir, cfg.ckpt_path), resumed_from, model)
    if _is_rank_zero():
        warn_if_the_conv_net_gets_a_high_lr(model, lambda setting, value: f"model.{setting}={value}",
                                            ", as experiment=cifar10_4000 does")
    trainer = build_trainer(cfg, output_dir, has_validation=len(datamodule.split.val) > 0,
                            validation_metrics=model.validation_metrics)
    check_batch_limits(cfg.trainer, datamodule, lambda key: f"trainer.{key}", trainer.world_size)
    # only now: a start that fails its checks leaves the earlier run whole
    replacing = cfg.get("ckpt_path") is None and cfg.get("overwrite", False) and _is_rank_zero() and _earlier_run(output_dir)
    with _replacing_earlier_run(output_dir) if replacing else contextlib.nullcontext():
        return _fit_and_test(cfg, datamodule, model, trainer, resumed_from)


def _fit_and_test(cfg: DictConfig, datamodule: Any, model: pl.LightningModule, trainer: pl.Trainer,
                  resumed_from: dict[str, Any] | None) -> dict[str, Any]:
    """Fits (or resumes) ``model``, tests it and writes ``metrics.json``: the part of ``train`` after the checks."""
    output_dir = Path(cfg.paths.output_dir)
    method = method_name(cfg) or type(model).__name__.lower()
    self_training = next((c for c in trainer.callbacks if isinstance(c, SelfTraining)), None)
    speed_monitor = next((c for c in trainer.callbacks if isinstance(c, SpeedMonitor)), None)
    metrics: dict[str, Any] = {
        "dataset": datamodule.name, "method": method, "num_labeled": datamodule.labeled_count,
        "label_fraction": datamodule.label_fraction, "seed": cfg.seed, "split_seed": datamodule.split_seed,
        "num_val": len(datamodule.split.val), "num_unlabeled": len(datamodule.split.unlabeled), "net": model.arch,
        "precision": str(trainer.precision),
    }
    if len(getattr(datamodule, "synthetic_labels", ())):  # data.synthetic_labeled_dir: generated labeled images
        metrics["num_synthetic_labeled"] = len(datamodule.synthetic_labels)
    # the baseline without self-training draws unlabeled batches only for the data-dependent init
    unused = "" if isinstance(model, SSGAN) or uses_self_training(cfg) else " (which this method does not train on)"
    log.info("training %s on %s: %d labeled, %d unlabeled%s, %d validation images",
             method, datamodule.name, metrics["num_labeled"], metrics["num_unlabeled"], unused, metrics["num_val"])
    resumed_step = int(resumed_from.get("global_step", -1)) if resumed_from is not None else None
    # the file ckpt_path=last names, not "last": Lightning looks for it only in its checkpoint callbacks'
    # folders, and with callbacks=none would quietly train from scratch
    resume_from = _resume_checkpoint(output_dir, cfg.get("ckpt_path"))
    earlier_curves = _curves_before(trainer, resumed_from, output_dir, resume_from)
    start = time.perf_counter()

    def seconds_trained() -> float:
        # as the checkpoints count them (the SpeedMonitor's, which carries a resumed run's earlier seconds):
        # from fit's setup, so under DDP not the seconds the other ranks took to start
        fitting = speed_monitor.seconds_fitting() if speed_monitor is not None else None
        return fitting if fitting is not None else time.perf_counter() - start

    try:
        _start_curves(trainer, earlier_curves)  # before the fit logs a row: a run killed again keeps them
        fit_failed = True
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from is not None else None)
            fit_failed = False
        finally:
            _RunRecord.trained = trainer.global_step > (resumed_step or 0)
            trained_on = resumed_step is not None and trainer.global_step > resumed_step
            _put_curves_back(trainer, earlier_curves, trained_on, fit_failed)
            if fit_failed and not trained_on:  # a start that failed leaves no copy of the run's best checkpoint
                for callback in trainer.callbacks:
                    if isinstance(callback, KeepBestAcrossFolders):
                        callback.discard_copies()
    except DivergenceError as error:
        metrics.update(status="diverged", error=str(error), epochs=trainer.current_epoch,
                       train_seconds=round(seconds_trained(), 2))
        if self_training is not None:  # the rounds that ended before the divergence
            metrics.update(rounds=copy.deepcopy(self_training.history), rounds_planned=self_training.rounds)
        if trainer.is_global_zero:  # one writer: each rank's error names its own first non-finite value
            write_json_atomic(output_dir / "metrics.json", metrics)
        last = output_dir / "checkpoints" / "last.ckpt"
        # nothing saved yet in this folder: the checkpoint this run resumed from is the last good one
        last_good = last if last.is_file() else _resume_checkpoint(output_dir, cfg.get("ckpt_path"))
        raise UserError(diverged_message(error, last_good, "model.gradient_clip_val")) from None
    except (MisconfigurationException, RuntimeError, ValueError) as error:
        # a callback monitoring a train/ metric under a name the run does not log (val/ ones are refused before)
        unknown_metric = monitored_metric_error(error)
        if unknown_metric is not None:
            raise unknown_metric from None
        # the resumed checkpoint's weights or optimizer state do not fit the nets this run builds
        text = str(error)
        if isinstance(error, MisconfigurationException) or not cfg.get("ckpt_path") or \
                not ("Error(s) in loading state_dict" in text or "parameter group" in text):
            raise
        detail = next((line.strip() for line in text.splitlines()[1:] if line.strip()), text.splitlines()[0].strip())
        raise UserError(f"ckpt_path={cfg.ckpt_path} does not fit the nets this run builds ({detail}); it is from another "
                        "version of ssgan or other model settings: resume with those, or start a new run") from None
    train_seconds = seconds_trained()
    if cfg.get("ckpt_path") and trainer.global_step == resumed_step:
        # The checkpoint was taken at the end of training: nothing was left to train.
        finished = _finished_metrics(output_dir / "metrics.json")
        if finished is not None:
            train_on = ("raise trainer.max_epochs to train on" if not uses_self_training(cfg) else
                        f"to train more self-training rounds, resume its checkpoint in a new folder with "
                        f"self_training.rounds={int(cfg.self_training.rounds) + 1} (hydra.run.dir=<a new folder> "
                        f"ckpt_path={_resume_checkpoint(output_dir, cfg.ckpt_path)})")
            log.info("this run had already finished (epoch %d of %d): nothing to train; %s", trainer.current_epoch,
                     trainer.max_epochs, train_on)
            tested_now = _test_finished_run_again(cfg, finished, model, datamodule, trainer)
            close_process_group(trainer)
            return tested_now if tested_now is not None else finished
        # killed after its last checkpoint but before its metrics: validate the last weights again
        # (the val/acc of the last epoch), then test and write them as an uninterrupted run would have
        trainer.validate(model, datamodule=datamodule, verbose=False)
    # trainer.max_steps or max_time ended the fit inside an epoch, whose end would have validated: the val/acc
    # reported is then the tested weights', not the last whole epoch's
    # (a resume with nothing left to train validated above, and keeps its checkpoint's share of the epoch)
    epoch_fraction = last_epoch_fraction(trainer)
    if epoch_fraction < 1 and trainer.global_step != resumed_step and len(datamodule.split.val) > 0 \
            and not trainer.fast_dev_run:
        trainer.validate(model, datamodule=datamodule, verbose=False)
    # copied now: testing a checkpoint (test_ckpt=best) restores the callbacks' state from it
    rounds = copy.deepcopy(self_training.history) if self_training is not None else None
    last_val = trainer.callback_metrics.get("val/acc")  # read now: trainer.test replaces the callback metrics
    skipped_batches = int(getattr(model, "skipped_batches", 0))  # and test_ckpt=best reloads the module's buffers

    # the checkpoint of the best epoch by validation (none without validation images)
    checkpoint = next((c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None) is not None), None)
    best_val = float(checkpoint.best_model_score) if checkpoint is not None and checkpoint.best_model_score is not None else None
    # read now too: the test of best.ckpt puts back the checkpoint callbacks' state it holds, whose paths are
    # the folder's that saved it (another folder's, for a best.ckpt carried over by a resume into a new folder)
    best_epoch = _best_epoch(checkpoint)
    tested = cfg.get("test_ckpt", "last")
    if tested == "best" and not (checkpoint is not None and checkpoint.best_model_path):
        tested = "last"  # nothing was saved (e.g. fast_dev_run): test the weights in memory
        log.warning("test_ckpt=best, but no best checkpoint was saved (no validation ran, or fast_dev_run): testing the last weights")
    speed = speed_monitor.summary() if speed_monitor is not None else {}
    test_results: dict[str, float] = {}
    if datamodule.has_test_set:
        # "last" tests the weights in memory, which are the last ones
        # "best" names the file of the checkpoint that picked it, not Lightning's "best" (the first ModelCheckpoint's)
        tests = trainer.test(model, datamodule=datamodule, verbose=False,
                             ckpt_path=checkpoint.best_model_path if tested == "best" and checkpoint else None)
        if not tests:  # trainer.limit_test_batches=0
            log.warning("the test ran on no batch (trainer.limit_test_batches): the run reports no test metrics")
        test_results = tests[0] if tests else {}
    else:
        log.warning("no test images (a folder without test/, or none of its images could be read): the run reports "
                    "no test metrics")
    test_acc = float(test_results["test/acc"]) if "test/acc" in test_results else None
    metrics.update(
        status="ok",
        # the cut epoch counts as started both when it ran now and when its checkpoint (saved as mid-epoch, see
        # ClassifierModule.on_save_checkpoint) was resumed, while current_epoch counts it only in the first case
        epochs=trainer.current_epoch if epoch_fraction == 1 else
        round(trainer.fit_loop.epoch_progress.current.started - 1 + epoch_fraction, 3),
        steps=trainer.fit_loop.epoch_loop.total_batch_idx + 1 if trainer.fit_loop.epoch_loop.total_batch_idx >= 0 else 0,
        train_seconds=round(train_seconds, 2),
        **speed,
        **{"test/acc": test_acc, "test/error": 1.0 - test_acc if test_acc is not None else None},
        **{key: float(value) for key, value in sorted(test_results.items()) if key != "test/acc"},
        **{"val/acc": float(last_val) if last_val is not None else None},
        **{"val/best_acc": best_val, "best_epoch": best_epoch, "tested": tested},
        skipped_batches=skipped_batches,
    )
    if rounds is not None:
        # fewer trained entries than rounds_planned + 1: early stopping or trainer.max_steps ended the rounds (warned)
        metrics.update(rounds=rounds, rounds_planned=self_training.rounds)
    if trainer.world_size > 1:
        metrics.update(world_size=trainer.world_size, split_fingerprints=_gathered_split_fingerprints(trainer, datamodule))
    if trainer.is_global_zero:  # one writer under DDP
        write_json_atomic(output_dir / "metrics.json", metrics)
    close_process_group(trainer)
    return metrics


def _test_finished_run_again(cfg: DictConfig, finished: dict[str, Any], model: pl.LightningModule, datamodule: Any,
                             trainer: pl.Trainer) -> dict[str, Any] | None:
    """Tests a finished run's other weights when ``test_ckpt`` names them (``ckpt_path=last test_ckpt=best``
    after a run that tested its last ones, or the reverse), and rewrites its ``metrics.json`` with that test;
    None when the run already tested what ``test_ckpt`` asks for (its ``metrics.json`` is kept as it is)."""
    asked, tested = cfg.get("test_ckpt", "last"), finished.get("tested")
    if tested is None or tested == asked or not datamodule.has_test_set or not _given_on_command_line("test_ckpt"):
        return None  # a resume that does not name test_ckpt keeps what the run tested
    checkpoint = next((c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None) is not None), None)
    best = checkpoint.best_model_path if checkpoint is not None else ""
    if asked == "best" and not best:
        log.warning("test_ckpt=best, but this run kept no best checkpoint: its metrics.json (of the last weights) is kept")
        return None
    if asked == "best":  # read before the test: a damaged file was Lightning's traceback
        try:
            _open_checkpoint(best)
        except UserError:
            raise UserError(f"test_ckpt=best: {best} cannot be read (damaged, or cut short by a full disk); the run's "
                            f"metrics.json (of its {tested} weights) is kept as it is") from None
    log.info("testing the run's %s weights, as test_ckpt=%s asks (its metrics.json had the %s ones')", asked, asked, tested)
    # "last": the weights in memory, which the fit restored from the run's last checkpoint
    tests = trainer.test(model, datamodule=datamodule, verbose=False, ckpt_path=best if asked == "best" else None)
    if not tests:  # trainer.limit_test_batches=0: nothing tested, the run's figures stay
        return None
    results = tests[0]
    test_acc = float(results["test/acc"]) if "test/acc" in results else None
    metrics = {key: value for key, value in finished.items() if not key.startswith("test/")}
    metrics.update({"test/acc": test_acc, "test/error": 1.0 - test_acc if test_acc is not None else None},
                   **{key: float(value) for key, value in sorted(results.items()) if key != "test/acc"}, tested=asked)
    if trainer.is_global_zero:  # one writer under DDP
        write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", metrics)
    return metrics


def close_process_group(trainer: pl.Trainer) -> None:
    """Ends a DDP run's process group once every rank is done with it (a no-op in one process).

    Lightning leaves the group open; a gloo group left to the interpreter's exit can abort a run that
    finished ("terminate called without an active exception", exit code 134).
    """
    import torch.distributed as dist

    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        trainer.strategy.barrier("end of run")
        dist.destroy_process_group()


def leave_process_group() -> None:
    """Ends a DDP rank's process group on its way out after a stop (see ``close_process_group``); no-op in one process.

    Every rank stops after the same batch (``SyncedSigterm``), so none is left waiting in a collective.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):  # leaving anyway: never turn the stop's exit into a traceback
            dist.destroy_process_group()


def _gathered_split_fingerprints(trainer: pl.Trainer, datamodule: Any) -> list[str]:
    """Each rank's fingerprint of its labeled/validation split; they must all be equal."""
    import hashlib

    import torch

    split = datamodule.split
    digest = hashlib.sha1(split.labeled.tobytes() + b"|" + split.val.tobytes()).digest()
    local = torch.tensor(int.from_bytes(digest[:7], "big"), dtype=torch.long)
    gathered = trainer.strategy.all_gather(local).reshape(-1).tolist()  # (world_size,)
    fingerprints = [f"{value:014x}" for value in gathered]
    if len(set(fingerprints)) != 1:
        raise RuntimeError(f"the ranks drew different splits ({fingerprints}); this is a bug, please report it")
    return fingerprints


def _open_checkpoint(ckpt_path: str) -> dict[str, Any]:
    """The checkpoint file memory-mapped (its tensors are read only when used), or a one-line error."""
    import torch

    from ssgan.tools import cut_short, foreign_archive, other_checkpoint_advice

    problem = foreign_archive(ckpt_path)
    if problem:
        raise UserError(f"ckpt_path={ckpt_path} {problem}; give a .ckpt file that ssgan-train saved "
                        "(e.g. <run>/checkpoints/last.ckpt)")
    try:
        # the safe loader, as Lightning's own load of it then: a checkpoint's pickled code never runs here
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # not a zip checkpoint (e.g. metrics.json), truncated, or of another program
        if cut_short(ckpt_path):  # a last.ckpt whose write a full disk or a kill stopped: name what still reads
            raise UserError(f"ckpt_path={ckpt_path} is damaged or cut short ({type(error).__name__}); "
                            f"{other_checkpoint_advice(ckpt_path, 'ckpt_path', 'start it again without ckpt_path (with overwrite=true in its own folder)', quote=hydra_value)}") from None
        raise UserError(f"ckpt_path={ckpt_path} is not a readable checkpoint ({type(error).__name__}); "
                        "give a .ckpt file that ssgan-train saved (e.g. <run>/checkpoints/last.ckpt)") from None
    if not is_training_checkpoint(checkpoint):
        raise UserError(f"ckpt_path={ckpt_path} {NOT_A_TRAINING_CHECKPOINT}; give a .ckpt file that ssgan-train saved "
                        "(e.g. <run>/checkpoints/last.ckpt)")
    return checkpoint


NOT_A_TRAINING_CHECKPOINT = "is a torch file, but no checkpoint of a training run (no Lightning state in it)"


def is_training_checkpoint(checkpoint: Any) -> bool:
    """Whether a loaded file is a Lightning training checkpoint (what a resume needs), not some other torch file
    (a bare tensor or dictionary, where Lightning's own resume stopped with a KeyError traceback)."""
    return isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint and "state_dict" in checkpoint


# a CSV log's rows when a resumed fit starts, the checkpoint's batch count, and whether the rows are
# another folder's (the run that saved the checkpoint, for a resume into a new folder)
KeptCurves = dict[Path, tuple[list[dict[str, str]], int, bool]]


def _curves_before(trainer: pl.Trainer, state: dict[str, Any] | None, output_dir: Path,
                   checkpoint: Path | None) -> KeptCurves:
    """The CSV logs' rows when a resumed fit starts, per file, with the checkpoint's batch count.

    Lightning's CSV logger deletes its ``metrics.csv`` when it starts, and a resumed run would keep
    only the epochs it ran; ``_put_curves_back`` puts the rows back in front of the new ones. A resume
    into a new folder takes the rows of the run that saved ``checkpoint``, from the same place in its folder.
    """
    from pytorch_lightning.loggers import CSVLogger

    if state is None or not trainer.is_global_zero:
        return {}
    # the logged step counts batches (not optimizer steps); rows logged after the checkpoint are redone
    resumed_at = int(state.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
                     .get("_batches_that_stepped", 0))
    kept = {}
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        if path.is_file():
            kept[path] = (_csv_rows(path), resumed_at, False)
        elif (rows := _earlier_runs_curves(state, output_dir, path, checkpoint)) is not None:
            kept[path] = (rows, resumed_at, True)
    return kept


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _earlier_runs_curves(state: dict[str, Any], output_dir: Path, path: Path,
                         checkpoint: Path | None) -> list[dict[str, str]] | None:
    """For a resume into a new folder: the rows of the CSV log at ``path``'s place in the folder of the run that saved
    the checkpoint, if any: the folder the checkpoint file is in (``<run>/checkpoints/last.ckpt``), else the one
    its checkpoint callbacks saved in (a copied checkpoint). A folder that has since held another run is
    told by its curves: they must hold the checkpoint's best ``val/acc`` (without one, only the checkpoint
    file's own folder is taken)."""
    try:
        relative = path.resolve().relative_to(output_dir.resolve())
    except ValueError:  # a CSV logger outside the run's folder (logger.csv.save_dir): no place to match
        return None
    own = checkpoint.resolve().parent.parent if checkpoint is not None and checkpoint.resolve().parent.name == "checkpoints" \
        else None
    callback_states = [value for key, value in (state.get("callbacks") or {}).items()
                       if isinstance(key, str) and "Checkpoint" in key and isinstance(value, dict)]
    recorded = [Path(value["dirpath"]).resolve().parent for value in callback_states if isinstance(value.get("dirpath"), str)]
    best_scores = [float(value["best_model_score"]) for value in callback_states
                   if value.get("monitor") == "val/acc" and value.get("best_model_score") is not None]
    for run in dict.fromkeys([folder for folder in (own, *recorded) if folder is not None]):  # in order, once each
        candidate = run / relative
        if run == output_dir.resolve() or not candidate.is_file():
            continue
        rows = _csv_rows(candidate)
        if best_scores:
            logged = {float(row["val/acc"]) for row in rows if row.get("val/acc")}
            if any(abs(score - value) < 1e-6 for score in best_scores for value in logged):
                return rows
        elif run == own:
            return rows
    return None


def _rows_before(rows: list[dict[str, str]], resumed_at: int) -> list[dict[str, str]]:
    """The rows logged before the checkpoint's batch (the resumed fit logs the later ones again)."""
    return [row for row in rows if row.get("step", "").isdigit() and int(row["step"]) < resumed_at]


def _write_curves(path: Path, rows: list[dict[str, str]]) -> list[str]:
    """Writes ``rows`` as the CSV log ``path`` (atomically); returns its columns, sorted as Lightning's."""
    columns = sorted({key for row in rows for key in row})

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)
    return columns


def _csv_writers(trainer: pl.Trainer) -> dict[Path, Any]:
    """Each CSV logger's file, with the logger (whose ``experiment`` writes it)."""
    from pytorch_lightning.loggers import CSVLogger

    return {Path(logger.log_dir) / "metrics.csv": logger for logger in trainer.loggers if isinstance(logger, CSVLogger)}


def _start_curves(trainer: pl.Trainer, kept: KeptCurves) -> None:
    """Starts each CSV log of a resumed fit with its rows from before the checkpoint's batch (``_curves_before``).

    Lightning's CSV logger deletes the file it finds when it sets up, and then appends each row it logs:
    the logger is set up here, before the fit, and the file written after it, so a run killed again
    keeps the earlier rows.
    """
    loggers = _csv_writers(trainer)
    for path, (rows, resumed_at, _) in kept.items():
        experiment = loggers[path].experiment  # set up now: the file it deletes is in ``kept``
        before = _rows_before(rows, resumed_at)
        if before:
            experiment.metrics_keys = _write_curves(path, before)  # its later rows go under this header


def _put_curves_back(trainer: pl.Trainer, kept: KeptCurves, trained_on: bool, failed: bool) -> None:
    """After a resumed fit that trained nothing (a finished run, or a fit that failed), puts each CSV log
    right (see ``_start_curves``, which wrote the rows from before the checkpoint's batch).

    In the run's folder every row is kept, the later ones too (e.g. its test's). A resume into a new folder
    keeps the rows before the checkpoint when it goes on (a finished run is tested again, whose rows follow
    them), and leaves no file when it failed.
    """
    if trained_on or not kept:  # the rows before the checkpoint, then the fit's
        return
    loggers = _csv_writers(trainer)
    for path, (rows, resumed_at, carried) in kept.items():
        written = _csv_rows(path) if path.is_file() else []
        logged = written[len(_rows_before(rows, resumed_at)):]  # by the fit, after those
        if carried:
            if failed and not logged:
                path.unlink(missing_ok=True)
            continue
        columns = _write_curves(path, rows + logged)
        if path in loggers:  # the logger appends its later rows (the test's) under this header
            loggers[path].experiment.metrics_keys = columns


def _finished_metrics(path: Path) -> dict[str, Any] | None:
    """The metrics of a run that finished (``status: ok``) in ``path``, or None."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("status") == "ok" else None


def _best_epoch(checkpoint: Any) -> int | None:
    """The epoch of the best validation checkpoint, read from its stored state."""
    if checkpoint is None or not checkpoint.best_model_path:
        return None
    import torch

    state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True, mmap=True)  # no weight reads
    return int(state["epoch"])


def summary_line(metrics: dict[str, Any]) -> str:
    """One line: data set, labels, method, test accuracy."""
    test_acc = metrics.get("test/acc")
    tested = f"test acc {100 * test_acc:.2f}%" if test_acc is not None else "no test set"
    return (f"{metrics['dataset']} | {metrics['num_labeled']} labels | {metrics['method']} | "
            f"{tested} | {metrics['train_seconds']:.0f} s")


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _remove_if_only_hydra_files(output_dir: Path) -> None:
    """Removes what a failed start made: its run folder, if it holds nothing but Hydra's own files (and a
    logger's folder with no curve yet), and the folders above it that Hydra made for it and that are now
    empty (e.g. ``outputs/digits/ssgan/``). In a folder that was there before the start
    (``hydra.run.dir=<folder>``) only the files this start added go, and nothing above it."""
    if not output_dir.is_dir():
        return

    def set_up_only(path: Path) -> bool:  # Hydra's record and log, or a logger's folder with no curve in it yet
        return path.name == ".hydra" or path.suffix == ".log" or (
            path.is_dir() and all(f.name == "hparams.yaml" for f in path.rglob("*") if not f.is_dir()))

    given = _RunRecord.run_dir is not None and Path(os.path.abspath(output_dir)) == _RunRecord.run_dir
    before = _RunRecord.entries_before if given else None
    made = [path for path in output_dir.iterdir() if before is None or path.name not in before]
    if not all(set_up_only(path) for path in made):
        return
    if before is not None:  # the user's folder, maybe with files of their own: only what this start added goes
        for path in made:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return
    shutil.rmtree(output_dir, ignore_errors=True)
    # up to the nearest folder that was there before the start (hydra.run.dir=...), or to the working folder
    stop = _RunRecord.first_existing.resolve() if given and _RunRecord.first_existing is not None else Path.cwd().resolve()
    parent = output_dir.resolve().parent
    while parent != stop and stop in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


class _RunRecord:
    """A copy of an existing run folder's ``.hydra/`` record, put back if this start fails before it runs.

    Hydra rewrites ``<run>/.hydra/`` (config, overrides) before the job starts; a start with a bad
    setting in the folder of an earlier run (``hydra.run.dir=<run> ...``) must not leave that run
    described by settings it never ran with. A start that ran and wrote its own ``metrics.json``
    (e.g. ``status: diverged``) keeps the new record. The run's Hydra log (``train.log``) is cut
    back to its earlier length, so it holds no lines of the start that failed.
    """

    saved: Path | None = None
    metrics_stamp: int | None = None
    log_sizes: dict[Path, int] = {}
    trained = False  # this start trained at least one batch: its record and log lines describe what it did
    put_back = False  # an overwrite=true start stopped before it saved, and put the earlier run back
    run_dir: Path | None = None  # hydra.run.dir as given on the command line, made absolute
    entries_before: set[str] | None = None  # what that folder held before the start (None: it did not exist)
    first_existing: Path | None = None  # the nearest of it and its parents that existed before the start

    @staticmethod
    def _metrics_stamp(run_dir: Path) -> int | None:
        metrics = run_dir / "metrics.json"
        return metrics.stat().st_mtime_ns if metrics.is_file() else None

    @classmethod
    def save(cls, args: list[str]) -> None:
        cls.trained = cls.put_back = False
        run_dir = _command_line_settings(args).get("hydra.run.dir")
        # os.path.abspath, as Hydra's output_dir: it folds "..", which Path.absolute keeps
        cls.run_dir = Path(os.path.abspath(run_dir)) if run_dir and "${" not in run_dir else None
        cls.entries_before = cls.first_existing = None
        if cls.run_dir is not None:
            cls.entries_before = {path.name for path in cls.run_dir.iterdir()} if cls.run_dir.is_dir() else None
            cls.first_existing = next((path for path in (cls.run_dir, *cls.run_dir.parents) if path.exists()), None)
        record = Path(run_dir) / ".hydra" if run_dir else None
        if record is not None and record.is_dir():
            import tempfile

            cls.saved = Path(tempfile.mkdtemp(prefix="ssgan-hydra-record-")) / ".hydra"
            shutil.copytree(record, cls.saved)
            cls.metrics_stamp = cls._metrics_stamp(record.parent)
            cls.log_sizes = {path: path.stat().st_size for path in record.parent.glob("*.log")}

    @classmethod
    def ran(cls, output_dir: Path) -> bool:
        """Whether this start trained or wrote the folder's ``metrics.json`` (it ran, and its folder and log are kept)."""
        return cls.trained or cls._metrics_stamp(output_dir) not in (None, cls.metrics_stamp)

    @classmethod
    def restore(cls, output_dir: Path) -> None:
        if cls.saved is not None and output_dir.is_dir() and not cls.trained and cls._metrics_stamp(output_dir) == cls.metrics_stamp:
            shutil.rmtree(output_dir / ".hydra", ignore_errors=True)
            shutil.copytree(cls.saved, output_dir / ".hydra")
            for path, size in cls.log_sizes.items():
                if path.is_file() and path.stat().st_size > size:
                    os.truncate(path, size)

    @classmethod
    def discard(cls) -> None:
        if cls.saved is not None:
            shutil.rmtree(cls.saved.parent, ignore_errors=True)
            cls.saved = cls.metrics_stamp = None
            cls.log_sizes = {}
        cls.trained = cls.put_back = False
        cls.run_dir = cls.entries_before = cls.first_existing = None


def _log_to_files_only(level: int, message: str) -> None:
    """Writes ``message`` to the log files (Hydra's ``train.log``) and not to the console, which gets it once, as the error line."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and level >= handler.level:
            handler.handle(record)


def _undo_start(output_dir: Path) -> None:
    """Takes back what a start that ended before it ran (a bad setting, a crash, Ctrl-C while the data were read)
    left in its folder: a new folder holding only Hydra's files goes, and an earlier run's record is put back."""
    if not _is_rank_zero():  # under DDP, one process touches the folder
        return
    if not (output_dir / "metrics.json").exists():
        _remove_if_only_hydra_files(output_dir)
    _RunRecord.restore(output_dir)


def _exit_stopped(output_dir: Path, how: str, signal_number: int, checkpoints: bool = True) -> None:
    """Ends a run stopped by a signal with one line saying how to resume it, and the signal's exit status
    (``checkpoints``: whether the run's callbacks save any)."""
    with ctrl_c_ignored():  # a second Ctrl-C must not cut the clean-up short, as Lightning ensures for its own
        advice = _put_away_stopped_run(output_dir, checkpoints)
        print(f"error: stopped by {how} before the run finished; {advice}", file=sys.stderr)
        leave_process_group()
    sys.exit(128 + signal_number)  # as a process killed by the signal: a scheduler or `&&` sees that it did not finish


def _put_away_stopped_run(output_dir: Path, checkpoints: bool) -> str:
    """Leaves a stopped run's folder as its resume needs it, or as it was before the start; returns what to do next."""
    if _RunRecord.put_back:  # the checkpoints there are the earlier run's, under its own record again
        _RunRecord.restore(output_dir)
        return "it saved nothing, and the earlier run in its folder is kept as it was (start again with overwrite=true)"
    if _RunRecord.saved is not None and not _RunRecord.ran(output_dir):
        # stopped before it trained (e.g. while the data were read) in the folder of an earlier run, whose
        # checkpoints are not this start's to resume: that run keeps its own record
        _RunRecord.restore(output_dir)
        return "it had not begun to train, and the run in its folder is kept as it was; run the same command again"
    if resume_path(output_dir) != "last" or last_checkpoints(output_dir):
        from hydra.core.hydra_config import HydraConfig

        # in a sweep, this job alone resumes in its folder (a sweep folder that holds runs takes no new sweep)
        from ssgan.tools import checkpoint_epoch

        newest = resume_path(output_dir)
        resume = resume_command(list(HydraConfig.get().overrides.task), output_dir, newest)
        # with no last.ckpt, the checkpoint named may be epochs older than where the run stopped
        epoch = checkpoint_epoch(newest) if newest != "last" else None
        saved_in = f" (its newest checkpoint, saved in epoch {epoch})" if epoch is not None else ""
        return f"resume {'this job' if _is_multirun() else 'it'} with: {resume}{saved_in}"
    why = "it stopped before its first checkpoint" if checkpoints else "it saves no checkpoints (callbacks=none)"
    if _is_multirun():  # a sweep's report shows the stopped job by its folder; the job starts again alone, there
        from hydra.core.hydra_config import HydraConfig

        return f"{why}, so start this job again with: {resume_command(list(HydraConfig.get().overrides.task), output_dir, None)}"
    _undo_start(output_dir)
    return f"{why}, so start it again"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    sigterm_default_again()  # the start-up's handler: this task's own follows (sigterm_stops_outside_lightning)
    with log_write_errors_quiet():
        return _hydra_task(cfg)


@contextlib.contextmanager
def log_write_errors_quiet() -> Iterator[None]:
    """Within the block a log file that cannot be written (a full disk) prints no traceback for each log line."""
    before = logging.raiseExceptions
    logging.raiseExceptions = False
    try:
        yield
    finally:
        logging.raiseExceptions = before


def _hydra_task(cfg: DictConfig) -> float | None:
    hide_lightning_noise()  # again here: a launcher's worker processes (hydra/launcher=local) did not run main()
    escape_unencodable_output()  # and for the log handlers Hydra has set up since
    output_dir = Path(cfg.paths.output_dir)
    callbacks = cfg.get("callbacks") or {}
    checkpoints = any("Checkpoint" in str(callback.get("_target_", "")) for callback in callbacks.values()
                      if hasattr(callback, "get"))
    try:
        with sigterm_stops_outside_lightning():  # e.g. while the data are read: the start is taken back, as for Ctrl-C
            metrics = train(cfg)
    except SIGTERMException:  # Lightning stops the loop on SIGTERM with a SystemExit of status 0
        _exit_stopped(output_dir, "SIGTERM", 15, checkpoints)
    except SystemExit as stop:
        if not isinstance(stop.__context__, KeyboardInterrupt):
            raise
        _exit_stopped(output_dir, "Ctrl-C", 2, checkpoints)  # Lightning's handler turns Ctrl-C into a bare exit(1)
    except KeyboardInterrupt:  # before Lightning's handler, e.g. while the data are read
        _exit_stopped(output_dir, "Ctrl-C", 2, checkpoints)
    except UserError as error:
        if _is_multirun():  # one bad job must not stop the sweep: record it and go on
            _record_failed_job(cfg, output_dir, str(error))
            return None
        _undo_start(output_dir)
        if _is_rank_zero():  # under DDP every rank ends here: one line
            if _RunRecord.ran(output_dir):  # e.g. a diverged run: its log ends with why it stopped
                _log_to_files_only(logging.ERROR, f"error: {error}")
            print(f"error: {error}", file=sys.stderr)
        # a diverged DDP run's ranks: a gloo group left to the interpreter's exit aborted the process now and then,
        # after the line ("terminate called without an active exception", -6), as ssgan-cli's divergence exit avoids
        leave_process_group()
        sys.exit(2)
    except Exception as error:  # a bug or a crash: in a sweep it fails this job alone, on the record
        failure = failed_write_message(error, output_dir) if isinstance(error, OSError) else None
        if failure is not None:  # a write that failed mid-run (a full disk): one line, and how to go on
            _stop_on_failed_write(cfg, output_dir, failure, checkpoints)
            return None
        if not _is_multirun():
            _undo_start(output_dir)  # the traceback stays; an earlier run in the folder keeps its own record
            raise
        log.exception("job crashed")
        cause = error.__cause__ if isinstance(error, InstantiationException) and error.__cause__ else error
        _record_failed_job(cfg, output_dir, " ".join(f"{type(cause).__name__}: {cause}".split())[:500], crashed=True)
        return None
    if _is_rank_zero():
        print(summary_line(metrics), flush=True)  # once, not once per DDP rank
    return metrics["test/acc"]


def _stop_on_failed_write(cfg: DictConfig, output_dir: Path, failure: str, checkpoints: bool) -> None:
    """Ends a run whose write failed with ``failure``'s line and how to resume; in a sweep, records the job and
    returns, as after a bad setting (a full disk fails the next job too)."""
    if _is_multirun():
        try:
            _record_failed_job(cfg, output_dir, failure)
        except UserError as unrecorded:  # its metrics.json cannot be written either: the report finds no record
            log.error("%s", unrecorded)
        return
    with ctrl_c_ignored():
        advice = _put_away_stopped_run(output_dir, checkpoints)
        print(f"error: {failure}; the run stopped, {advice}", file=sys.stderr)
        leave_process_group()
    sys.exit(2)


def failed_write_message(error: OSError, output_dir: Path) -> str | None:
    """The one line for a write that failed mid-run (a full disk, a file size limit, a folder made read-only or
    removed), naming the file and the fix; None for another ``OSError``, which keeps its traceback."""
    import errno

    written = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS) or (
        error.errno == errno.EIO and "torch's writer" in str(error.strerror))  # atomic_write's reading of torch's error
    if error.errno in (errno.EACCES, errno.EPERM):  # a file of the run's (a read elsewhere keeps its traceback)
        name = error.filename
        written = name is None or (isinstance(name, (str, bytes, os.PathLike)) and
                                   output_dir.resolve() in Path(os.fsdecode(name)).resolve().parents)
    if not (written or (error.errno == errno.ENOENT and not output_dir.is_dir())):
        return None
    if error.errno == errno.ENOENT:
        return f"the run's folder {output_dir} was removed while it ran"
    # a write() names no file (Lightning's CSV log, say): the run's folder then
    where = error.filename or f"a file in {output_dir}"
    return f"cannot write {where}: {error.strerror or error}; {write_failure_fix(error)}"


def _record_failed_job(cfg: DictConfig, output_dir: Path, error: str, crashed: bool = False) -> None:
    """Writes a failed job's ``metrics.json`` (unless the run wrote its own, e.g. ``status: diverged``);
    ``crashed``: a bug or crash (its traceback is in the job's log), not a setting refused in one line."""
    from hydra.core.hydra_config import HydraConfig

    log.error("job failed: %s", error)
    if not (output_dir / "metrics.json").exists():
        write_json_atomic(output_dir / "metrics.json", {**requested_run(cfg), "status": "failed", "error": error,
                                                        **({"crashed": True} if crashed else {}),
                                                        "overrides": list(HydraConfig.get().overrides.task)})


if __name__ == "__main__":
    main()
