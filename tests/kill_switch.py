"""Callbacks that signal their own process at a given batch, or at a checkpoint save, or fill its disk (for the resume tests)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

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

    Under DDP the other ranks must wait in the save's barrier by then (a signal handler that runs a
    collective there never meets its match): with ``marker``, rank 1 writes that file as it reaches
    the save (the barrier follows the hook at once), and rank 0 waits for it, then ``delay`` seconds.
    """

    def __init__(self, epoch: int, signal_name: str = "SIGTERM", delay: float = 1.0, marker: str | None = None) -> None:
        self.epoch, self.signal, self.delay, self.sent = epoch, getattr(signal, signal_name), delay, False
        self.marker = None if marker is None else Path(marker)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.current_epoch != self.epoch or self.sent:
            return
        self.sent = True
        if not trainer.is_global_zero:
            if trainer.global_rank == 1 and self.marker is not None:
                self.marker.write_text("saving")
            return
        deadline = time.monotonic() + 300
        while self.marker is not None and not self.marker.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"rank 1 never reached the save ({self.marker} not written)")
            time.sleep(0.05)
        time.sleep(self.delay)
        os.kill(os.getpid(), self.signal)


class DiskFullAfter(pl.Callback):
    """Lowers the process's file size limit to ``limit_bytes`` once ``epoch``'s training batches have ended (Lightning
    runs the checkpoint callbacks' end-of-epoch saves after this one): every later write past that size fails, as
    on a disk that filled up."""

    def __init__(self, epoch: int, limit_bytes: int = 1000) -> None:
        self.epoch, self.limit_bytes = epoch, limit_bytes

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


class RaiseOSErrorAt(pl.Callback):
    """Raises ``OSError(errno_name)`` at the start of training batch ``batch`` of epoch 0, as a failing disk or a
    full process table (EIO, ENOMEM) would."""

    def __init__(self, batch: int, errno_name: str = "EIO") -> None:
        self.batch, self.errno_name = batch, errno_name

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == self.batch:
            import errno

            code = getattr(errno, self.errno_name)
            raise OSError(code, os.strerror(code))

