"""Label-fraction benchmark: one Hydra multirun over labels x method x seed, turned into a report.

    python scripts/benchmark_label_fractions.py digits                      # runs `ssgan-train -m sweep=digits`
    python scripts/benchmark_label_fractions.py fashion_mnist --out multirun/lf_fmnist
    python scripts/benchmark_label_fractions.py --report multirun/lf_digits  # re-renders, no training
    python scripts/benchmark_label_fractions.py --report multirun/part1 multirun/part2 --out multirun/all
                                        # one report of a sweep run in parts
    python scripts/benchmark_label_fractions.py digits -- trainer.max_epochs=5   # extra overrides after --

The sweeps live in ``conf/sweep/`` (one file per data set). The report, written beside the runs:
- ``results.csv``: one row per run, failed runs included with their error;
- ``results.md``: mean ± sample std (n − 1) of the test accuracy per (labels, method) cell, the best per row in bold; a run
  asked for ``data.label_fraction`` has its line by fraction (with the label count it drew), failed or not;
- ``results.png``: test accuracy against the number of labels, or the fraction when every run asked for one
  (log x-axis), error bars, one line per method.
"""

from __future__ import annotations

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

from _bench import run_child, train_command  # noqa: E402
from summarize_runs import load_runs, method_of, natural_order, ssgan_sweep, unfinished_runs  # noqa: E402
from summarize_runs import other_settings as _other_settings  # noqa: E402

from ssgan.atomic import atomic_write  # noqa: E402
from ssgan.config import hydra_value  # noqa: E402
from ssgan.command_line import (SWEEP_WITH_FAILED_JOBS, OneLineErrorParser, _earlier_run, escape_unencodable_output,
                                sweep_holds_runs, sweep_records)
from ssgan.command_line import rounds_merge_methods as shared_rounds_merge_methods  # noqa: E402

METHOD_ORDER = ("supervised", "supervised+self-training", "ssgan", "ssgan+self-training")
CSV_FIELDS = ("job", "dataset", "method", "num_labeled", "label_fraction", "seed", "split_seed", "status",
              "test_acc", "val_acc", "best_val_acc", "epochs", "train_seconds", "error", "run_dir")


def run_sweep(sweep: str, out_dir: Path, overrides: list[str]) -> int:
    """Runs the multirun ``sweep=SWEEP`` into ``out_dir``; returns its exit code (failed jobs do not stop it)."""
    arguments = ["-m", f"sweep={sweep}", *overrides, "trainer.enable_progress_bar=false",
                 f"hydra.sweep.dir={hydra_value(str(out_dir))}"]
    print("$ ssgan-train", " ".join(arguments), flush=True)
    return run_child(train_command(arguments))


def rounds_merge_methods(sweep: str, overrides: list[str]) -> str | None:
    """``ssgan.command_line.rounds_merge_methods``, with the fixes spelt as this script's command lines."""
    return shared_rounds_merge_methods(sweep, overrides, lambda extra: f"{sweep} -- {extra} ...")


def _job_name(run_dir: str | Path, base: Path) -> str:
    """A job's name: its folder relative to ``base`` (``3``, or ``part1/3`` for a report of several folders)."""
    with contextlib.suppress(ValueError):
        return Path(run_dir).resolve().relative_to(base.resolve()).as_posix()
    return str(run_dir)


