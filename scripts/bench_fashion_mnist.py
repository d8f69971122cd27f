"""Fashion-MNIST, 100 labels, seed 0, 20 epochs, the default net for 28x28 grey images (the MLP).

    apt-get install -y dataset-fashion-mnist
    python scripts/bench_fashion_mnist.py [OUT_DIR] [extra overrides...]

Runs `experiment=fashion_mnist_100` for SSGAN and the supervised baseline in one Hydra multirun and
prints a markdown table (accuracy, epochs, time per epoch and per iteration; a row marked failed for a run
that did not finish) and each finished run's val curve.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from pathlib import Path

from _bench import SweepRefused, SweepStopped, bench_arguments, machine_line, pct, run_sweep, split_failed


def val_curve(run_dir: str) -> list[tuple[int, float]]:
    """(epoch, val/acc) pairs from the run's CSV log ([] without one: logger=none)."""
    path = Path(run_dir) / "csv" / "metrics.csv"
    if not path.is_file():
        return []
    with open(path) as handle:
        return [(int(row["epoch"]), float(row["val/acc"])) for row in csv.DictReader(handle) if row.get("val/acc")]


def _number(run: dict, key: str, form: str) -> str:
    """``run[key]`` in ``form``, or "-" when the run has no such figure (callbacks=none times nothing)."""
    value = run.get(key)
    return form.format(value) if isinstance(value, (int, float)) else "-"


def main(argv: list[str]) -> int:
    out_dir, overrides = bench_arguments(argv, __doc__,
                                         Path("multirun") / f"bench_fashion_mnist_{datetime.now():%Y-%m-%d_%H-%M-%S}")
    stopped = None
    try:
        swept = run_sweep(out_dir, ["experiment=fashion_mnist_100", "model=ssgan,supervised", *overrides])
    except SweepStopped as stop:  # the runs that finished are still reported
        swept, stopped = stop.runs, stop
    except SweepRefused as refused:
        print(f"error: {refused} (every job of the sweep refused it; nothing was trained or kept)", file=sys.stderr)
        return 2
    runs, failed = split_failed(swept)
    print(f"\nMachine: {machine_line()}\nRuns: {out_dir}\n")
    print("| method | net | seed | precision | epochs | test acc (last) | best val acc (epoch) | train time "
          "| time per epoch | time per iteration |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    runs.sort(key=lambda r: (r["method"], r["seed"], r["run_dir"]))
    for run in runs:
        best_epoch = f" ({run['best_epoch']})" if run.get("best_epoch") is not None else ""  # none with callbacks=none
        print(f"| {run['method']} | {run['net']} | {run['seed']} | {run.get('precision', '?')} | {run['epochs']} | "
              f"{pct(run['test/acc'])} | {pct(run.get('val/best_acc'))}{best_epoch} | "
              f"{_number(run, 'train_seconds', '{:.0f} s')} | {_number(run, 'epoch_seconds', '{:.1f} s')} | "
              f"{_number(run, 'iteration_ms', '{:.1f} ms')} |")
    for run in swept:  # a row each for the runs that did not finish, so that a copy of the table keeps them
        if not any(run is finished for finished in runs):
            print(f"| {run.get('method', '?')} | {run.get('net', '-')} | {run.get('seed', '?')} | "
                  f"{run.get('precision', '-')} | - | {run.get('status', 'failed')} | - | - | - | - |")
    for run in runs:
        curve = ", ".join(f"{epoch}: {100 * acc:.1f}" for epoch, acc in val_curve(run["run_dir"]))
        print(f"\n{run['method']} (seed {run['seed']}) val/acc by epoch: {curve or 'no CSV log (logger=none)'}")
    for line in failed:  # a stopped sweep's too: a job that failed before the stop says why
        print(f"error: run {line}", file=sys.stderr)
    if stopped is not None:
        return stopped.report()
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
