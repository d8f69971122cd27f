"""Lightning's CSV logger, with files that are never half-written.

Lightning's writer appends each batch of rows to ``metrics.csv`` and, when a new column appears (the
first validation, the test), rewrites the file in place: a disk that fills up at that moment empties it,
and one that fills up during an append leaves a row cut in two. This writer saves the whole file through
``atomic_write`` each time (the file holds one row per logged step: kilobytes), so it holds either the
rows before the save or those after it; ``hparams.yaml`` likewise.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from ssgan.atomic import atomic_write


class AtomicExperimentWriter(ExperimentWriter):
    """Lightning's ``ExperimentWriter`` whose ``metrics.csv`` and ``hparams.yaml`` are replaced whole on each save."""

    def save(self) -> None:
        """Writes the rows logged since the last save after the file's earlier rows, as one new file."""
        if not self.metrics:
            return
        path = Path(self.metrics_file_path)
        earlier: list[dict[str, str]] = []
        if path.is_file():
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                earlier = list(reader)
                # columns written before this writer (a resume's earlier rows) stay in the header
                self.metrics_keys.extend(key for key in reader.fieldnames or [] if key not in self.metrics_keys)
        self._record_new_keys()  # adds this save's new columns and sorts them, as Lightning's writer does
        rows = earlier + self.metrics

        def write(temporary: Path) -> None:
            with open(temporary, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)

        atomic_write(path, write)
        self.metrics = []

    def log_hparams(self, params: dict[str, Any]) -> None:
        """Records hyperparameters into ``hparams.yaml``, replaced whole."""
        self.hparams.update(params)
        atomic_write(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE),
                     lambda temporary: save_hparams_to_yaml(temporary, self.hparams))


class CSVLogger(LightningCSVLogger):
    """Lightning's ``CSVLogger`` (same arguments, same files), writing them through ``AtomicExperimentWriter``."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AtomicExperimentWriter:
        """The writer of ``metrics.csv`` and ``hparams.yaml``, made on first use (rank zero only)."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AtomicExperimentWriter(log_dir=self.log_dir)
        return self._experiment
