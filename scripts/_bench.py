"""What the benchmark scripts share: run a Hydra multirun of ssgan-train, then read its metrics."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import torch

from ssgan.train import sweep_holds_runs
from summarize_runs import load_runs


def run_child(command: list[str]) -> int:
    """Runs ``command`` and returns its exit code; a SIGTERM or Ctrl-C to this script stops it too.

    (Without this, ``timeout`` or ``kill`` on the script would leave its sweep training on alone.)
    """
    import signal

    child = subprocess.Popen(command, env=dict(os.environ, PYTHONWARNINGS="ignore"))

    def stop(signum: int, frame: object) -> None:
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
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sweep(out_dir: Path, overrides: list[str]) -> list[dict]:
    """Runs ``python -m ssgan.train -m OVERRIDES`` into ``out_dir`` and returns each job's metrics."""
    if sweep_holds_runs(out_dir):  # its jobs would refuse to start in the earlier runs' folders
        raise SystemExit(f"error: {out_dir} already holds a sweep's runs; choose a new output folder")
    command = [sys.executable, "-m", "ssgan.train", "-m", *overrides, "trainer.enable_progress_bar=false",
               f"hydra.sweep.dir={out_dir}"]
    print("$", " ".join(command[1:]), flush=True)
    code = run_child(command)
    if code:
        raise SystemExit(f"error: the sweep into {out_dir} stopped (exit code {code}); its finished runs are kept there")
    return load_runs(out_dir)


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


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"
