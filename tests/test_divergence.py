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
    assert len(last["DigitsDataModule"]["split"]["labeled"]) == 20  # the checkpoint carries the split
    # resumed from it into a new folder, diverging again before that folder saved anything: the checkpoint it
    # resumed from is still the last good one ("no checkpoint was saved before it", it said)
    again = compose_cfg("trainer.max_epochs=4", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    with open_dict(again):
        again.callbacks.nan_injector = {"_target_": f"{__name__}.NaNInjector"}
        again.paths.output_dir = str(run.parent / "resumed")
    with pytest.raises(UserError, match=rf"the last good checkpoint is {run / 'checkpoints' / 'last.ckpt'} \(try a "
                                        r"lower learning rate or model.gradient_clip_val, resuming from it in a new folder\)$"):
        train(again)


def _poison_supervised_loss(monkeypatch, calls_to_poison: set[int], how: str = "loss") -> None:
    """Makes the supervised loss NaN (or its gradient NaN, the loss finite) on the given calls."""
    from ssgan import losses

    original = losses.supervised_loss
    count = {"calls": 0}

    def poisoned(logits, labels):
        count["calls"] += 1
        loss = original(logits, labels)
        if count["calls"] in calls_to_poison:
            if how == "loss":
                return loss * float("nan")
            zero = logits.sum() - logits.sum().detach()  # 0, with a gradient of 1 to every logit
            return loss + 1e-30 * torch.sqrt(zero - zero)  # finite (0), but d sqrt(x)/dx at 0 is infinite
        return loss

    monkeypatch.setattr(losses, "supervised_loss", poisoned)


def test_a_non_finite_gradient_with_a_finite_loss_also_stops_the_run(compose_cfg, monkeypatch) -> None:
    _poison_supervised_loss(monkeypatch, {5}, how="gradient")
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20")
    with pytest.raises(UserError, match=r"training diverged: a discriminator gradient became non-finite at epoch 0, batch 4"):
        train(cfg)
    assert json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["status"] == "diverged"


def test_skipping_offending_batches_up_to_a_limit(compose_cfg, monkeypatch) -> None:
    _poison_supervised_loss(monkeypatch, {3, 7})
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "model.skip_nonfinite_batches=2")
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["skipped_batches"] == 2
    assert 0 <= metrics["test/acc"] <= 1


def test_skipping_stops_once_the_limit_is_spent(compose_cfg, monkeypatch) -> None:
    _poison_supervised_loss(monkeypatch, {3, 7})
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "model.skip_nonfinite_batches=1")
    with pytest.raises(UserError, match=r"discriminator_loss became nan at epoch 0, batch 6 after skipping 1 batch"):
        train(cfg)


class PoisonEvaluatedWeights(pl.Callback):
    """After epoch 1's last step, makes the evaluated (EMA) classifier's outputs infinite, its gradients
    having been finite: what a huge but finite step can do."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == trainer.num_training_batches - 1:
            with torch.no_grad():
                pl_module.classifier.classifier.bias.fill_(float("inf"))


def test_non_finite_validation_outputs_stop_the_run_before_their_epoch_is_saved(compose_cfg) -> None:
    cfg = compose_cfg("trainer.max_epochs=3", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "trainer.limit_train_batches=3")
    with open_dict(cfg):
        cfg.callbacks.poison = {"_target_": f"{__name__}.PoisonEvaluatedWeights"}
    with pytest.raises(UserError, match=r"training diverged: the discriminator's validation outputs became non-finite "
                                        r"at epoch 1; the last good checkpoint is \S+last.ckpt"):
        train(cfg)
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 0 and all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_the_skipped_batch_count_is_the_runs_even_when_an_earlier_checkpoint_is_tested(compose_cfg, monkeypatch) -> None:
    # 12 batches an epoch: calls 27 and 28 are in epoch 2; mode=min makes an earlier epoch the "best" one
    _poison_supervised_loss(monkeypatch, {27, 28})
    cfg = compose_cfg("trainer.max_epochs=3", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "model.skip_nonfinite_batches=2", "test_ckpt=best", "callbacks.model_checkpoint.mode=min")
    metrics = train(cfg)
    assert metrics["best_epoch"] < 2 and metrics["skipped_batches"] == 2


def test_a_diverged_runs_log_ends_with_its_error_line_and_the_console_shows_it_once(train_in_process, monkeypatch,
                                                                                     tmp_path) -> None:
    _poison_supervised_loss(monkeypatch, {3})
    run = tmp_path / "run"
    code, stderr = train_in_process("data.num_labeled=20", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                                    f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 2 and stderr.count("training diverged") == 1
    assert json.loads((run / "metrics.json").read_text())["status"] == "diverged"
    last_line = (run / "train.log").read_text().splitlines()[-1]
    assert "[ERROR] - error: training diverged: discriminator_loss became nan at epoch 0, batch 2" in last_line


def test_a_run_that_diverges_in_a_self_training_round_reports_the_rounds_before_it(compose_cfg) -> None:
    # two epochs of first training, then rounds of one epoch: the NaN at epoch 2 falls in round 1
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "self_training=default", "self_training.rounds=2", "self_training.epochs_per_round=1",
                      "self_training.threshold=0.1")
    with open_dict(cfg):
        cfg.callbacks.nan_injector = {"_target_": f"{__name__}.NaNInjector"}
    with pytest.raises(UserError, match=r"training diverged: .* at epoch 2, batch 2"):
        train(cfg)
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["rounds_planned"] == 2
    assert [entry["round"] for entry in metrics["rounds"]] == [0] and metrics["rounds"][0]["epochs"] == [0, 1]