def collect(root: Path, seen: set[Path] | None = None, base: Path | None = None) -> list[dict]:
    """One row per job of the sweep in ``root``: its metrics, a failed row when it wrote none, and a
    "not started" row for each job that Hydra's record of the sweep (``multirun.yaml``) lists but that
    has no folder (the sweep was stopped before it).

    Job folders already in ``seen`` (resolved paths) are skipped, and the ones read are added to it.
    Jobs are named by their folder relative to ``base`` (default: ``root``).
    """
    rows = []
    seen = set() if seen is None else seen
    base = root if base is None else base
    for metrics in load_runs(root):
        run_dir = Path(metrics["run_dir"]).resolve()
        if run_dir in seen:
            continue
        seen.add(run_dir)
        status = metrics.get("status", "ok")
        # a job refused before it drew its labels records them as asked: both set is a request of its own (its
        # fraction's line is not the run of that fraction alone), where a run that drew them records the count too
        asked_both = status == "failed" and _is_number(metrics.get("num_labeled")) and _is_number(metrics.get("label_fraction"))
        test_acc = metrics.get("test/acc") if status == "ok" else None
        if status == "ok" and test_acc is not None and not (_is_number(test_acc) and math.isfinite(test_acc)):
            status, metrics["error"], test_acc = "failed", f"its test accuracy is {test_acc}, not a number", None
        planned, rounds = metrics.get("rounds_planned"), metrics.get("rounds")
        if status == "ok" and _is_number(planned) and planned > 0 and isinstance(rounds, list):
            trained = sum(1 for entry in rounds if isinstance(entry, dict) and entry.get("round", 0) > 0
                          and entry.get("trained", True))
            if trained < planned:  # early stopping or trainer.max_steps ended them: not the method the cell names
                status, test_acc = "failed", None
                metrics["error"] = (f"it trained {trained} of its {planned} self-training rounds (early stopping or "
                                    "trainer.max_steps ended them), so it is not a run of its method")
        if status == "ok" and _labels_key(metrics) is None:  # a damaged metrics.json: it belongs on no line of the table
            status, test_acc = "failed", None
            metrics["error"] = (f"its metrics.json gives no number of labels (num_labeled {metrics.get('num_labeled')!r}, "
                                f"label_fraction {metrics.get('label_fraction')!r})")
        rows.append({
            "job": _job_name(metrics["run_dir"], base), "dataset": metrics.get("dataset"), "method": metrics.get("method"),
            "num_labeled": metrics.get("num_labeled"), "label_fraction": metrics.get("label_fraction"),
            "seed": metrics.get("seed"), "split_seed": metrics.get("split_seed"), "status": status,
            "test_acc": test_acc, "val_acc": metrics.get("val/acc"),
            "best_val_acc": metrics.get("val/best_acc"), "epochs": metrics.get("epochs"),
            "train_seconds": metrics.get("train_seconds"), "error": metrics.get("error", ""),
            "run_dir": metrics["run_dir"], "settings": _other_settings(run_dir / ".hydra" / "overrides.yaml"),
            "settings_known": (run_dir / ".hydra" / "overrides.yaml").is_file(),
            "config": _config_settings(run_dir / ".hydra" / "config.yaml"),
            "asked_both": asked_both,
        })
    # a job killed before it wrote anything still has its .hydra folder: report it, never drop it
    for unfinished in unfinished_runs(root):
        run_dir = Path(unfinished["run_dir"])
        if run_dir.resolve() in seen:
            continue
        seen.add(run_dir.resolve())
        hydra_dir = run_dir / ".hydra"
        rows.append({"job": _job_name(run_dir, base), **unfinished, "settings": _other_settings(hydra_dir / "overrides.yaml"),
                     "settings_known": (hydra_dir / "overrides.yaml").is_file()})
    # a job the sweep never reached (it was killed, or stopped, first) has no folder: Hydra's record of the
    # sweep names it, so it is a row too
    record = _sweep_record(root)
    expected = list(expected_jobs(record))
    if not _numbered_jobs(record):
        from omegaconf import OmegaConf

        # folders named otherwise (hydra.sweep.subdir=job_${...}): a job began if a folder records its overrides
        begun = set()
        for overrides_file in root.rglob("overrides.yaml"):  # at any depth: a subdir may nest (${model}/${seed})
            if overrides_file.parent.name != ".hydra" or overrides_file.parent.parent == root:
                continue
            with contextlib.suppress(Exception):
                begun.add(frozenset(str(item) for item in OmegaConf.load(overrides_file)))
        for number, overrides in enumerate(expected):
            if frozenset(overrides) not in begun:
                rows.append({"job": f"#{number}", "status": "not started", "run_dir": "",
                             "error": "no job folder records its overrides: the sweep stopped before it began",
                             "settings": _other_settings(overrides), **_job_fields(record, overrides)})
        expected = []
    # the highest job that began: the launchers start jobs in their order, so one before it without a folder lost it
    started = [number for number in range(len(expected)) if (root / str(number) / ".hydra").is_dir()]
    for number, overrides in enumerate(expected):
        run_dir = root / str(number)
        if run_dir.resolve() in seen or (run_dir / ".hydra").is_dir():
            continue
        seen.add(run_dir.resolve())
        # a launcher that starts jobs out of order (parallel workers, a SLURM array) leaves such gaps too
        lost = bool(started) and number < max(started)
        rows.append({"job": _job_name(run_dir, base), "status": "not started", "run_dir": str(run_dir),
                     "error": "it has no folder, though later jobs of the sweep began: it never started, or its folder "
                     "was deleted or moved" if lost else "the sweep stopped before this job began",
                     "settings": _other_settings(overrides),
                     **_job_fields(record, overrides)})
    rows.sort(key=lambda r: natural_order(str(r["job"])))
    return rows


