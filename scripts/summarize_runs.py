"""Prints a table of the runs under a folder (a Hydra multirun or any tree of run folders).

    python scripts/summarize_runs.py multirun/2026-11-21_12-00-00

It exits 1 when a run failed or did not finish (the table lists it), so a shell can tell.
Runs are averaged per (data set, labels, method, other settings): a sweep over, say,
``model.unlabeled_weight=1,3`` gets one mean per weight, never one mean over both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from ssgan.command_line import EARLIER_RUN_ASIDE

# What a benchmark sweeps (a run's seeds, labels and method are columns of their own), and how a run was
# run rather than what it trained: left out of a run's "other settings".
SWEPT = {"seed", "data.split_seed", "data.num_labeled", "data.label_fraction", "model", "self_training",
         "ckpt_path", "overwrite", "trainer.enable_progress_bar"}


def load_runs(root: Path) -> list[dict]:
    """Every ``metrics.json`` below ``root``, with its folder; an unreadable one is a failed run.

    Where a run's metrics lack what it ran (data set, method, seeds; e.g. an unreadable file), Hydra's
    record of the job fills them in.
    """
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        if EARLIER_RUN_ASIDE in path.relative_to(root).parts:  # an earlier run that a killed overwrite=true start set aside
            continue
        try:
            metrics = json.loads(path.read_text())
            if not isinstance(metrics, dict):
                raise ValueError(f"a JSON {type(metrics).__name__}, not an object")
        except (OSError, ValueError) as error:  # cut short by a kill or a full disk: a failed run, not a crash
            metrics = {"status": "failed", "error": f"unreadable metrics.json ({error})"}
        if any(metrics.get(key) is None for key in ("dataset", "method", "seed", "split_seed")):
            recorded = recorded_job(path.parent / ".hydra")
            metrics = {**{key: value for key, value in recorded.items() if key != "label_fraction" or
                          metrics.get("num_labeled") is None}, **{k: v for k, v in metrics.items() if v is not None}}
        metrics["run_dir"] = str(path.parent)
        runs.append(metrics)
    return runs


def unfinished_runs(root: Path) -> list[dict]:
    """A failed run for each Hydra job folder below ``root`` that has no ``metrics.json`` (killed before it
    wrote one, crashed, or still running), with what it ran from Hydra's record of the job."""
    return [{**recorded_job(hydra_dir), "status": "failed", "run_dir": str(hydra_dir.parent),
             "error": "no metrics.json: the job stopped before it finished (killed, crashed, or still running)"}
            for hydra_dir in sorted(root.rglob(".hydra"))
            if hydra_dir.parent.resolve() != root.resolve() and not (hydra_dir.parent / "metrics.json").exists()]


def recorded_job(hydra_dir: Path) -> dict:
    """What a job ran (data set, method, labels, seeds), from Hydra's record of it in ``hydra_dir``: the
    composed config and group choices, and where those were cut short by a kill, the overrides."""
    return {**_from_overrides(hydra_dir / "overrides.yaml"), **_from_record(hydra_dir)}


