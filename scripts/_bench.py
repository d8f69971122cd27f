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


def run_sweep(out_dir: Path, overrides: list[str]) -> list[dict]:
    """Runs ``python -m ssgan.train -m OVERRIDES`` into ``out_dir`` and returns each job's metrics."""
    if sweep_holds_runs(out_dir):  # its jobs would refuse to start in the earlier runs' folders
        raise SystemExit(f"error: {out_dir} already holds a sweep's runs; choose a new output folder")
    command = [sys.executable, "-m", "ssgan.train", "-m", *overrides, "trainer.enable_progress_bar=false",
               f"hydra.sweep.dir={out_dir}"]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
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