def _sweep_record(root: Path):
    """Hydra's ``multirun.yaml`` of the sweep in ``root`` (its config and the command line), if readable."""
    from omegaconf import OmegaConf

    with contextlib.suppress(Exception):
        return OmegaConf.load(root / "multirun.yaml") if (root / "multirun.yaml").is_file() else None
    return None


def _numbered_jobs(record) -> bool:
    """Whether the sweep's job folders are named by job number (Hydra's default ``hydra.sweep.subdir``), so
    that job N's folder is known; another naming gives no way to tell which listed job has no folder."""
    from omegaconf import OmegaConf

    with contextlib.suppress(Exception):
        sweep = OmegaConf.to_container(record.hydra, resolve=False).get("sweep") or {}
        return str(sweep.get("subdir", "${hydra.job.num}")) == "${hydra.job.num}"
    return False


def expected_jobs(record) -> list[list[str]]:
    """Each job's overrides, in job order, as Hydra's basic sweeper builds them from the sweep config's
    ``hydra.sweeper.params`` and the command line; [] for another sweeper or a record it cannot read."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with contextlib.suppress(Exception):
        sweeper = record.hydra.sweeper
        if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
            return []
        arguments = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
        arguments += [str(item) for item in record.hydra.overrides.task]
        overrides = OverridesParser.create().parse_overrides(arguments)
        return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
    return []


def _job_fields(record, overrides: list[str]) -> dict:
    """The data set, method, labels and seeds of a job that never ran: its overrides, else the sweep's config."""
    from omegaconf import OmegaConf

    given = dict(item.lstrip("+").partition("=")[::2] for item in overrides)
    choices = OmegaConf.select(record, "hydra.runtime.choices", default={}) or {}
    rounds = given.get("self_training.rounds")
    if rounds is None and "self_training" not in given:  # the sweep's own count holds for this job too
        rounds = OmegaConf.select(record, "self_training.rounds", default=None)
    found = {"dataset": given.get("data", choices.get("data")),
             "method": method_of(given.get("model", choices.get("model")),
                                 given.get("self_training", choices.get("self_training")),
                                 int(rounds) if str(rounds).isdigit() else None)}
    for key, name, kind in (("seed", "seed", int), ("data.split_seed", "split_seed", int),
                            ("data.num_labeled", "num_labeled", int), ("data.label_fraction", "label_fraction", float)):
        value = given[key] if key in given else OmegaConf.select(record, key, default=None)
        with contextlib.suppress(TypeError, ValueError):
            found[name] = kind(value) if value not in (None, "null") else None
    return {key: value for key, value in found.items() if value is not None}


# The overrides a benchmark sweeps by design: runs that differ only in these share a cell or a column
# Settings in a job's composed config (.hydra/config.yaml) that say where and how it ran, not what it trained
RUN_ONLY = ("paths.", "hydra.", "ckpt_path", "overwrite", "trainer.enable_progress_bar")


