"""What the discriminator's gaussian noise costs in one SSGAN iteration (MNIST MLP, fp32).

Runs the bare loop of ``bench_speed.py`` with ``GaussianNoise.forward`` drawing its noise three ways,
in rounds (the order rotated each round), and prints the median ms per iteration of each:

- ``drawn``: as the nets do (``torch.randn_like``, about 1.5 million samples an iteration);
- ``none drawn``: slices of one buffer drawn once: a bound on what faster noise could save, not a method
  (the noise is then the same every iteration);
- ``second thread``: drawn by another thread, one buffer ahead, with its own generator.

Like ``bench_speed.py``, it measures the ``ssgan/`` of the checkout it sits in.

    python scripts/bench_noise.py                      # three rounds of 60 iterations
    python scripts/bench_noise.py --rounds 5 --iterations 100
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_speed  # noqa: E402
from _bench import machine_line, non_negative_int, positive_int  # noqa: E402

from ssgan.nets import layers  # noqa: E402

SAMPLES_PER_BUFFER = 1_600_000  # a little more than one iteration's noise (500 images x 3,034 noisy units)


class _FixedNoise:
    """Slices of one buffer of N(0, 1) samples, drawn once."""

    def __init__(self) -> None:
        self.buffer = torch.randn(4 * SAMPLES_PER_BUFFER)

    def forward(self, module: layers.GaussianNoise, x: torch.Tensor) -> torch.Tensor:
        if not module.training or module.std == 0:
            return x
        return x.add(self.buffer[: x.numel()].view_as(x), alpha=module.std)


class _ThreadNoise:
    """N(0, 1) samples drawn by a daemon thread with its own generator, one buffer ahead of their use."""

    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(1)
        self.ready: queue.Queue[torch.Tensor] = queue.Queue(maxsize=1)
        self.current, self.offset = torch.empty(0), 0
        threading.Thread(target=self._draw, daemon=True).start()

    def _draw(self) -> None:
        while True:
            self.ready.put(torch.empty(SAMPLES_PER_BUFFER).normal_(generator=self.generator))

    def forward(self, module: layers.GaussianNoise, x: torch.Tensor) -> torch.Tensor:
        if not module.training or module.std == 0:
            return x
        if self.offset + x.numel() > len(self.current):
            self.current, self.offset = self.ready.get(), 0
        noise = self.current[self.offset: self.offset + x.numel()].view_as(x)
        self.offset += x.numel()
        return x.add(noise, alpha=module.std)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--iterations", type=positive_int, default=60, help="timed iterations per way and round")
    parser.add_argument("--warmup", type=non_negative_int, default=10)
    args = parser.parse_args(argv)
    print(machine_line())
    drawn = layers.GaussianNoise.forward
    fixed, threaded = _FixedNoise(), _ThreadNoise()
    ways = {"drawn": drawn,
            "none drawn (a bound)": lambda module, x: fixed.forward(module, x),
            "second thread": lambda module, x: threaded.forward(module, x)}
    medians: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for round_number in range(args.rounds):
            order = list(ways)[round_number % len(ways):] + list(ways)[:round_number % len(ways)]  # rotated
            for name in order:
                forward = ways[name]
                layers.GaussianNoise.forward = forward
                times = bench_speed.bare_loop("mlp", "32-true", torch.device("cpu"), args.warmup, args.iterations,
                                              100, [])
                medians[name].append(statistics.median(times))
                print(f"  round {round_number + 1}, {name}: {medians[name][-1]:.1f} ms", flush=True)
    finally:
        layers.GaussianNoise.forward = drawn
    print("| noise | " + " | ".join(f"round {n + 1}" for n in range(args.rounds)) + " | median |")
    print("|---|" + "---|" * (args.rounds + 1))
    for name, values in medians.items():
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()
