"""Hydra launchers: joblib runs a sweep's jobs in parallel here, and the SLURM config composes for submitit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ssgan.config import CONFIG_DIR


def test_slurm_launcher_config_composes_for_submitit() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1


def test_local_joblib_launcher_isolates_a_bad_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    env = dict(os.environ, SSGAN_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "ssgan.train", "-m", "hydra/launcher=local", "data.num_labeled=20,55",
         "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "callbacks=none", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    statuses = {json.loads((sweep / job / "metrics.json").read_text())["status"] for job in ("0", "1")}
    assert statuses == {"ok", "failed"}
    failed = json.loads((sweep / "1" / "metrics.json").read_text())
    assert "not divisible by the 10 classes" in failed["error"]
    assert "Tip:" not in result.stdout + result.stderr  # Lightning's advert is hidden in the worker processes too
