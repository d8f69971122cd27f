"""Digits with 50 labels (5 per class), split seeds 0, 1 and 2: SSGAN against the supervised baseline.

    python scripts/bench_digits.py [OUT_DIR]

Runs `experiment=digits_50` (SSGAN) and `model=supervised` on the same splits (two Hydra multiruns of
3 jobs) and prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
from datetime import datetime
from pathlib import Path

from _bench import machine_line, pct, run_sweep

SPLIT_SEEDS = (0, 1, 2)


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else Path("multirun") / f"bench_digits_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    seeds = f"data.split_seed={','.join(map(str, SPLIT_SEEDS))}"
    # The SSGAN recipe and its baseline: the same data config (net, epochs, split), two multiruns.
    runs = run_sweep(out_dir / "ssgan", ["experiment=digits_50", seeds])
    runs += run_sweep(out_dir / "supervised", ["data=digits", "data.num_labeled=50", "model=supervised", seeds])
    by_key = {(r["method"], r["split_seed"]): r for r in runs}
    print(f"\nMachine: {machine_line()}\nRuns: {out_dir}\n")
    print("| split seed | SSGAN test acc | supervised test acc | SSGAN − supervised | SSGAN run time | supervised run time |")
    print("|---|---|---|---|---|---|")
    for seed in SPLIT_SEEDS:
        gan, sup = by_key[("ssgan", seed)], by_key[("supervised", seed)]
        print(f"| {seed} | {pct(gan['test/acc'])} | {pct(sup['test/acc'])} | "
              f"{100 * (gan['test/acc'] - sup['test/acc']):+.2f} points | {gan['train_seconds']:.0f} s | {sup['train_seconds']:.0f} s |")
    gan_mean = statistics.mean(by_key[("ssgan", s)]["test/acc"] for s in SPLIT_SEEDS)
    sup_mean = statistics.mean(by_key[("supervised", s)]["test/acc"] for s in SPLIT_SEEDS)
    print(f"| **mean** | **{pct(gan_mean)}** | **{pct(sup_mean)}** | **{100 * (gan_mean - sup_mean):+.2f} points** | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
