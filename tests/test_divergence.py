"""A NaN loss stops the run with a clear message, status "diverged" and the last good checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from ssgan.errors import UserError
from ssgan.train import train


class NaNInjector(pl.Callback):
    """Poisons one discriminator weight at the start of epoch 2, batch 2."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 2 and batch_idx == 2:
            with torch.no_grad():
                pl_module.discriminator.classifier.bias[0] = float("nan")


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(compose_cfg) -> None:
    cfg = compose_cfg("trainer.max_epochs=4", "trainer.enable_progress_bar=false", "data.num_labeled=20")
    with open_dict(cfg):
        cfg.callbacks.nan_injector = {"_target_": f"{__name__}.NaNInjector"}
    with pytest.raises(UserError, match=r"training diverged: discriminator_loss became nan at epoch 2, batch 2"):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "epoch 2, batch 2" in metrics["error"]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1  # the end of epoch 1, the last before the NaN, whether or not it was the best
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
