"""The package works when installed from its wheel (not editable): the configs ship inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_ships_the_configs_and_trains_from_another_folder(tmp_path: Path) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("ssgan-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ssgan/conf/train.yaml" in names and "ssgan/conf/data/digits.yaml" in names
    assert "ssgan/data/datamodule.py" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target), SSGAN_CACHE_DIR=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, "-c", "import ssgan.config, sys; print(ssgan.config.CONFIG_DIR)"],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    assert run.stdout.strip() == str(target / "ssgan" / "conf"), run.stderr
    run = subprocess.run([sys.executable, "-m", "ssgan.train", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                          "data.num_labeled=20"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith("digits | 20 labels | ssgan | test acc")
