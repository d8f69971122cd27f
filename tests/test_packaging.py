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
    configs = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "conf").rglob("*.yaml"))
    assert configs and all(f"ssgan/{config}" in names for config in configs)  # cli/, hydra/launcher/ ... too
    assert all(f"ssgan/{path.relative_to(REPO / 'ssgan').as_posix()}" in names for path in (REPO / "ssgan").rglob("*.py"))
    # each console script names a callable of the package; ssgan and ssgan-cli begin where a stop during the imports is one line
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    scripts = [line.split(" = ")[1] for line in zipfile.ZipFile(wheel).read(entry_points).decode().splitlines() if " = " in line]
    assert sorted(scripts) == ["ssgan.command_line:cli_main", "ssgan.command_line:main", "ssgan.command_line:tools_main"]
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target), SSGAN_CACHE_DIR=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, "-m", "ssgan.train", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                          "data.num_labeled=20"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith("digits | 20 labels | ssgan | test acc")
    # the configs are the installed package's, and ssgan-cli finds its own there by name, as README says
    run = subprocess.run([sys.executable, "-c", "import ssgan.config; print(ssgan.config.CONFIG_DIR); from ssgan.cli "
                          "import main; main(['fit', '--config', 'digits_ssgan', '--print_config'])"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "class_path: ssgan.module.SSGAN" in run.stdout, run.stderr[-2000:]
    assert run.stdout.splitlines()[0] == str(target / "ssgan" / "conf")
    # ssgan-train's own entry point (the console script's), from the wheel: a mistyped option is one line, and
    # the installed configs list the options
    run = subprocess.run([sys.executable, "-m", "ssgan", "data=fashoin"], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2 and run.stderr == ("error: unknown data set 'fashoin'; use data= one of: cifar10, digits, "
                                                  "fashion_mnist, folder, mnist, svhn\n"), run.stderr[-2000:]