def _from_record(hydra_dir: Path) -> dict:
    """What a job ran with by default (data set, seeds, labels, method), from Hydra's composed config and
    group choices: a job's overrides name only what the sweep changed."""
    from omegaconf import OmegaConf

    found: dict = {}
    with contextlib.suppress(Exception):  # a record cut short by the kill: what could be read
        choices = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices
        found["dataset"] = choices.get("data")
        found["method"] = choices.get("model")
        found["self_training"] = choices.get("self_training")
    with contextlib.suppress(Exception):
        config = OmegaConf.load(hydra_dir / "config.yaml")
        for key, name in (("seed", "seed"), ("data.split_seed", "split_seed"), ("data.num_labeled", "num_labeled"),
                          ("data.label_fraction", "label_fraction")):
            value = OmegaConf.select(config, key, default=None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[name] = value
        rounds = OmegaConf.select(config, "self_training.rounds", default=None)
        if isinstance(rounds, int) and not isinstance(rounds, bool):
            found["rounds"] = rounds
    found["method"] = method_of(found.get("method"), found.pop("self_training", None), found.pop("rounds", None))
    return {key: value for key, value in found.items() if value is not None}


def method_of(model: str | None, self_training: str | None, rounds: int | None) -> str | None:
    """The method as ssgan-train names it: ``model``, plus ``+self-training`` when the rounds are on
    (by their count when known, else by the ``self_training`` group chosen)."""
    if not model:
        return None
    on = rounds > 0 if rounds is not None else self_training not in (None, "none")
    return model + ("+self-training" if on else "")


def _from_overrides(path: Path) -> dict:
    """What a job was asked to run, read from Hydra's record of its overrides."""
    found: dict = {}
    try:
        lines = path.read_text().splitlines() if path.is_file() else []
    except (OSError, UnicodeDecodeError):  # a record cut off mid-write, or unreadable: the settings stay unknown
        lines = []
    for line in lines:
        item = line.strip().lstrip("- ").strip("'\"")
        key, _, value = item.partition("=")
        if key == "data.num_labeled" and value.isdigit():
            found["num_labeled"] = int(value)
        elif key == "model":
            found["method"] = value + found.get("method", "")
        elif (key == "self_training" and value != "none") or (key == "self_training.rounds" and value not in ("0", "")):
            if not found.get("method", "").endswith("+self-training"):
                found["method"] = found.get("method", "") + "+self-training"
        elif key == "data.label_fraction" and value not in ("null", ""):
            with contextlib.suppress(ValueError):  # a typo (0.O1) leaves the row without a fraction, as for counts
                found["label_fraction"] = float(value)
        elif key in ("seed", "data.split_seed") and value.isdigit():
            found["seed" if key == "seed" else "split_seed"] = int(value)
    return found


def natural_order(name: str | Path) -> tuple:
    """Sorts run folders and job names by their numbers: 2 before 10, part1/9 before part1/10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in Path(name).as_posix().split("/"))


def other_settings(source: Path | list[str]) -> str:
    """A job's other overrides (e.g. ``trainer.max_epochs=30``), from Hydra's record of them (or the list); "" if none."""
    if isinstance(source, Path):
        if not source.is_file():
            return ""
        try:  # Hydra's YAML list: a quoted value (data.root='/a b') is read as YAML reads it, quotes and all
            import yaml

            recorded = yaml.safe_load(source.read_text())
        except (OSError, ValueError, yaml.YAMLError):
            recorded = None
        items = [str(item) for item in recorded] if isinstance(recorded, list) else []
    else:
        items = list(source)
    kept = []
    for item in items:
        key, _, value = item.lstrip("+~").partition("=")
        if key not in SWEPT and not key.startswith("hydra."):
            # Hydra's sweeper records true/false as True/False: the same setting either way
            kept.append(f"{key}={value.lower() if value.lower() in ('true', 'false', 'null', 'none') else value}")
    return " ".join(sorted(kept))


def _ssgan_config(config) -> bool:
    """Whether a composed config (a job's ``.hydra/config.yaml``, a sweep's ``multirun.yaml``) is ssgan-train's."""
    from omegaconf import OmegaConf

    with contextlib.suppress(Exception):
        return all(str(OmegaConf.select(config, f"{node}._target_", default="")).startswith("ssgan.")
                   for node in ("data", "model"))
    return False


def ssgan_sweep(root: Path) -> bool:
    """Whether ``root`` holds an ssgan-train sweep: a job's metrics.json, or Hydra's record of the sweep or of a job
    that ssgan-train's config composed (a sweep killed before any job wrote its metrics)."""
    import json

    from omegaconf import OmegaConf

    for path in root.rglob("metrics.json"):
        with contextlib.suppress(OSError, ValueError):
            metrics = json.loads(path.read_text())
            if isinstance(metrics, dict) and "status" in metrics and ("dataset" in metrics or "method" in metrics):
                return True
    multirun = root / "multirun.yaml"
    with contextlib.suppress(Exception):
        if multirun.is_file() and _ssgan_config(OmegaConf.load(multirun)):
            return True
    for config in root.rglob(".hydra/config.yaml"):
        with contextlib.suppress(Exception):
            if _ssgan_config(OmegaConf.load(config)):
                return True
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/summarize_runs.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_folder", metavar="RUN_FOLDER", type=Path,
                        help="a Hydra multirun folder, or any folder holding run folders")
    root = parser.parse_args(argv).run_folder
    if not root.is_dir():
        print(f"error: {root} is not a folder; pass the multirun folder that holds the runs", file=sys.stderr)
        return 2
    runs = load_runs(root) + unfinished_runs(root)
    if not runs:
        print(f"error: no metrics.json under {root}; did the runs finish?", file=sys.stderr)
        return 2
    if not ssgan_sweep(root):  # another program's Hydra records: rows of "?" that say nothing
        print(f"error: {root} holds no ssgan-train runs (no run's metrics.json, and Hydra's records there are another "
              "program's); pass a folder of ssgan-train runs", file=sys.stderr)
        return 2
    for run in runs:
        run["settings"] = other_settings(Path(run["run_dir"]) / ".hydra" / "overrides.yaml")
    method_width = max([12] + [len(str(run.get("method"))) + 1 for run in runs])  # e.g. supervised+self-training
    show_settings = any(run["settings"] for run in runs)
    print(f"{'dataset':<14}{'labels':>7}  {'method':<{method_width}}{'seed':>5}{'split':>6}  {'test acc':>9}  {'seconds':>8}  status"
          + ("  (other settings)" if show_settings else ""))
    groups: dict[tuple, list[float]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: natural_order(r["run_dir"])):
        acc = run.get("test/acc") if run.get("status", "ok") == "ok" else None
        if isinstance(acc, (int, float)) and not math.isfinite(acc):  # finished, but its accuracy is no number
            run["status"], run["error"], acc = "failed", f"its test accuracy is {acc}, not a number", None
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
        def group_order(item: tuple) -> tuple:  # label counts as numbers: 50 before 100
            dataset, labels, method, settings = item[0]
            return dataset, (0, int(labels), "") if labels.isdigit() else (1, 0, labels), method, settings

        for (dataset, labels, method, settings), accs in sorted(groups.items(), key=group_order):
            spread = f" ± {statistics.stdev(accs):4.2f}" if len(accs) > 1 else ""  # one run has no spread to show
            print(f"{dataset:<14}{labels:>7}  {method:<{method_width}} {statistics.mean(accs):6.2f}{spread} %  "
                  f"(n={len(accs)})" + (f"  ({settings})" if settings else ""))
    # as the label-fraction benchmark: a shell or CI must not take a table of failed runs for a finished sweep
    failed = [run for run in runs if run.get("status", "ok") != "ok"]
    if failed:
        print(f"error: {len(failed)} of {len(runs)} runs did not finish (e.g. {failed[0]['run_dir']}); "
              f"the means leave them out", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
