"""Digits with 50 labels (5 per class), split seeds 0, 1 and 2: SSGAN against the supervised baseline.

    python scripts/bench_digits.py [OUT_DIR] [extra overrides...]

Runs `experiment=digits_50` (SSGAN) and `model=supervised` on the same splits (two Hydra multiruns of
3 jobs) and prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
from datetime import datetime
from pathlib import Path

from _bench import SweepRefused, SweepStopped, bench_arguments, machine_line, pct, run_sweep, split_failed

from ssgan.command_line import sweep_holds_runs
from ssgan.config import parsed_overrides

SPLIT_SEEDS = (0, 1, 2)


def main(argv: list[str]) -> int:
    out_dir, overrides = bench_arguments(argv, __doc__, Path("multirun") / f"bench_digits_{datetime.now():%Y-%m-%d_%H-%M-%S}")
    parsed = parsed_overrides(overrides)
    # the benchmark's own settings: one value of them would replace the sweep's (Hydra lets the last win),
    # and the table, which looks up split seeds 0, 1, 2 at 50 labels, would show none of the runs
    # (and its groups: model=supervised would fill the SSGAN column with the baseline's runs)
    own = [override.input_line for override in parsed
           if override.get_key_element().lstrip("+~") in ("data.split_seed", "data.num_labeled", "data.label_fraction",
                                                           "data", "model", "experiment")]
    if own:
        print(f"error: {own[0]} is set by this benchmark (experiment=digits_50 against model=supervised on digits, 50 "
              f"labels, split seeds {', '.join(map(str, SPLIT_SEEDS))}); leave it out, or run ssgan-train -m with the "
              "settings you want", file=sys.stderr)
        return 2
    swept = [override.input_line for override in parsed if override.is_sweep_override()]
    if swept:  # one table row per split seed: several runs of a seed would leave all but one out
        print(f"error: {swept[0]} is a sweep; this benchmark sweeps data.split_seed itself and takes one value per "
              "other setting (run it once per value)", file=sys.stderr)
        return 2
    seeds = f"data.split_seed={','.join(map(str, SPLIT_SEEDS))}"
    # The SSGAN recipe and its baseline: the same data config (net, epochs, split), two multiruns. Each run is
    # filed by its sweep, not by its method's name, which an override can change (self_training=default)
    runs: list[dict] = []
    stopped = None
    sweeps = {"ssgan": ["experiment=digits_50"], "supervised": ["data=digits", "data.num_labeled=50", "model=supervised"]}
    side = next(iter(sweeps))
    taken = [out_dir / name for name in sweeps if sweep_holds_runs(out_dir / name)]
    if taken:  # before the first sweep, not after it has trained
        print(f"error: {taken[0]} already holds a sweep's runs; choose a new output folder", file=sys.stderr)
        return 2
    try:
        for side, recipe in sweeps.items():
            runs += [dict(run, side=side) for run in run_sweep(out_dir / side, [*recipe, seeds, *overrides])]
    except SweepStopped as stop:  # the runs that finished are still reported, under the sweep that was running
        runs, stopped = runs + [dict(run, side=side) for run in stop.runs], stop
    except SweepRefused as refused:  # e.g. a model setting that the baseline does not take
        kept = f"; the {', '.join(s for s in sweeps if s != side)} sweep's runs before it are kept in {out_dir}, so run " \
               "the benchmark again into a new folder" if runs else "; nothing was trained or kept"
        print(f"error: {refused} (every job of the {side} sweep refused it{kept})", file=sys.stderr)
        return 2
    finished, failed = split_failed(runs)
    by_key = {(r["side"], r["split_seed"]): r for r in finished}
    print(f"\nMachine: {machine_line()}\nRuns: {out_dir}\n")
    print("| split seed | SSGAN test acc | supervised test acc | SSGAN − supervised | SSGAN run time | supervised run time |")
    print("|---|---|---|---|---|---|")
    for seed in SPLIT_SEEDS:
        gan, sup = by_key.get(("ssgan", seed), {}), by_key.get(("supervised", seed), {})
        gap = f"{100 * (gan['test/acc'] - sup['test/acc']):+.2f} points" if gan and sup else "-"
        print(f"| {seed} | {pct(gan.get('test/acc'))} | {pct(sup.get('test/acc'))} | {gap} | "
              f"{_seconds(gan)} | {_seconds(sup)} |")
    if len(by_key) == 2 * len(SPLIT_SEEDS):  # a mean over fewer splits would not be the benchmark's
        gan_mean = statistics.mean(by_key[("ssgan", s)]["test/acc"] for s in SPLIT_SEEDS)
        sup_mean = statistics.mean(by_key[("supervised", s)]["test/acc"] for s in SPLIT_SEEDS)
        print(f"| **mean** | **{pct(gan_mean)}** | **{pct(sup_mean)}** | **{100 * (gan_mean - sup_mean):+.2f} points** | | |")
    for line in failed:  # a stopped sweep's too: a job that failed before the stop says why
        print(f"error: run {line}", file=sys.stderr)
    if stopped is not None:
        return stopped.report()
    return 1 if failed else 0


def _seconds(run: dict) -> str:
    return f"{run['train_seconds']:.0f} s" if run else "-"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
