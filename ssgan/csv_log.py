"""Lightning's CSV logger, with files that are never half-written.

Lightning's writer appends each batch of rows to ``metrics.csv`` and, when a new column appears (the
first validation, the test), rewrites the file in place: a disk that fills up at that moment empties it,
and one that fills up during an append leaves a row cut in two. This writer rewrites the file through
``atomic_write`` when its columns change, and otherwise appends, cutting the file back to its earlier
size if the append fails: the file holds either the rows before a save or those after it. ``hparams.yaml``
is replaced whole too.
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
        """Writes the rows logged since the last save after the file's earlier rows."""
        if not self.metrics:
            return
        path = Path(self.metrics_file_path)
        header = _header(path)  # None: no file yet
        # columns written before this writer (a resume's earlier rows, see ssgan.train._start_curves) stay
        self.metrics_keys.extend(key for key in header or [] if key not in self.metrics_keys)
        self._record_new_keys()  # adds this save's new columns and sorts them, as Lightning's writer does
        if header == self.metrics_keys:  # the same columns: an append, taken back whole if it fails
            size = path.stat().st_size
            try:
                with open(path, "a", newline="") as handle:
                    csv.DictWriter(handle, fieldnames=self.metrics_keys).writerows(self.metrics)
            except BaseException:
                os.truncate(path, size)  # shrinking needs no room on a full disk
                raise
        else:  # a new header: the earlier rows under it, in a new file that replaces the old one whole
            earlier: list[dict[str, str]] = []
            if header is not None:
                with open(path, newline="") as handle:
                    earlier = list(csv.DictReader(handle))
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


def _header(path: Path) -> list[str] | None:
    """The columns of the CSV file at ``path``; None if there is no file."""
    try:
        with open(path, newline="") as handle:
            return next(csv.reader(handle), [])
    except FileNotFoundError:
        return None


class CSVLogger(LightningCSVLogger):
    """Lightning's ``CSVLogger`` (same arguments, same files), writing them through ``AtomicExperimentWriter``."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The writer of ``metrics.csv`` and ``hparams.yaml``, made on first use (rank zero only): Lightning's own
        for a remote ``save_dir`` (``s3://...``), which has no rename to replace a file whole."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            protocols = self._fs.protocol if isinstance(self._fs.protocol, (tuple, list)) else (self._fs.protocol,)
            writer = AtomicExperimentWriter if "file" in protocols else ExperimentWriter
            self._experiment = writer(log_dir=self.log_dir)
        return self._experiment
