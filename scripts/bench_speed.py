"""Speed of one SSGAN training iteration, measured three ways in one process and one run.

- ``ours``: the real training step: ``SSGAN`` built from the Hydra config, fed by the real datamodule
  (in-memory uint8 batches), driven by the Lightning ``Trainer`` with the given precision;
- ``bare``: a plain PyTorch loop of the same math (the same nets, losses, optimizers, EMA and batches), no Lightning;
- ``floor``: the GEMMs and convolutions one iteration runs (recorded from the bare loop), replayed alone
  on tensors of the same shapes, dtypes and strides: what the step would cost with nothing but its matmuls.

For the MNIST MLP (1x28x28), the CIFAR-10 conv net (3x32x32) and, with ``--nets digits`` and ``--nets conv28``,
the MLP of the digits recipe (1x8x8) and the conv net on Fashion-MNIST's 1x28x28 (``model.arch=conv``; neither run
by default), batch 100 labeled + 100 unlabeled
+ 100 generated, one D step and one G step per iteration, in fp32 and bf16-mixed. Pixels are random:
the cost does not depend on them. Prints a table (median ms per iteration, ratios, peak memory)
and writes the same as JSON.

It measures the ``ssgan/`` of the checkout it sits in, not an installed one: the script of another
commit's checkout measures that commit (how docs/benchmarks.md compares before and after a change).

    python scripts/bench_speed.py                         # mlp and conv, fp32 and bf16-mixed
    python scripts/bench_speed.py --nets mlp --iterations 200 --out bench_speed_mlp.json
    python scripts/bench_speed.py model.torch_compile=true --nets mlp   # with a model option (before --nets)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ssgan (see above)

import pytorch_lightning as pl  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.errors import InstantiationException  # noqa: E402

from _bench import machine_line, non_negative_int, positive_int  # noqa: E402
from ssgan import losses  # noqa: E402
from ssgan.atomic import atomic_write, unwritable_reason  # noqa: E402
from ssgan.config import CONFIG_DIR  # noqa: E402
from ssgan.cpu import keep_freed_memory  # noqa: E402
from ssgan.data.datamodule import SemiSupervisedBatches, SemiSupervisedDataModule  # noqa: E402
from ssgan.data.sources import ImageData  # noqa: E402
from ssgan.module import SSGAN  # noqa: E402
from ssgan.nets import uniform_noise  # noqa: E402
from ssgan.nets.layers import data_dependent_init  # noqa: E402
from ssgan.errors import first_line  # noqa: E402
from ssgan.train import instantiate  # noqa: E402

NETS = {"mlp": (1, 28, 28), "conv": (3, 32, 32), "digits": (1, 8, 8), "conv28": (1, 28, 28)}
# each net's data config (of its image shape) and model.arch: "digits" is the MLP as the digits recipe builds it
NET_CONFIGS = {"mlp": ("fashion_mnist", "mlp"), "conv": ("cifar10", "conv"), "digits": ("digits", "mlp"),
               "conv28": ("fashion_mnist", "conv")}
CONV_NETS = {net for net, (_, arch) in NET_CONFIGS.items() if arch == "conv"}  # seconds an iteration on a CPU: fewer by default
NUM_CLASSES = 10


# ------------------------------------------------------------------------------------------ data
class SyntheticDataModule(SemiSupervisedDataModule):
    """The real datamodule code path over random uint8 pixels held in memory."""

    name = "synthetic"
    num_classes = NUM_CLASSES

    def __init__(self, image_shape: tuple[int, int, int], num_train: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_shape, self.num_train = tuple(image_shape), num_train

    def load(self) -> ImageData:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (self.num_train, *self.image_shape), dtype=torch.uint8, generator=generator)
        labels = torch.arange(self.num_train) % NUM_CLASSES
        return ImageData(images, labels, images[:100], labels[:100], tuple(str(k) for k in range(NUM_CLASSES)))


def build_model(net: str, extra_overrides: list[str]) -> SSGAN:
    """``SSGAN`` exactly as ``ssgan-train data=fashion_mnist|cifar10|digits model=ssgan model.arch=mlp|conv`` builds it."""
    data, arch = NET_CONFIGS[net]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"data={data}", "model=ssgan", f"model.arch={arch}", *extra_overrides])
    return instantiate(cfg.model, image_shape=NETS[net], num_classes=NUM_CLASSES)


def make_datamodule(net: str, num_batches: int, batch_size: int) -> SyntheticDataModule:
    datamodule = SyntheticDataModule(NETS[net], num_train=num_batches * batch_size + 200, num_labeled=100,
                                     num_val=0, batch_size=batch_size, shuffle_seed=0)
    datamodule.setup()
    return datamodule


# ------------------------------------------------------------------------------------------ memory
class PeakMemory:
    """Peak memory of a section: CUDA's allocator peak, or on CPU the process's peak RSS (Linux's VmHWM, reset)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reset(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS

    def peak_mib(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------ ours
class IterationClock(pl.Callback):
    """Wall-clock time between the starts of consecutive training batches (everything the loop does)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.stamps = device, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize(self.device)
        self.stamps.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        synchronize(self.device)
        self.stamps.append(time.perf_counter())

    def intervals_ms(self, warmup: int) -> list[float]:
        return [1000 * (b - a) for a, b in zip(self.stamps[warmup:], self.stamps[warmup + 1:])]


def time_ours(net: str, precision: str, device: torch.device, warmup: int, iterations: int,
              batch_size: int, overrides: list[str]) -> list[float]:
    """Median-ready per-iteration times of ``trainer.fit`` over ``warmup + iterations`` batches."""
    pl.seed_everything(0, verbose=False)
    model = build_model(net, overrides)
    datamodule = make_datamodule(net, warmup + iterations, batch_size)
    clock = IterationClock(device)
    trainer = pl.Trainer(accelerator=device.type, devices=1, precision=precision, max_epochs=1,
                         limit_train_batches=warmup + iterations, limit_val_batches=0, num_sanity_val_steps=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[clock])
    trainer.fit(model, datamodule=datamodule)
    return clock.intervals_ms(warmup)


# ------------------------------------------------------------------------------------------ bare loop
def bare_loop(net: str, precision: str, device: torch.device, warmup: int, iterations: int, batch_size: int,
              overrides: list[str], on_iteration: Callable[[int], contextlib.AbstractContextManager] | None = None
              ) -> list[float]:
    """The same iteration as ``SSGAN.training_step`` written as a plain PyTorch loop, with the loss terms and
    clipping the model's settings switch on; returns per-iteration ms."""
    torch.manual_seed(0)
    model = build_model(net, overrides)  # only its nets, optimizer factories and settings are used
    model.to(device).configure_model()  # the same speed options (channels-last, torch.compile) as ours
    discriminator, generator = model.discriminator, model.generator
    ema = copy.deepcopy(discriminator).requires_grad_(False)
    opt_d = model.optimizer_d_factory(discriminator.parameters())
    opt_g = model.optimizer_g_factory(generator.parameters())
    datamodule = make_datamodule(net, warmup + iterations, batch_size)
    batches = SemiSupervisedBatches(*(t.to(device) for t in (datamodule._subset(datamodule.split.labeled)
                                                             + datamodule._subset(datamodule.split.unlabeled)[:1])),
                                    batch_size, batch_size, seed=0, epoch=lambda: 0)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16-mixed"
                else contextlib.nullcontext())
    running = torch.zeros(4, device=device)  # epoch sums of the logged quantities

    def clip(net: torch.nn.Module) -> None:  # as the module's model.gradient_clip_val does (the norm, per step)
        if model.gradient_clip_val is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), model.gradient_clip_val)
    stamps = []
    for step, (labeled_u8, labels, unlabeled_u8) in enumerate(batches):
        if step == warmup + iterations:
            break
        synchronize(device)
        stamps.append(time.perf_counter())
        context = on_iteration(step) if on_iteration is not None else contextlib.nullcontext()
        with context, autocast:
            labeled, unlabeled = model.to_input(labeled_u8), model.to_input(unlabeled_u8)  # (B, C, H, W) floats
            if step == 0:
                data_dependent_init(discriminator, torch.cat([labeled, unlabeled]))
                ema.load_state_dict(discriminator.state_dict())
            with torch.no_grad():
                fake = generator(uniform_noise(len(unlabeled), model.latent_dim, device))
            logits, _ = discriminator(torch.cat([labeled, unlabeled, fake]))  # (3B, K)
            logits_labeled, logits_unlabeled, logits_fake = logits.split([len(labeled), len(unlabeled), len(fake)])
            loss_supervised = losses.supervised_loss(logits_labeled, labels)
            loss_unsupervised = losses.unsupervised_loss(logits_unlabeled, logits_fake)
            loss_d = loss_supervised + model.unlabeled_weight * loss_unsupervised
            if model.entropy_weight:
                loss_d = loss_d + model.entropy_weight * losses.conditional_entropy(logits_unlabeled.float())
            if not torch.isfinite(loss_d):
                raise RuntimeError("discriminator loss is not finite")
            opt_d.zero_grad()
            loss_d.backward()
            clip(discriminator)
            opt_d.step()
            with torch.no_grad():
                decay = min(model.ema_decay, (2 + step) / (11 + step))
                torch._foreach_lerp_(list(ema.parameters()), list(discriminator.parameters()), 1.0 - decay)

            discriminator.requires_grad_(False)
            fake = generator(uniform_noise(len(unlabeled), model.latent_dim, device))
            if model.generator_loss == "feature_matching":
                with torch.no_grad():
                    _, features_real = discriminator(unlabeled)  # (B, F)
                _, features_fake = discriminator(fake)
                loss_g = losses.feature_matching_loss(features_real.float(), features_fake.float(), model.feature_matching)
            else:
                loss_g = losses.non_saturating_generator_loss(discriminator(fake)[0])
            if not torch.isfinite(loss_g):
                raise RuntimeError("generator loss is not finite")
            opt_g.zero_grad()
            loss_g.backward()
            clip(generator)
            opt_g.step()
            discriminator.requires_grad_(True)
            with torch.no_grad():
                accuracy = (logits_labeled.argmax(dim=1) == labels).float().mean()
                running += torch.stack([loss_supervised.float(), loss_unsupervised.float(), loss_g.float(), accuracy])
    synchronize(device)
    stamps.append(time.perf_counter())
    return [1000 * (b - a) for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]


