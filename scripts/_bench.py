"""What the benchmark scripts share: run a Hydra multirun of ssgan-train, then read its metrics."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import torch

from ssgan.command_line import SWEEP_WITH_FAILED_JOBS, sweep_holds_runs
from ssgan.config import hydra_value
from summarize_runs import load_runs, unfinished_runs


def run_child(command: list[str]) -> int:
    """Runs ``command`` and returns its exit code; a SIGTERM or Ctrl-C to this script stops it too.

    (Without this, ``timeout`` or ``kill`` on the script would leave its sweep training on alone.)
    """
    import signal

    child = subprocess.Popen(command, env=dict(os.environ, PYTHONWARNINGS="ignore"))

    received = [signal.SIGINT]  # Ctrl-C arrives as KeyboardInterrupt without the handler

    def stop(signum: int, frame: object) -> None:
        received[0] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        code = child.wait()
        return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + N
    except KeyboardInterrupt:
        child.terminate()  # Hydra's jobs end as a SIGTERM'd run does; the finished ones keep their metrics
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
        return 128 + received[0]  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
    finally:
        signal.signal(signal.SIGTERM, previous)


def bench_arguments(argv: list[str], doc: str, default: Path) -> tuple[Path, list[str]]:
    """A bench script's ``[OUT_DIR] [overrides...]``: the folder (``default`` when none is given, that is
    when the first argument is already an override such as ``seed=1``) and the overrides."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", nargs="?", help=f"folder for the runs (default: {default.parent}/<name>_<date>)")
    parser.add_argument("overrides", nargs="*", help="extra ssgan-train overrides, e.g. trainer.precision=bf16-mixed")
    args = parser.parse_args(argv)
    if args.out_dir is None or "=" in args.out_dir:
        return default, [args.out_dir, *args.overrides] if args.out_dir else args.overrides
    return Path(args.out_dir), args.overrides


# run_child's exit codes for a sweep stopped on purpose
STOPPED_BY = {130: "Ctrl-C", 143: "SIGTERM"}


class SweepStopped(Exception):
    """A sweep stopped by SIGTERM or Ctrl-C: the script reports ``runs`` (its jobs so far, the finished
    ones with their metrics) and then exits with ``code``, as the sweep did."""

    def __init__(self, code: int, runs: list[dict]) -> None:
        super().__init__(f"stopped by {STOPPED_BY[code]}")
        self.code, self.runs = code, runs

    def report(self) -> int:
        """Says in one line what the report above it holds; returns the exit code."""
        print(f"error: {self}: the sweep stopped before it finished, and the table holds the runs that finished",
              file=sys.stderr)
        return self.code


class SweepRefused(Exception):
    """Every job of a sweep refused the same setting before it trained; ``run_sweep`` removed the folder."""

    def __init__(self, refusal: str) -> None:
        super().__init__(refusal)
        self.refusal = refusal


def train_command(arguments: list[str]) -> list[str]:
    """``ssgan-train ARGUMENTS`` run by this Python, with ssgan as installed. (``python -m ssgan.train`` would
    import an ``ssgan/`` folder in the working folder first, such as another checkout's.)"""
    return [sys.executable, "-c", "import sys; '' in sys.path and sys.path.remove(''); sys.argv[0] = 'ssgan-train'; "
            "from ssgan.command_line import main; main()", *arguments]


def run_sweep(out_dir: Path, overrides: list[str]) -> list[dict]:
    """Runs ``ssgan-train -m OVERRIDES`` into ``out_dir`` and returns each job's metrics (a job
    that stopped without them is a failed run); ``SweepStopped`` after a SIGTERM or Ctrl-C, and
    ``SweepRefused`` when every job refused the same setting (the folder is then removed)."""
    if sweep_holds_runs(out_dir):  # its jobs would refuse to start in the earlier runs' folders
        raise SystemExit(f"error: {out_dir} already holds a sweep's runs; choose a new output folder")
    existed, made_parents = out_dir.exists(), [folder for folder in out_dir.parents if not folder.exists()]
    was_empty = not existed or not any(out_dir.iterdir())
    arguments = ["-m", *overrides, "trainer.enable_progress_bar=false", f"hydra.sweep.dir={hydra_value(str(out_dir))}"]
    print("$ ssgan-train", " ".join(arguments), flush=True)
    code = run_child(train_command(arguments))
    if code in STOPPED_BY:
        raise SweepStopped(code, load_runs(out_dir) + unfinished_runs(out_dir))
    runs = load_runs(out_dir) + unfinished_runs(out_dir)
    if code and code != SWEEP_WITH_FAILED_JOBS:  # that one ran to its end: its failed jobs are on the record
        kept = "its finished runs are kept there" if sweep_holds_runs(out_dir) else "no job ran; see the error above"
        raise SystemExit(f"error: the sweep into {out_dir} stopped (exit code {code}); {kept}")
    refused = {run.get("error") for run in runs}
    if was_empty and runs and len(refused) == 1 and all(_refused_before_training(run) for run in runs):
        # every job refused the same setting before it trained: leave nothing that would make the same
        # command, with the setting fixed, refuse the output folder
        for entry in out_dir.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for folder in ([] if existed else [out_dir]) + made_parents:  # the deepest first
            with contextlib.suppress(OSError):  # one that holds something else now is kept
                folder.rmdir()
        raise SweepRefused(refused.pop())
    return runs


def _refused_before_training(run: dict) -> bool:
    """A job that recorded a refused setting as its failure (not a crash, whose traceback is in its log, nor
    a kill, which records nothing) and saved nothing."""
    run_dir = Path(run["run_dir"])
    return (run.get("status") == "failed" and not run.get("crashed") and bool(run.get("error"))
            and (run_dir / "metrics.json").is_file() and not any(run_dir.rglob("*.ckpt")))


def split_failed(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """The runs that finished (status ok, with a test accuracy), and one line naming each other run."""
    finished, failed = [], []
    for run in runs:
        accuracy = run.get("test/acc")
        if run.get("status", "ok") == "ok" and isinstance(accuracy, (int, float)) and math.isfinite(accuracy):
            finished.append(run)
        else:
            failed.append(f"{run['run_dir']} ({run.get('method', '?')}, split seed {run.get('split_seed', '?')}): "
                          f"{run.get('status', 'failed')}: {run.get('error') or 'no test accuracy'}")
    return finished, failed


def machine_line() -> str:
    """One line naming the machine, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{datetime.now():%Y-%m-%d}, {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one of at least {minimum}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is below {minimum}; give at least {minimum}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    return _whole_number(text, 0)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"
