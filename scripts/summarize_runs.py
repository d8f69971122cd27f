"""Prints a table of the runs under a folder (a Hydra multirun or any tree of run folders).

    python scripts/summarize_runs.py multirun/2026-11-21_12-00-00

Runs are averaged per (data set, labels, method, other settings): a sweep over, say,
``model.unlabeled_weight=1,3`` gets one mean per weight, never one mean over both.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# What a benchmark sweeps (a run's seeds, labels and method are columns of their own), and how a run was
# run rather than what it trained: left out of a run's "other settings".
SWEPT = {"seed", "data.split_seed", "data.num_labeled", "data.label_fraction", "model", "self_training",
         "ckpt_path", "overwrite", "trainer.enable_progress_bar"}


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


def unfinished_runs(root: Path) -> list[dict]:
    """A failed run for each Hydra job folder below ``root`` that has no ``metrics.json`` (killed before it
    wrote one, crashed, or still running)."""
    return [{"status": "failed", "run_dir": str(hydra_dir.parent),
             "error": "no metrics.json: the job stopped before it finished (killed, crashed, or still running)"}
            for hydra_dir in sorted(root.rglob(".hydra"))
            if hydra_dir.parent.resolve() != root.resolve() and not (hydra_dir.parent / "metrics.json").exists()]


def other_settings(source: Path | list[str]) -> str:
    """A job's other overrides (e.g. ``trainer.max_epochs=30``), from Hydra's record of them (or the list); "" if none."""
    if isinstance(source, Path):
        if not source.is_file():
            return ""
        items = [line.strip().lstrip("- ").strip("'\"") for line in source.read_text().splitlines() if line.strip()]
    else:
        items = list(source)
    kept = []
    for item in items:
        key, _, value = item.lstrip("+~").partition("=")
        if key not in SWEPT and not key.startswith("hydra."):
            # Hydra's sweeper records true/false as True/False: the same setting either way
            kept.append(f"{key}={value.lower() if value.lower() in ('true', 'false', 'null', 'none') else value}")
    return " ".join(sorted(kept))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/summarize_runs.py RUN_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[0])
    if not root.is_dir():
        print(f"error: {root} is not a folder; pass the multirun folder that holds the runs", file=sys.stderr)
        return 2
    runs = load_runs(root) + unfinished_runs(root)
    if not runs:
        print(f"error: no metrics.json under {root}; did the runs finish?", file=sys.stderr)
        return 2
    for run in runs:
        run["settings"] = other_settings(Path(run["run_dir"]) / ".hydra" / "overrides.yaml")
    method_width = max([12] + [len(str(run.get("method"))) + 1 for run in runs])  # e.g. supervised+self-training
    show_settings = any(run["settings"] for run in runs)
    print(f"{'dataset':<14}{'labels':>7}  {'method':<{method_width}}{'seed':>5}{'split':>6}  {'test acc':>9}  {'seconds':>8}  status"
          + ("  (other settings)" if show_settings else ""))
    groups: dict[tuple, list[float]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r["run_dir"]):
        acc = run.get("test/acc") if run.get("status", "ok") == "ok" else None
        acc_text = f"{100 * acc:8.2f}%" if isinstance(acc, (int, float)) else "        -"
        field = {key: "?" if run.get(key) is None else str(run[key])  # a failed job may lack any of them
                 for key in ("dataset", "num_labeled", "method", "seed", "split_seed")}
        seconds = f"{run['train_seconds']:>8.1f}" if isinstance(run.get("train_seconds"), (int, float)) else f"{'-':>8}"
        print(f"{field['dataset']:<14}{field['num_labeled']:>7}  {field['method']:<{method_width}}"
              f"{field['seed']:>5}{field['split_seed']:>6}  {acc_text}  {seconds}  "
              f"{run.get('status', '?')}" + (f": {run['error']}" if run.get("error") else "")
              + (f"  ({run['settings']})" if run["settings"] else ""))
        if isinstance(acc, (int, float)):
            groups[(field["dataset"], field["num_labeled"], field["method"], run["settings"])].append(100 * acc)
    if any(len(v) > 1 for v in groups.values()):
        print("\nmean ± std over runs")
        for (dataset, labels, method, settings), accs in sorted(groups.items()):
            spread = f" ± {statistics.stdev(accs):4.2f}" if len(accs) > 1 else ""  # one run has no spread to show
            print(f"{dataset:<14}{labels:>7}  {method:<{method_width}} {statistics.mean(accs):6.2f}{spread} %  "
                  f"(n={len(accs)})" + (f"  ({settings})" if settings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
