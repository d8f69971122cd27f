"""A callback that SIGKILLs its own process at a given epoch and batch (for the resume tests)."""

from __future__ import annotations

import os
import signal
import time

import pytorch_lightning as pl


class KillAt(pl.Callback):
    """Kills the process, as a pre-empted node would, when training reaches (``epoch``, ``batch``);
    with ``epoch=-1``, when prediction reaches ``batch``."""

    def __init__(self, epoch: int, batch: int, signal_name: str = "SIGKILL") -> None:
        self.epoch, self.batch, self.signal = epoch, batch, getattr(signal, signal_name)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), self.signal)

    def on_predict_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int,
                               dataloader_idx: int = 0) -> None:
        if self.epoch == -1 and batch_idx == self.batch:  # epoch -1: in prediction, which has no epochs
            os.kill(os.getpid(), self.signal)


class SignalOnSave(pl.Callback):
    """Sends ``signal_name`` to its own process from rank 0's first checkpoint save of ``epoch``.

    It waits ``delay`` seconds first, so that under DDP the other ranks already wait in the save's
    barrier: a signal handler that runs a collective there never meets its match.
    """

    def __init__(self, epoch: int, signal_name: str = "SIGTERM", delay: float = 3.0) -> None:
        self.epoch, self.signal, self.delay, self.sent = epoch, getattr(signal, signal_name), delay, False

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.is_global_zero and trainer.current_epoch == self.epoch and not self.sent:
            self.sent = True
            time.sleep(self.delay)
            os.kill(os.getpid(), self.signal)