# ------------------------------------------------------------------------------------------ GEMM floor
GEMM_OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
            torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default}


class GemmRecorder(TorchDispatchMode):
    """Records every matmul/convolution (op, args) that runs under it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple, dict]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in GEMM_OPS:
            meta = lambda x: (("tensor", tuple(x.shape), tuple(x.stride()), x.dtype, x.device)  # noqa: E731
                              if isinstance(x, torch.Tensor) else x)
            self.calls.append((func, tuple(meta(a) for a in args), {k: meta(v) for k, v in kwargs.items()}))
        return func(*args, **kwargs)


def gemm_flops(func, args: tuple) -> float:
    """Floating-point operations of one recorded call (2 per multiply-add)."""
    if func in (torch.ops.aten.mm.default, torch.ops.aten.bmm.default):
        a, b = args[0][1], args[1][1]
        return 2.0 * math.prod(a) * b[-1]
    if func is torch.ops.aten.addmm.default:
        a, b = args[1][1], args[2][1]
        return 2.0 * math.prod(a) * b[-1]
    if func is torch.ops.aten.convolution.default:
        # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
        return _conv_forward_flops(args[0][1], args[1][1], args[3], args[4], args[5], args[6])
    # convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
    # output_padding, groups, output_mask): the input and the weight gradient each cost one forward
    forward = _conv_forward_flops(args[1][1], args[2][1], args[4], args[5], args[6], args[7])
    return forward * (int(args[10][0]) + int(args[10][1]))


def _conv_forward_flops(x: tuple, w: tuple, stride, padding, dilation, transposed: bool) -> float:
    if transposed:  # weight (C_in, C_out/groups, kh, kw): every input element meets the whole kernel
        return 2.0 * math.prod(x) * math.prod(w[1:])
    sizes = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(x[2:], w[2:], stride, padding, dilation)]
    return 2.0 * x[0] * w[0] * math.prod(sizes) * math.prod(w[1:])


def replay_floor(calls: list, repeats: int, device: torch.device) -> tuple[list[float], float]:
    """Times the recorded GEMM sequence alone, ``repeats`` times; returns per-sequence ms and its GFLOP."""
    def materialise(x):
        if isinstance(x, tuple) and x and x[0] == "tensor":
            _, shape, stride, dtype, dev = x
            size = sum((n - 1) * step for n, step in zip(shape, stride)) + 1 if all(shape) else 0
            return torch.randn(size, device=dev).to(dtype).as_strided(shape, stride)
        return x

    replay = [(func, tuple(materialise(a) for a in args), {k: materialise(v) for k, v in kwargs.items()})
              for func, args, kwargs in calls]
    flops = sum(gemm_flops(func, args) for func, args, _ in calls)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 3):
            synchronize(device)
            start = time.perf_counter()
            for func, args, kwargs in replay:
                func(*args, **kwargs)
            synchronize(device)
            times.append(1000 * (time.perf_counter() - start))
    return times[3:], flops / 1e9


def record_gemms(net: str, precision: str, device: torch.device, batch_size: int, overrides: list[str]) -> list:
    """The GEMM calls of one steady-state iteration of the bare loop (the third)."""
    recorder = GemmRecorder()

    def on_iteration(step: int):
        return recorder if step == 2 else contextlib.nullcontext()

    bare_loop(net, precision, device, warmup=0, iterations=3, batch_size=batch_size, overrides=overrides,
              on_iteration=on_iteration)
    return recorder.calls


# ------------------------------------------------------------------------------------------ main
def measure(net: str, precision: str, device: torch.device, warmup: int, iterations: int, rounds: int,
            batch_size: int, overrides: list[str]) -> dict[str, Any]:
    """One table row. ``ours`` and ``bare`` alternate over ``rounds`` (which goes first swaps each round,
    so neither gains from the order); each takes the median over all its measured iterations."""
    memory = PeakMemory(device)
    row: dict[str, Any] = {"net": net, "precision": precision, "batch": f"{batch_size}+{batch_size}+{batch_size}",
                           "iterations": iterations * rounds}
    ways = {"ours": time_ours, "bare": bare_loop}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    peaks: dict[str, float | None] = {name: None for name in ways}
    for round_index in range(rounds):
        for name in (("ours", "bare") if round_index % 2 == 0 else ("bare", "ours")):
            memory.reset()
            times = ways[name](net, precision, device, warmup, iterations, batch_size, overrides)
            samples[name] += times
            peak = memory.peak_mib()
            peaks[name] = peak if peaks[name] is None or peak is None else max(peaks[name], peak)
            print(f"  {net} {precision} {name} (round {round_index + 1}): {statistics.median(times):.2f} ms", flush=True)
    for name in ways:
        row[f"{name}_ms"], row[f"{name}_peak_mib"] = statistics.median(samples[name]), peaks[name]
    calls = record_gemms(net, precision, device, batch_size, overrides)
    floor_times, gflop = replay_floor(calls, repeats=max(10, iterations // 2), device=device)
    row.update(floor_ms=statistics.median(floor_times), gemm_calls=len(calls), gflop=gflop,
               ours_over_bare=row["ours_ms"] / row["bare_ms"])
    row["ours_over_floor"] = row["ours_ms"] / row["floor_ms"]
    row["floor_gflops"] = gflop / (row["floor_ms"] / 1000)
    print(f"  {net} {precision} floor: {row['floor_ms']:.2f} ms ({len(calls)} GEMMs, {gflop:.2f} GFLOP)", flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| net | precision | batch | ours ms/iter | bare loop ms/iter | GEMM floor ms/iter | ours ÷ bare | ours ÷ floor "
             "| GFLOP/iter | floor GFLOP/s | peak MiB (ours / bare) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peak = " / ".join("-" if r[k] is None else f"{r[k]:.0f}" for k in ("ours_peak_mib", "bare_peak_mib"))
        lines.append(f"| {r['net']} | {r['precision']} | {r['batch']} | {r['ours_ms']:.1f} | {r['bare_ms']:.1f} | "
                     f"{r['floor_ms']:.1f} | {r['ours_over_bare']:.3f} | {r['ours_over_floor']:.2f} | {r['gflop']:.2f} | "
                     f"{r['floor_gflops']:.0f} | {peak} |")
    return "\n".join(lines)


def _refuse(message: str) -> None:
    """A bad argument: one line, exit status 2, before anything is measured or written."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", default=["mlp", "conv"], choices=sorted(NETS), help="mlp (1x28x28), conv (3x32x32), digits (the digits recipe's MLP, 1x8x8), conv28 (the conv net on 1x28x28)")
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"], choices=["32-true", "bf16-mixed"])
    parser.add_argument("--iterations", type=positive_int, default=None,
                        help="measured iterations per way (default: 6 for the conv nets, 100 for the MLPs)")
    parser.add_argument("--warmup", type=non_negative_int, default=None, help="iterations left out first (default: 2 the conv nets, 15 the MLPs)")
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help="alternating rounds of ours and the bare loop (default: 1 for the conv nets, 3 for the MLPs)")
    parser.add_argument("--batch-size", type=positive_int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench_speed.json", help="JSON file for the results")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides of the model, e.g. model.ema_decay=null")
    args = parser.parse_args(argv)
    out = Path(args.out)
    problem = unwritable_reason(out.parent) or (f"{out} is a folder" if out.is_dir() else None)
    if problem:  # before the measurements, not after them
        parser.error(f"--out {out}: {problem}; choose another file")
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        _refuse(f"--device {args.device} is not a device ({first_line(error)}); use e.g. --device cpu")
    for net in args.nets:  # a bad model override in one line, before any measurement
        try:
            build_model(net, args.overrides)
        except Exception as error:
            cause = error.__cause__ if isinstance(error, InstantiationException) and error.__cause__ else error
            _refuse(f"{' '.join(args.overrides)} does not build the {net} net ({first_line(cause)}); give model "
                    "settings that exist, e.g. model.ema_decay=null")
    keep_freed_memory()  # as ssgan-train does, for all three ways alike
    print(machine_line(), flush=True)
    rows = []
    for net in args.nets:
        iterations = args.iterations if args.iterations is not None else (6 if net in CONV_NETS else 100)
        warmup = args.warmup if args.warmup is not None else (2 if net in CONV_NETS else 15)
        rounds = args.rounds if args.rounds is not None else (1 if net in CONV_NETS else 3)
        for precision in args.precisions:
            rows.append(measure(net, precision, device, warmup, iterations, rounds, args.batch_size, args.overrides))
    report = table(rows)
    print(report)
    results = json.dumps({"machine": machine_line(), "device": str(device), "rows": rows}, indent=2) + "\n"
    atomic_write(out, lambda path: path.write_text(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
