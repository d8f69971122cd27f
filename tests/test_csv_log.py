"""ssgan's CSV logger: Lightning's files, never half-written."""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import pytest
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger

from ssgan.csv_log import CSVLogger

# a run's logging: train rows, then a validation column, then the test's columns (each new column rewrites the file)
STEPS = [({"train/loss": 0.5, "epoch": 0}, 9), ({"train/loss": 0.4, "val/acc": 0.7, "epoch": 0}, 9),
         ({"train/loss": 0.3, "epoch": 1}, 19), ({"test/acc": 0.8, "test/error": 0.2}, 19)]


def _log(logger, steps) -> None:
    logger.log_hyperparams({"lr": 0.003, "arch": "mlp"})
    for metrics, step in steps:
        logger.log_metrics(metrics, step)
        logger.save()


def test_the_files_are_lightnings(tmp_path: Path) -> None:
    ours, lightnings = CSVLogger(tmp_path, name="ours", version=""), LightningCSVLogger(tmp_path, name="theirs", version="")
    _log(ours, STEPS)
    _log(lightnings, STEPS)
    for name in ("metrics.csv", "hparams.yaml"):
        assert (tmp_path / "ours" / name).read_text() == (tmp_path / "theirs" / name).read_text()
    assert not [path.name for path in (tmp_path / "ours").iterdir() if path.name.startswith(".")]  # no temporaries


def test_a_disk_that_fills_up_as_a_new_column_is_saved_keeps_the_earlier_rows(tmp_path: Path, monkeypatch) -> None:
    logger = CSVLogger(tmp_path, name="csv", version="")
    _log(logger, STEPS[:1])
    path = tmp_path / "csv" / "metrics.csv"
    before = path.read_text()

    def disk_full(self, rows) -> None:  # the header went out, then the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", disk_full)
    logger.log_metrics(*STEPS[1])
    with pytest.raises(OSError):
        logger.save()  # Lightning's writer had rewritten the file in place: only its header was left
    assert path.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["hparams.yaml", "metrics.csv"]  # no temporary left
    monkeypatch.undo()
    logger.save()  # the rows kept for the next save are written once there is room again
    rows = list(csv.DictReader(path.open(newline="")))
    assert [row["train/loss"] for row in rows] == ["0.5", "0.4"] and rows[1]["val/acc"] == "0.7"


def test_rows_under_the_same_columns_are_appended_and_a_failed_append_is_taken_back(tmp_path: Path, monkeypatch) -> None:
    # a rewrite of the whole file at every save grew with the log (quadratic over a run that logs every step)
    logger = CSVLogger(tmp_path, name="csv", version="")
    _log(logger, STEPS[:2])
    path = tmp_path / "csv" / "metrics.csv"
    inode, before = path.stat().st_ino, path.read_text()
    logger.log_metrics({"train/loss": 0.35, "val/acc": 0.72, "epoch": 1}, 14)
    logger.save()
    assert path.stat().st_ino == inode and path.read_text().startswith(before)  # appended in place
    appended = path.read_text()

    def half_then_full(self, rows) -> None:  # part of a row reached the disk, then it filled up
        self.writer.writerow(["0.3"])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", half_then_full)
    logger.log_metrics(*STEPS[2])
    with pytest.raises(OSError):
        logger.save()
    assert path.read_text() == appended  # the half row taken back


def test_rows_written_before_the_logger_keep_their_columns(tmp_path: Path) -> None:
    # a resume writes the rows from before its checkpoint first (ssgan.train._start_curves)
    logger = CSVLogger(tmp_path, name="csv", version="")
    experiment = logger.experiment
    path = tmp_path / "csv" / "metrics.csv"
    path.write_text("epoch,step,val/acc\n0,9,0.7\n")
    logger.log_metrics({"train/loss": 0.3, "epoch": 1}, 19)
    logger.save()
    assert experiment.metrics_keys == ["epoch", "step", "train/loss", "val/acc"]
    assert path.read_text().splitlines() == ["epoch,step,train/loss,val/acc", "0,9,,0.7", "1,19,0.3,"]


def test_a_remote_save_dir_keeps_lightnings_writer(tmp_path: Path, monkeypatch) -> None:
    # atomic_write renames local files: a memory:// or s3:// log was written to a local folder of that name
    monkeypatch.chdir(tmp_path)
    logger = CSVLogger("memory://ssgan-test", name="csv", version="")
    _log(logger, STEPS)
    assert type(logger.experiment).__name__ == "ExperimentWriter" and not list(tmp_path.iterdir())
    assert logger._fs.exists("memory://ssgan-test/csv/metrics.csv")
    assert type(CSVLogger(tmp_path, name="local").experiment).__name__ == "AtomicExperimentWriter"
