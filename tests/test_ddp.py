"""DDP on the CPU: two gloo processes train the GAN on digits with one split and a falling, finite loss."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SMALLER_D, SMALLER_G


def test_two_process_ddp_fit_on_cpu(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = dict(os.environ, SSGAN_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "ssgan.train", "trainer=ddp_cpu", "data.num_labeled=20", "trainer.max_epochs=6",
         "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", SMALLER_D, SMALLER_G, f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("digits | 20 labels | ssgan") == 1  # one summary, from rank 0
    metrics = json.loads((run / "metrics.json").read_text())
    # both ranks drew the same labeled/validation split
    assert metrics["world_size"] == 2 and len(metrics["split_fingerprints"]) == 2
    assert len(set(metrics["split_fingerprints"])) == 1
    # the 1,250 unlabeled images are sharded: 12 batches an epoch in all, 6 on each rank
    assert metrics["steps"] == 6 * 6
    rows = [row for row in csv.DictReader((run / "csv" / "metrics.csv").open()) if row.get("train/loss_supervised")]
    losses = [float(row["train/loss_supervised"]) for row in rows]
    assert len(losses) >= 6 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.5 * losses[0]  # the labeled loss falls
    assert 0.3 < metrics["test/acc"] <= 1.0
    # the test metrics are synced over both ranks' shards: they equal one process's score on the whole test set
    import torch

    from ssgan.data import DigitsDataModule
    from ssgan.tools import load_module

    # each rank draws its own noise and z (they drew the same: one fake batch, twice); the checkpoint keeps both streams
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    rank_streams = [state["torch"] for state in checkpoint["ssgan_rng_per_rank"]]
    assert len(rank_streams) == 2 and not torch.equal(*rank_streams)
    assert torch.equal(checkpoint["ssgan_rng"]["torch"], rank_streams[0])
    module = load_module(run / "checkpoints" / "last.ckpt").eval()
    datamodule = DigitsDataModule(num_labeled=20, split_cache_dir=str(tmp_path / "cache"))
    datamodule.setup()
    with torch.no_grad():
        correct = sum(int((module(images).argmax(dim=1) == labels).sum()) for images, labels in datamodule.test_dataloader())
    assert metrics["test/acc"] == pytest.approx(correct / len(datamodule.data.test_labels), abs=1e-6)


def _run_ranks(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Runs a DDP command in its own process group; on a timeout every rank is killed, not only rank 0."""
    import signal

    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a hung rank, if any
    return process.returncode, stderr


def test_sigterm_during_a_checkpoint_save_stops_both_ranks_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = dict(os.environ, SSGAN_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=str(Path(__file__).resolve().parent))
    command = [sys.executable, "-m", "ssgan.train", "trainer=ddp_cpu", "data.num_labeled=20", "trainer.max_epochs=3",
               "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", SMALLER_D, SMALLER_G, f"hydra.run.dir={run}"]
    # rank 0 signals itself while saving epoch 1's checkpoint, when rank 1 waits in the save's barrier
    # (Lightning's own handler broadcast from there, and both ranks hung until killed)
    marker = tmp_path / "rank1_saving"
    code, stderr = _run_ranks([*command, "+callbacks.signal._target_=kill_switch.SignalOnSave", "+callbacks.signal.epoch=1",
                               f"+callbacks.signal.marker={marker}"], tmp_path, env, timeout=300)
    assert marker.read_text() == "saving"  # rank 1 had reached the save
    assert code == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("error: stopped by SIGTERM before the run finished; resume it")
    assert not (run / "metrics.json").exists()
    code, stderr = _run_ranks([*command, "ckpt_path=last"], tmp_path, env, timeout=600)
    assert code == 0, stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3


def test_cli_fits_with_two_processes_writing_its_images_in_its_log_folder(tmp_path: Path) -> None:
    # the CLI picks the DDP strategy the GAN needs (plain DDP stops at the first generator step), and the
    # callbacks without a dirpath find the log folder on every rank (rank 0 alone waited in its broadcast)
    env = dict(os.environ, SSGAN_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    common = ["--config", "digits_ssgan", "--data.init_args.num_labeled=20", "--trainer.accelerator=cpu",
              "--trainer.devices=2", "--trainer.enable_progress_bar=false"]
    code, stderr = _run_ranks([sys.executable, "-m", "ssgan.cli", "fit", *common, "--trainer.max_epochs=1",
                               "--trainer.limit_train_batches=2"], tmp_path, env, timeout=300)
    assert code == 0, stderr[-3000:]
    log_dir = tmp_path / "lightning_logs" / "version_0"
    assert (log_dir / "samples" / "epoch_0000.png").is_file()  # (the confusion matrix's callback had the same hang)


def test_a_ddp_run_that_diverges_says_so_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = dict(os.environ, SSGAN_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    code, stderr = _run_ranks([sys.executable, "-m", "ssgan.train", "trainer=ddp_cpu", "data.num_labeled=20",
                               "model.optimizer_d.lr=1e30", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                               "callbacks.sample_grid=null", f"hydra.run.dir={run}"], tmp_path, env, timeout=300)
    assert code == 2, stderr[-3000:]
    # one line and one writer of metrics.json (each rank printed its own line and wrote its own record)
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: training diverged: "), errors
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and errors[0].startswith(f"error: training diverged: {metrics['error']}; ")
