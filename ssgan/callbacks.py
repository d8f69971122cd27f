"""Callbacks used by the training task."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytorch_lightning as pl


class SpeedMonitor(pl.Callback):
    """Measures the wall time of each training epoch and of each training iteration (batch).

    Logs ``time/epoch_seconds`` and ``time/iteration_ms`` (the epoch's median) once per epoch;
    ``summary()`` gives the means over the run for ``metrics.json``.
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.iteration_ms: list[float] = []
        self._epoch_start = self._batch_start = self._last_batch_end = 0.0
        self._epoch_iterations: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start, self._epoch_iterations = time.perf_counter(), []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._last_batch_end = time.perf_counter()
        self._epoch_iterations.append(1000.0 * (self._last_batch_end - self._batch_start))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning calls this after the epoch's validation: stop the clock at the last batch instead,
        # so the epoch time is the training pass alone (data, steps and logging).
        seconds = self._last_batch_end - self._epoch_start
        self.epoch_seconds.append(seconds)
        if self._epoch_iterations:
            median_ms = statistics.median(self._epoch_iterations)
            self.iteration_ms.append(median_ms)
            pl_module.log_dict({"time/epoch_seconds": seconds, "time/iteration_ms": median_ms}, on_epoch=True)

    def summary(self) -> dict[str, float | None]:
        """Mean epoch seconds and mean of the per-epoch median iteration times, over the run."""
        return {
            "epoch_seconds": round(statistics.mean(self.epoch_seconds), 3) if self.epoch_seconds else None,
            "iteration_ms": round(statistics.mean(self.iteration_ms), 3) if self.iteration_ms else None,
        }
