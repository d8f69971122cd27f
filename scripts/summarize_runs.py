"""Prints a table of the runs under a folder (a Hydra multirun or any tree of run folders).

    python scripts/summarize_runs.py multirun/2026-11-21_12-00-00
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load_runs(root: Path) -> list[dict]:
    """Every ``metrics.json`` below ``root``, with its folder; an unreadable one is a failed run."""
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        try:
            metrics = json.loads(path.read_text())
            if not isinstance(metrics, dict):
                raise ValueError(f"a JSON {type(metrics).__name__}, not an object")
        except (OSError, ValueError) as error:  # cut short by a kill or a full disk: a failed run, not a crash
            metrics = {"status": "failed", "error": f"unreadable metrics.json ({error})"}
        metrics["run_dir"] = str(path.parent)
        runs.append(metrics)
    return runs


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/summarize_runs.py RUN_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[0])
    if not root.is_dir():
        print(f"error: {root} is not a folder; pass the multirun folder that holds the runs", file=sys.stderr)
        return 2
    runs = load_runs(root)
    if not runs:
        print(f"error: no metrics.json under {root}; did the runs finish?", file=sys.stderr)
        return 2
    method_width = max([12] + [len(str(run.get("method"))) + 1 for run in runs])  # e.g. supervised+self-training
    print(f"{'dataset':<14}{'labels':>7}  {'method':<{method_width}}{'seed':>5}{'split':>6}  {'test acc':>9}  {'seconds':>8}  status")
    groups: dict[tuple, list[float]] = defaultdict(list)
    for run in runs:
        acc = run.get("test/acc")
        acc_text = f"{100 * acc:8.2f}%" if acc is not None else "        -"
        field = {key: "?" if run.get(key) is None else str(run[key])  # a failed job may lack any of them
                 for key in ("dataset", "num_labeled", "method", "seed", "split_seed")}
        seconds = f"{run['train_seconds']:>8.1f}" if isinstance(run.get("train_seconds"), (int, float)) else f"{'-':>8}"
        print(f"{field['dataset']:<14}{field['num_labeled']:>7}  {field['method']:<{method_width}}"
              f"{field['seed']:>5}{field['split_seed']:>6}  {acc_text}  {seconds}  "
              f"{run.get('status', '?')}" + (f": {run['error']}" if run.get("error") else ""))
        if acc is not None:
            groups[(run["dataset"], run["num_labeled"], run["method"])].append(100 * acc)
    if any(len(v) > 1 for v in groups.values()):
        print("\nmean ± std over runs")
        for (dataset, labels, method), accs in sorted(groups.items()):
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            print(f"{dataset:<14}{labels:>7}  {method:<{method_width}} {statistics.mean(accs):6.2f} ± {std:4.2f} %  (n={len(accs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
