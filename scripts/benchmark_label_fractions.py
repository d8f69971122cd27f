"""Label-fraction benchmark: one Hydra multirun over labels x method x seed, turned into a report.

    python scripts/benchmark_label_fractions.py digits                      # runs `ssgan-train -m sweep=digits`
    python scripts/benchmark_label_fractions.py fashion_mnist --out multirun/lf_fmnist
    python scripts/benchmark_label_fractions.py --report multirun/lf_digits  # re-renders, no training
    python scripts/benchmark_label_fractions.py --report multirun/part1 multirun/part2 --out multirun/all
                                        # one report of a sweep run in parts
    python scripts/benchmark_label_fractions.py digits -- trainer.max_epochs=5   # extra overrides after --

The sweeps live in ``conf/sweep/`` (one file per data set). The report, written beside the runs:
- ``results.csv``: one row per run, failed runs included with their error;
- ``results.md``: mean ± std of the test accuracy per (labels, method) cell, the best per row in bold; a run
  asked for ``data.label_fraction`` has its line by fraction (with the label count it drew), failed or not;
- ``results.png``: test accuracy against the number of labels, or the fraction when every run asked for one
  (log x-axis), error bars, one line per method.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import run_child  # noqa: E402
from summarize_runs import load_runs  # noqa: E402

from ssgan.atomic import atomic_write  # noqa: E402
from ssgan.train import sweep_holds_runs  # noqa: E402

METHOD_ORDER = ("supervised", "supervised+self-training", "ssgan", "ssgan+self-training")
CSV_FIELDS = ("job", "dataset", "method", "num_labeled", "label_fraction", "seed", "split_seed", "status",
              "test_acc", "val_acc", "best_val_acc", "epochs", "train_seconds", "error", "run_dir")


def run_sweep(sweep: str, out_dir: Path, overrides: list[str]) -> int:
    """Runs the multirun ``sweep=SWEEP`` into ``out_dir``; returns its exit code (failed jobs do not stop it)."""
    command = [sys.executable, "-m", "ssgan.train", "-m", f"sweep={sweep}", *overrides,
               "trainer.enable_progress_bar=false", f"hydra.sweep.dir={out_dir}"]
    print("$", " ".join(command[1:]), flush=True)
    return run_child(command)


def _job_number(run_dir: str) -> str:
    name = Path(run_dir).name
    return name if name.isdigit() else run_dir


def collect(root: Path, seen: set[Path] | None = None) -> list[dict]:
    """One row per job folder under ``root``: its metrics, or a failed row when it wrote none.

    Job folders already in ``seen`` (resolved paths) are skipped, and the ones read are added to it.
    """
    rows = []
    seen = set() if seen is None else seen
    for metrics in load_runs(root):
        run_dir = Path(metrics["run_dir"]).resolve()
        if run_dir in seen:
            continue
        seen.add(run_dir)
        status = metrics.get("status", "ok")
        rows.append({
            "job": _job_number(metrics["run_dir"]), "dataset": metrics.get("dataset"), "method": metrics.get("method"),
            "num_labeled": metrics.get("num_labeled"), "label_fraction": metrics.get("label_fraction"),
            "seed": metrics.get("seed"), "split_seed": metrics.get("split_seed"), "status": status,
            "test_acc": metrics.get("test/acc") if status == "ok" else None, "val_acc": metrics.get("val/acc"),
            "best_val_acc": metrics.get("val/best_acc"), "epochs": metrics.get("epochs"),
            "train_seconds": metrics.get("train_seconds"), "error": metrics.get("error", ""),
            "run_dir": metrics["run_dir"], "settings": _other_settings(run_dir / ".hydra" / "overrides.yaml"),
        })
    # a job killed before it wrote anything still has its .hydra folder: report it, never drop it
    for hydra_dir in sorted(root.rglob(".hydra")):
        run_dir = hydra_dir.parent
        if run_dir.resolve() in seen or run_dir.resolve() == root.resolve():
            continue
        seen.add(run_dir.resolve())
        rows.append({"job": _job_number(str(run_dir)), "status": "failed", "run_dir": str(run_dir),
                     "error": "no metrics.json: the job stopped before it finished (killed or crashed)",
                     # the composed record holds the overrides too; they stand in where it was cut short
                     **_from_overrides(hydra_dir / "overrides.yaml"), **_from_record(hydra_dir)})
    rows.sort(key=lambda r: (int(r["job"]) if str(r["job"]).isdigit() else math.inf, str(r["job"])))
    return rows


def _from_record(hydra_dir: Path) -> dict:
    """What a job ran with by default (data set, seeds, labels, method), from Hydra's composed config and
    group choices: a job's overrides name only what the sweep changed."""
    from omegaconf import OmegaConf

    found: dict = {}
    with contextlib.suppress(Exception):  # a record cut short by the kill: what could be read
        choices = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices
        found["dataset"] = choices.get("data")
        method = choices.get("model")
        if method and choices.get("self_training") not in (None, "none"):
            method += "+self-training"
        found["method"] = method
    with contextlib.suppress(Exception):
        config = OmegaConf.load(hydra_dir / "config.yaml")
        for key, name in (("seed", "seed"), ("data.split_seed", "split_seed"), ("data.num_labeled", "num_labeled"),
                          ("data.label_fraction", "label_fraction")):
            value = OmegaConf.select(config, key, default=None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[name] = value
    return {key: value for key, value in found.items() if value is not None}


def _from_overrides(path: Path) -> dict:
    """What a job was asked to run, read from Hydra's record of its overrides."""
    found: dict = {}
    if not path.is_file():
        return found
    for line in path.read_text().splitlines():
        item = line.strip().lstrip("- ").strip("'\"")
        key, _, value = item.partition("=")
        if key == "data.num_labeled" and value.isdigit():
            found["num_labeled"] = int(value)
        elif key == "model":
            found["method"] = value + found.get("method", "")
        elif key == "self_training" and value != "none":
            found["method"] = found.get("method", "") + "+self-training"
        elif key == "data.label_fraction" and value not in ("null", ""):
            with contextlib.suppress(ValueError):  # a typo (0.O1) leaves the row without a fraction, as for counts
                found["label_fraction"] = float(value)
        elif key in ("seed", "data.split_seed") and value.isdigit():
            found["seed" if key == "seed" else "split_seed"] = int(value)
    return found


# The overrides a benchmark sweeps by design: runs that differ only in these share a cell or a column
SWEPT = {"seed", "data.split_seed", "data.num_labeled", "data.label_fraction", "model", "self_training",
         # and how a run was run, not what it trained
         "ckpt_path", "overwrite", "trainer.enable_progress_bar"}


def _other_settings(path: Path) -> str:
    """A job's other overrides (e.g. ``trainer.max_epochs=30``), from Hydra's record; "" if none."""
    if not path.is_file():
        return ""
    items = [line.strip().lstrip("- ").strip("'\"") for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for item in items:
        key, _, value = item.lstrip("+~").partition("=")
        if key not in SWEPT and not key.startswith("hydra."):
            # Hydra's sweeper records true/false as True/False: the same setting either way
            kept.append(f"{key}={value.lower() if value.lower() in ('true', 'false', 'null', 'none') else value}")
    return " ".join(sorted(kept))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _labels_key(row: dict) -> tuple[int, float] | None:
    """The row's line of the table: ``(0, fraction)`` for a run asked for a label fraction, ``(1, count)`` for one
    asked for a label count; None when the job asked for no number (e.g. a typo, 2O for 20).

    A run asked for a fraction is keyed by it whether it finished (its metrics also give the count it drew) or
    failed before it knew the count, so the two share a line.
    """
    if _is_number(row.get("label_fraction")):
        return (0, float(row["label_fraction"]))
    if _is_number(row.get("num_labeled")):
        return (1, row["num_labeled"])
    return None


def _drawn_counts(rows: list[dict], key: tuple[int, float]) -> list:
    """The label counts that the finished runs of a fraction line drew (one per data set, usually one)."""
    return sorted({row["num_labeled"] for row in rows if _labels_key(row) == key and row.get("status") == "ok"
                   and _is_number(row.get("num_labeled"))})


def _labels_text(key: tuple[int, float] | None, rows: list[dict], short: bool = False) -> str:
    """A line's name: ``100`` / ``100 labels``, or ``0.01 (600 labels)`` / ``label fraction 0.01``."""
    if key is None:
        return "?" if short else "? labels"
    kind, value = key
    if kind == 1:
        return str(value) if short else f"{value} labels"
    if not short:
        return f"label fraction {value}"
    counts = _drawn_counts(rows, key)
    return f"{value} ({'/'.join(map(str, counts))} labels)" if counts else str(value)


def cells(rows: list[dict]) -> tuple[list, list[str], dict]:
    """(table lines (``_labels_key``), methods, {(line, method): [test accuracies of finished runs]})."""
    accuracies: dict = defaultdict(list)
    labels, methods = set(), set()
    for row in rows:
        key = _labels_key(row)
        if key is None or row.get("method") is None:
            continue
        labels.add(key)
        methods.add(row["method"])
        if row.get("status") == "ok" and row.get("test_acc") is not None:
            accuracies[(key, row["method"])].append(100 * float(row["test_acc"]))
    ordered = [m for m in METHOD_ORDER if m in methods] + sorted(methods - set(METHOD_ORDER))
    return sorted(labels), ordered, accuracies


def render_markdown(rows: list[dict], title: str) -> str:
    labels, methods, accuracies = cells(rows)
    failed = [r for r in rows if r.get("status") != "ok"]
    out = io.StringIO()
    out.write(f"# {title}\n\nTest accuracy (%), mean ± std over seeds (n = finished runs); best per row in bold.\n\n")
    out.write("| labels | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods) + "\n")
    for label in labels:
        means = {m: statistics.mean(accuracies[(label, m)]) for m in methods if accuracies.get((label, m))}
        best = max(means.values()) if means else None
        cells_text = []
        for method in methods:
            values = accuracies.get((label, method), [])
            n_failed = sum(1 for r in failed if _labels_key(r) == label and r.get("method") == method)
            if not values:
                text = "failed" if n_failed else "-"
            else:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                text = f"{means[method]:.2f} ± {std:.2f} (n={len(values)})"
                if means[method] == best:
                    text = f"**{text}**"
            if n_failed and values:
                text += f", {n_failed} failed"
            cells_text.append(text)
        out.write(f"| {_labels_text(label, rows, short=True)} | " + " | ".join(cells_text) + " |\n")
    mixed = defaultdict(set)  # (labels, method) -> the other settings of its finished runs
    for row in rows:
        if row.get("status") == "ok" and _labels_key(row) is not None:
            mixed[(_labels_key(row), row.get("method"))].add(row.get("settings") or "")
    mixed = {cell: settings for cell, settings in mixed.items() if len(settings) > 1}
    if mixed:
        out.write("\n**Warning:** these cells average runs with different settings, not only other seeds:\n\n")
        for (label, method), settings in sorted(mixed.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            out.write(f"- {_labels_text(label, rows)}, {method}: " + " | ".join(sorted(s or "(none)" for s in settings)) + "\n")
    if failed:
        out.write(f"\n{len(failed)} failed run(s):\n\n")
        for row in failed:
            out.write(f"- job {row['job']} ({row.get('method') or '?'}, {_labels_text(_labels_key(row), rows)}, "
                      f"seed {row.get('seed', '?')}, split seed {row.get('split_seed', '?')}): "
                      f"{row.get('status')}: {row.get('error') or 'no error recorded'}\n")
    return out.getvalue()


def render_plot(rows: list[dict], path: Path, title: str) -> bool:
    """results.png; returns False (and says why) if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: results.png skipped (pip install matplotlib)", file=sys.stderr)
        return False
    labels, methods, accuracies = cells(rows)
    by_fraction = bool(labels) and all(kind == 0 for kind, _ in labels)
    # x: the fraction when every line is one, else the label count (a fraction line's drawn count, if it has one)
    positions = {}
    for label in labels:
        counts = _drawn_counts(rows, label) if label[0] == 0 and not by_fraction else [label[1]]
        if len(counts) == 1:
            positions[label] = counts[0]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    ticks = set()  # a tick only where a point is drawn: a label count whose every job failed has none
    for method in methods:
        lines = sorted((label for label in labels if accuracies.get((label, method)) and label in positions),
                       key=positions.__getitem__)  # by x: a fraction's drawn count may fall between the counts
        means = [statistics.mean(accuracies[(line, method)]) for line in lines]
        stds = [statistics.stdev(accuracies[(line, method)]) if len(accuracies[(line, method)]) > 1 else 0.0
                for line in lines]
        axes.errorbar([positions[line] for line in lines], means, yerr=stds, marker="o", capsize=3, label=method)
        ticks.update(positions[line] for line in lines)
    axes.set_xscale("log")
    ticks = sorted(ticks)
    axes.set_xticks(ticks, [str(x) for x in ticks])
    axes.minorticks_off()
    axes.set_xlabel("fraction of the training images labeled" if by_fraction else "labeled training images")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))
    plt.close(figure)
    return True


def _write_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(text, newline=""))


def collect_all(roots: list[Path]) -> list[dict]:
    """The rows of several multirun folders, in the order given; each job is counted once.

    With more than one folder a job is named ``<folder name>/<job>``, as job numbers repeat across folders.
    """
    seen: set[Path] = set()
    rows = []
    for root in roots:
        for row in collect(root, seen):
            if len(roots) > 1:
                row["job"] = f"{root.name}/{row['job']}"
            rows.append(row)
    return rows


def write_report(roots: Path | list[Path], title: str | None = None, out_dir: Path | None = None) -> list[dict]:
    """Writes results.csv, results.md and results.png of the runs under ``roots`` into ``out_dir``.

    ``out_dir`` defaults to the folder itself when there is one; returns the rows.
    """
    roots = [roots] if isinstance(roots, Path) else list(roots)
    if out_dir is None:
        if len(roots) != 1:
            raise ValueError("a report of several folders needs out_dir")  # main() tells the user first
        out_dir = roots[0]
    rows = collect_all(roots)
    if not rows:
        print(f"error: no runs under {', '.join(map(str, roots))}; pass the multirun folder (the one holding 0/, 1/, ...)",
              file=sys.stderr)
        raise SystemExit(2)  # the status of the script's other input errors
    out_dir.mkdir(parents=True, exist_ok=True)
    datasets = sorted({r["dataset"] for r in rows if r.get("dataset")})
    title = title or f"Label-fraction benchmark: {', '.join(datasets) or roots[0].name}"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(out_dir / "results.csv", buffer.getvalue())
    markdown = render_markdown(rows, title)
    _write_atomic(out_dir / "results.md", markdown)
    render_plot(rows, out_dir / "results.png", title)
    print(markdown)
    print(f"wrote {out_dir / 'results.csv'}, {out_dir / 'results.md'} and {out_dir / 'results.png'}")
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Hydra overrides after -- replace the sweep's own, e.g. "
               "`fashion_mnist -- data.num_labeled=50,100 data.split_seed=0 trainer.precision=bf16-mixed`.")
    parser.add_argument("sweep", nargs="?", help="a sweep config in conf/sweep/, e.g. digits or fashion_mnist")
    parser.add_argument("--out", type=Path, help="the multirun folder (default: multirun/label_fractions_<sweep>_<time>); "
                                                  "with --report, where the report goes (needed for several folders)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="FOLDER",
                        help="re-render the report of existing multirun folders (one report of them all), no training")
    args = parser.parse_args(argv)
    if args.report is not None:
        for folder in args.report:
            if not folder.is_dir():
                print(f"error: {folder} is not a folder; pass the multirun folder of a sweep", file=sys.stderr)
                return 2
        if len(args.report) > 1 and args.out is None:
            print("error: a report of several folders needs --out FOLDER to write it to", file=sys.stderr)
            return 2
        write_report(args.report, out_dir=args.out)
        return 0
    if not args.sweep:
        parser.error("give a sweep name (see conf/sweep/) or --report FOLDER")
    out_dir = args.out or Path("multirun") / f"label_fractions_{args.sweep}_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    if sweep_holds_runs(out_dir):  # its jobs would refuse to start in the earlier runs' folders
        print(f"error: {out_dir} already holds a sweep's runs; choose a new --out, or re-render its report with "
              f"--report {out_dir}", file=sys.stderr)
        return 2
    code = run_sweep(args.sweep, out_dir, overrides)
    if not out_dir.is_dir():
        print(f"error: the sweep wrote nothing to {out_dir} (exit code {code})", file=sys.stderr)
        return code or 2
    write_report(out_dir)
    if code in (130, 143):  # stopped by Ctrl-C or SIGTERM
        print(f"the sweep was stopped: the report has the jobs that started (a stopped one is a failed row); "
              f"re-render it with --report {out_dir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