def _config_settings(path: Path) -> dict:
    """A job's composed config, flattened (``{"trainer.max_epochs": 60, ...}``), without what a benchmark
    sweeps and where it ran: two runs of one cell differ here only if a config file changed between them."""
    from omegaconf import OmegaConf

    swept = {"seed", "data.split_seed", "data.num_labeled", "data.label_fraction"}
    with contextlib.suppress(Exception):
        flat: dict = {}

        def walk(node, prefix: str) -> None:
            if isinstance(node, dict) and node:
                for key, child in node.items():
                    walk(child, f"{prefix}.{key}" if prefix else str(key))
            else:
                flat[prefix] = node

        walk(OmegaConf.to_container(OmegaConf.load(path), resolve=False), "")
        return {key: value for key, value in flat.items()
                if key not in swept and not any(key == run or key.startswith(run) for run in RUN_ONLY)}
    return {}


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

    if all(kind == 0 for kind, _ in labels) or all(kind == 1 for kind, _ in labels):
        return sorted(labels), ordered, accuracies  # by fraction, or by count
    # count and fraction lines together: by number of labels, a fraction line by the fewest its runs drew, or
    # where none finished, by its fraction at the labels a fraction drew on this data (the median ratio)
    drawn = {key: min(_drawn_counts(rows, key), default=None) for key in labels if key[0] == 0}
    ratios = [count / key[1] for key, count in drawn.items() if count is not None and key[1] > 0]
    scale = statistics.median(ratios) if ratios else 0.0

    def by_size(key: tuple[int, float]) -> tuple[float, int, float]:
        kind, value = key
        size = value if kind == 1 else drawn[key] if drawn[key] is not None else value * scale
        return (size, -kind, value)

    return sorted(labels, key=by_size), ordered, accuracies


def error_bar(values: list[float]) -> float:
    """The plot's error bar: the sample std (n - 1); NaN (no bar) for one run, whose spread is unknown, not 0."""
    return statistics.stdev(values) if len(values) > 1 else math.nan


def _spread(values: list[float]) -> str:
    """``mean ± std (n=k)``; one run has no spread to show: ``mean (n=1)``."""
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def render_markdown(rows: list[dict], title: str) -> str:
    labels, methods, accuracies = cells(rows)
    failed = [r for r in rows if r.get("status") not in ("ok", "superseded")]
    superseded = [r for r in rows if r.get("status") == "superseded"]
    out = io.StringIO()
    out.write(f"# {title}\n\nTest accuracy (%), mean ± sample std (n − 1) over seeds (n = finished runs); best per row in bold.\n\n")
    out.write("| labels | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods) + "\n")
    for label in labels:
        # compared as the table shows them (2 decimals): float sums of equal accuracies may differ in the last bit
        means = {m: round(statistics.mean(accuracies[(label, m)]), 2) for m in methods if accuracies.get((label, m))}
        best = max(means.values()) if means else None
        cells_text = []
        for method in methods:
            values = accuracies.get((label, method), [])
            in_cell = [r for r in rows if _labels_key(r) == label and r.get("method") == method]
            n_failed = sum(1 for r in in_cell if r.get("status") not in ("ok", "superseded", "not started"))
            n_waiting = sum(1 for r in in_cell if r.get("status") == "not started")
            # finished runs without a test set (a folder data set without test/): trained, but nothing to average
            n_untested = sum(1 for r in in_cell if r.get("status") == "ok" and r.get("test_acc") is None)
            parts = []
            if values:
                text = _spread(values)
                parts.append(f"**{text}**" if means[method] == best else text)
            parts += [f"{count} {what}" for count, what in ((n_untested, "with no test set"), (n_failed, "failed"),
                                                            (n_waiting, "not started")) if count]
            cells_text.append(", ".join(parts) or "-")
        out.write(f"| {_labels_text(label, rows, short=True)} | " + " | ".join(cells_text) + " |\n")
    # (labels, method) -> the other settings of its runs: failed and unstarted ones too, which the cell
    # counts as if they were other seeds of the finished runs' settings (but not a killed job whose record of
    # its overrides was never written: its settings are unknown, not none)
    mixed = defaultdict(set)
    configs = defaultdict(list)  # (labels, method) -> the finished runs' composed configs
    for row in rows:
        known = row.get("status") == "ok" or (row.get("status") != "superseded" and row.get("settings_known", True))
        if known and _labels_key(row) is not None:
            mixed[(_labels_key(row), row.get("method"))].add(row.get("settings") or "")
            if row.get("config") and row.get("status") == "ok":
                configs[(_labels_key(row), row.get("method"))].append(row["config"])
    warnings = {cell: " | ".join(sorted(s or "(none)" for s in settings)) for cell, settings in mixed.items()
                if len(settings) > 1}
    for cell, found in configs.items():  # the same overrides, but a config file changed between the runs
        keys = sorted({key for config in found for key in config}
                      - {key for key in found[0] if all(key in c and c[key] == found[0][key] for c in found)})
        if keys and cell not in warnings:
            shown = "; ".join(f"{key}: " + " | ".join(sorted({str(c.get(key, "(not set)")) for c in found}))
                              for key in keys[:3])
            warnings[cell] = f"config.yaml differs in {shown}" + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    if warnings:
        out.write("\n**Warning:** these cells hold runs with different settings, not only other seeds:\n\n")
        for (label, method), text in sorted(warnings.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            out.write(f"- {_labels_text(label, rows)}, {method}: {text}\n")
    if superseded:
        out.write(f"\n{len(superseded)} run(s) left out: their settings ran again, and one run of each counts (a finished "
                  "run, else the one in the folder given later):\n\n")
        for row in superseded:
            out.write(f"- job {row['job']}: {row.get('error')}\n")
    if failed:
        waiting = any(r.get("status") == "not started" for r in failed)
        out.write(f"\n{len(failed)} failed {'or unstarted ' if waiting else ''}run(s):\n\n")
        for row in failed:
            seed, split_seed = (row.get(key) if row.get(key) is not None else "?" for key in ("seed", "split_seed"))
            out.write(f"- job {row['job']} ({row.get('method') or '?'}, {_labels_text(_labels_key(row), rows)}, "
                      f"seed {seed}, split seed {split_seed}): "
                      f"{row.get('status')}: {row.get('error') or 'no error recorded'}\n")
    return out.getvalue()


def render_plot(rows: list[dict], path: Path, title: str) -> bool:
    """results.png; returns False (and says why) if matplotlib is missing or no run names its method."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: results.png skipped (pip install matplotlib)", file=sys.stderr)
        return False
    labels, methods, accuracies = cells(rows)
    if not methods:  # no job says what it ran (e.g. killed before Hydra recorded its choices): nothing to draw
        print("results.png skipped: no run of the report records its method; results.md lists them", file=sys.stderr)
        return False
    by_fraction = bool(labels) and all(kind == 0 for kind, _ in labels)
    # x: the fraction when every line is one, else the label count (a fraction line's drawn count, if it has one)
    positions = {}
    for label in labels:
        counts = _drawn_counts(rows, label) if label[0] == 0 and not by_fraction else [label[1]]
        if len(counts) == 1:
            positions[label] = counts[0]
        elif len(counts) > 1:  # no one x for this line's point: say so, rather than leave a gap in the plot unexplained
            print(f"results.png leaves out {_labels_text(label, rows)}: its runs drew different label counts "
                  f"({', '.join(str(count) for count in counts)}), so it has no one place on the label-count axis; "
                  "results.md keeps it", file=sys.stderr)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    ticks = set()  # a tick only where a point is drawn: a label count whose every job failed has none
    for method in methods:
        lines = sorted((label for label in labels if accuracies.get((label, method)) and label in positions),
                       key=positions.__getitem__)  # by x: a fraction's drawn count may fall between the counts
        means = [statistics.mean(accuracies[(line, method)]) for line in lines]
        stds = [error_bar(accuracies[(line, method)]) for line in lines]
        axes.errorbar([positions[line] for line in lines], means, yerr=stds, marker="o", capsize=3,
                      label=method if lines else f"{method} (no finished run)")
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
    # a folder name that is not UTF-8 (run_dir, job) is written as the file system's own bytes
    atomic_write(path, lambda temporary: temporary.write_text(text, newline="", errors="surrogateescape"))


def collect_all(roots: list[Path]) -> list[dict]:
    """The rows of several multirun folders, in the order given; each job folder is counted once.

    With more than one folder a job is named by its path from the folders' common parent (e.g.
    ``part1/3``), as job numbers repeat across folders. A run repeated with the same settings (data
    set, method, labels, seeds and other overrides; e.g. a part of a sweep run again after it was cut
    short) counts once: a finished run before an unfinished one, else the one in the folder given later.
    The others stay in the rows as ``superseded``.
    """
    import os

    seen: set[Path] = set()
    base = roots[0] if len(roots) == 1 else Path(os.path.commonpath([str(root.resolve()) for root in roots]))
    rows = [row for root in roots for row in collect(root, seen, base)]
    kept: dict[tuple, dict] = {}
    for row in rows:
        identity = (row.get("dataset"), row.get("method"), _labels_key(row), row.get("seed"), row.get("split_seed"),
                    row.get("settings") or "", row.get("asked_both", False))
        if any(part is None for part in identity[:5]):
            continue  # a job that does not say what it ran cannot repeat another
        earlier = kept.get(identity)
        ranks = {"ok": 2, "not started": 0}  # a job that never ran replaces no run that did (failed runs rank 1)
        if earlier is not None and ranks.get(earlier.get("status"), 1) > ranks.get(row.get("status"), 1):
            winner, loser = earlier, row
        else:
            winner, loser = row, earlier
        kept[identity] = winner
        if loser is not None:
            loser["error"] = (f"the same settings ran as job {winner['job']}, which counts ({loser.get('status')}: "
                              f"{loser.get('error') or 'finished'})")
            loser["status"] = "superseded"
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
    datasets = sorted({r["dataset"] for r in rows if r.get("dataset")})
    if len(datasets) > 1:  # one cell would average accuracies of different data sets
        print(f"error: the runs are of {len(datasets)} data sets ({', '.join(datasets)}); report each data set's "
              "runs on their own (a sweep of one data set per folder)", file=sys.stderr)
        raise SystemExit(2)
    if out_dir.exists() and not out_dir.is_dir():
        print(f"error: --out {out_dir} is a file; give a folder for the report", file=sys.stderr)
        raise SystemExit(2)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: cannot make --out {out_dir} ({error.strerror or error}); give a folder that can be written",
              file=sys.stderr)
        raise SystemExit(2) from None
    title = title or f"Label-fraction benchmark: {', '.join(datasets) or roots[0].name}"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    markdown = render_markdown(rows, title)  # before any file is written: the three files agree
    _write_atomic(out_dir / "results.csv", buffer.getvalue())
    _write_atomic(out_dir / "results.md", markdown)
    plotted = render_plot(rows, out_dir / "results.png", title)
    if not plotted:  # an earlier report's plot would not show these runs
        (out_dir / "results.png").unlink(missing_ok=True)
    print(markdown)
    written = [out_dir / "results.csv", out_dir / "results.md"] + ([out_dir / "results.png"] if plotted else [])
    print(f"wrote {', '.join(map(str, written[:-1]))} and {written[-1]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    escape_unencodable_output()  # a folder name that is not UTF-8, printed in the report
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = OneLineErrorParser(
        description=__doc__.split("\n\n")[0],
        epilog="Hydra overrides after -- replace the sweep's own, e.g. "
               "`fashion_mnist -- data.num_labeled=50,100 data.split_seed=0 trainer.precision=bf16-mixed`.")
    parser.add_argument("sweep", nargs="?", help="a sweep config in conf/sweep/, e.g. digits or fashion_mnist")
    parser.add_argument("--out", type=Path, help="the multirun folder (default: multirun/label_fractions_<sweep>_<time>); "
                                                  "with --report, where the report goes (needed for several folders)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="FOLDER",
                        help="re-render the report of existing multirun folders (one report of them all), no training")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        hint = (f"; put Hydra overrides after --, e.g. {args.sweep or 'digits'} -- {' '.join(unknown)}"
                if any("=" in item for item in unknown) else "")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if args.report is not None and (args.sweep or overrides):
        given = " ".join(([args.sweep] if args.sweep else []) + (["--", *overrides] if overrides else []))
        print(f"error: --report re-renders existing runs and trains nothing, so it takes no sweep or overrides "
              f"(got {given}); drop them, or run the sweep without --report", file=sys.stderr)
        return 2
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} is a file; give a folder", file=sys.stderr)
        return 2
    if args.report is not None:
        for folder in args.report:
            if not folder.is_dir():
                print(f"error: {folder} is not a folder; pass the multirun folder of a sweep", file=sys.stderr)
                return 2
            if _earlier_run(folder) and args.out is None and len(args.report) == 1:
                # its report would sit among the run's outputs, and count that run alone (with other folders and
                # --out, a job resumed into its own folder is one of the report's runs)
                print(f"error: {folder} is the folder of one run ({_earlier_run(folder)}), not of a sweep; pass its "
                      f"sweep's folder (the one holding 0/, 1/, ...), or summarize it with scripts/summarize_runs.py",
                      file=sys.stderr)
                return 2
            if any(folder.iterdir()) and not ssgan_sweep(folder):  # another program's: no results.* go into it
                print(f"error: {folder} holds no ssgan-train runs (no job's metrics.json, and Hydra's records there are "
                      f"another program's); pass the multirun folder of an ssgan-train sweep", file=sys.stderr)
                return 2
        if len(args.report) > 1 and args.out is None:
            print("error: a report of several folders needs --out FOLDER to write it to", file=sys.stderr)
            return 2
        return _unfinished_status(write_report(args.report, out_dir=args.out))
    if not args.sweep:
        parser.error("give a sweep name (see conf/sweep/) or --report FOLDER")
    merged = rounds_merge_methods(args.sweep, overrides)
    if merged:
        print(f"error: {merged}", file=sys.stderr)
        return 2
    out_dir = args.out or Path("multirun") / f"label_fractions_{args.sweep}_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    if _earlier_run(out_dir):  # a run's own folder: the report would count that run among the sweep's
        print(f"error: {out_dir} is the folder of a run ({_earlier_run(out_dir)}); choose a new --out", file=sys.stderr)
        return 2
    if sweep_holds_runs(out_dir):  # its jobs would refuse to start in the earlier runs' folders
        print(f"error: {out_dir} already holds a sweep's runs; choose a new --out, or re-render its report with "
              f"--report {out_dir}", file=sys.stderr)
        return 2
    if sweep_records(out_dir):  # a sweep stopped before any job saved, or another program's: ssgan-train refuses it
        print(f"error: {out_dir} holds Hydra's records of an earlier sweep ({sweep_records(out_dir)}); choose a new --out "
              "(or delete that folder to run the sweep there again)", file=sys.stderr)
        return 2
    code = run_sweep(args.sweep, out_dir, overrides)
    if code == 2:  # ssgan-train refused the command before any job, in one line of its own that says why
        return 2
    if not out_dir.is_dir() or not (out_dir / "multirun.yaml").is_file() and not any(out_dir.iterdir()):
        print(f"error: the sweep wrote nothing to {out_dir} (exit code {code})", file=sys.stderr)
        return code or 2
    if code != 0 and not collect_all([out_dir]):
        print(f"the sweep stopped (exit code {code}) before any job began", file=sys.stderr)
        return code
    rows = write_report(out_dir)
    # the sweep ran to its end, and ssgan-train's line said that jobs failed: the report's rows say which
    if code not in (0, SWEEP_WITH_FAILED_JOBS):  # stopped by Ctrl-C or SIGTERM, or killed (e.g. out of memory)
        print(f"the sweep stopped (exit code {code}): the report has a row for every job, a stopped one failed and "
              f"the ones after it not started; re-render it with --report {out_dir}", file=sys.stderr)
        return code
    return _unfinished_status(rows)


def _unfinished_status(rows: list[dict]) -> int:
    """1, with one line, when some runs of the report did not finish (failed or never started); else 0: a
    script or CI that runs the benchmark must not take a report of failed runs for a benchmark."""
    unfinished = [row for row in rows if row.get("status") not in ("ok", "superseded")]
    if not unfinished:
        return 0
    print(f"error: {len(unfinished)} of {len(rows)} runs did not finish ({unfinished[0]['status']}, e.g. job "
          f"{unfinished[0]['job']}); results.md counts them in its cells", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
