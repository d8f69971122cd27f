"""The training callbacks: checkpoints every epoch and at odd step counts, epoch times without
validation, sample grids at an early end, and no leftovers of a killed save."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ssgan import callbacks
from ssgan.train import train

TINY = ("data.num_labeled=20", "trainer.enable_progress_bar=false", "logger=csv", "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1")


def test_a_run_stopped_between_validations_keeps_its_epoch_its_grid_and_untested_metrics(compose_cfg) -> None:
    # validation every 2nd epoch, and max_steps (2 a batch) stops the run after epoch 0, which has none
    cfg = compose_cfg(*TINY, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2", "+trainer.max_steps=2",
                      "+trainer.limit_test_batches=0")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 0 and last["global_step"] == 2  # saved at the epoch's end, with no validation in it
    assert last["callbacks"]["SpeedMonitor"]["epoch_seconds"]  # after the epoch's timing, not before it
    assert [p.name for p in (run / "samples").glob("*.png")] == ["epoch_0000.png"]  # the grid of the early end
    assert metrics["status"] == "ok" and metrics["test/acc"] is None  # limit_test_batches=0 tests nothing
    assert json.loads((run / "metrics.json").read_text())["status"] == "ok"


def test_an_odd_step_count_saves_after_each_batch_that_reaches_a_multiple(compose_cfg) -> None:
    cfg = compose_cfg(*TINY, "trainer.max_epochs=1", "trainer.limit_train_batches=5", "callbacks.sample_grid=null",
                      "callbacks.mid_epoch_checkpoint.every_n_train_steps=3",
                      "callbacks.mid_epoch_checkpoint.filename='mid-{step}'", "callbacks.mid_epoch_checkpoint.save_top_k=-1")
    train(cfg)
    saved = sorted(p.name for p in (Path(cfg.paths.output_dir) / "checkpoints").glob("mid-*.ckpt"))
    # batches end at steps 2, 4, 6, 8, 10: 4 passes 3, 6 reaches 6, 10 passes 9 but is the epoch's last batch
    assert saved == ["mid-step=4.ckpt", "mid-step=6.ckpt"]  # step divisible by 3 alone: only 6


def test_the_epoch_time_leaves_out_a_mid_epoch_validation(monkeypatch) -> None:
    clock = iter([0.0, 0.0, 1.0, 1.0, 11.0, 11.0, 12.0, 12.0, 20.0])  # seconds at each hook below
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    monitor = callbacks.SpeedMonitor()
    trainer = SimpleNamespace(num_training_batches=2, world_size=1)
    module = SimpleNamespace(log_dict=lambda *args, **kwargs: None)
    monitor.on_train_epoch_start(trainer, module)                # 0
    monitor.on_train_batch_start(trainer, module, None, 0)       # 0
    monitor.on_train_batch_end(trainer, module, None, None, 0)   # 1
    monitor.on_validation_start(trainer, module)                 # 1: val_check_interval=0.5
    monitor.on_validation_end(trainer, module)                   # 11
    monitor.on_train_batch_start(trainer, module, None, 1)       # 11
    monitor.on_train_batch_end(trainer, module, None, None, 1)   # 12
    monitor.on_validation_start(trainer, module)                 # 12: the epoch's end
    monitor.on_validation_end(trainer, module)                   # 20
    monitor.on_train_epoch_end(trainer, module)
    assert monitor.epoch_seconds == [2.0] and monitor.iteration_ms == [1000.0]


def test_the_iteration_time_weighs_each_epoch_by_its_iterations(monkeypatch) -> None:
    # a 1-batch epoch that max_time cut (one slow first iteration) weighed as much as a whole epoch: 643 ms
    # was reported where every whole epoch's median was 70 ms
    monitor = callbacks.SpeedMonitor()
    trainer = SimpleNamespace(num_training_batches=9, world_size=1)
    module = SimpleNamespace(log_dict=lambda *args, **kwargs: None)
    for batch_ms in ([70.0] * 9, [1216.0]):  # a whole epoch, then one batch of the next
        clock = iter([t / 1000 for start in range(len(batch_ms)) for t in (start * 10000.0, start * 10000.0 + batch_ms[start])])
        monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
        monitor._epoch_start = 0.0
        for index in range(len(batch_ms)):
            monitor.on_train_batch_start(trainer, module, None, index)
            monitor.on_train_batch_end(trainer, module, None, None, index)
        monitor.on_train_epoch_end(trainer, module)
    assert monitor.iteration_ms == pytest.approx([70.0, 1216.0]) and monitor.iteration_counts == [9, 1]
    assert monitor.summary()["iteration_ms"] == pytest.approx((9 * 70.0 + 1216.0) / 10, abs=1e-3)
    # the state a resume restores carries the counts; one from before them is averaged as it was
    restored = callbacks.SpeedMonitor()
    restored.load_state_dict({**monitor.state_dict(), "iteration_counts": []})
    assert restored.summary()["iteration_ms"] == pytest.approx((70.0 + 1216.0) / 2, abs=1e-3)
    # and once the resumed run has counted an epoch, the old epochs weigh as much as that one (not the whole
    # run unweighted again)
    restored.iteration_ms.append(100.0)
    restored.iteration_counts.append(9)
    assert restored.summary()["iteration_ms"] == pytest.approx((70.0 + 1216.0 + 100.0) / 3, abs=1e-3)
    restored.iteration_ms.append(1000.0)
    restored.iteration_counts.append(1)  # a cut epoch of the resumed run still counts by its share
    assert restored.summary()["iteration_ms"] == pytest.approx((5 * (70.0 + 1216.0) + 9 * 100.0 + 1000.0) / 20, abs=1e-3)


def test_a_save_removes_what_a_killed_save_of_the_same_file_left(tmp_path) -> None:
    leftover = tmp_path / ".last.q5mvxea6.tmp.ckpt"  # atomic_write's name for a save of last.ckpt
    other = tmp_path / ".best.abcdefgh.tmp.ckpt"
    leftover.write_bytes(b"half a checkpoint")
    other.write_bytes(b"another file's save, maybe in progress")
    callbacks.AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    assert not leftover.exists() and other.exists()
    assert torch.load(tmp_path / "last.ckpt", weights_only=True) == {"step": 1}


def test_the_confusion_matrix_of_many_classes_keeps_its_size_and_the_plot_backend(tmp_path: Path) -> None:
    import matplotlib
    from PIL import Image

    from ssgan.plots import MAX_LABELED_CLASSES, save_confusion_matrix

    backend = matplotlib.get_backend()
    save_confusion_matrix(torch.eye(200, dtype=torch.long), [f"class {i}" for i in range(200)], tmp_path / "many.png")
    save_confusion_matrix(torch.eye(3, dtype=torch.long), ["a", "b", "c"], tmp_path / "few.png")
    width, height = Image.open(tmp_path / "many.png").size
    # as large as the figure of MAX_LABELED_CLASSES classes at 100 dpi, not 0.55 inch a class
    assert width <= 100 * (0.55 * MAX_LABELED_CLASSES + 3) + 1 and height <= 100 * (0.55 * MAX_LABELED_CLASSES + 2) + 1
    assert Image.open(tmp_path / "few.png").size == (500, 400)
    assert matplotlib.get_backend() == backend  # no pyplot: a notebook's backend is left as it was


def test_an_image_grid_of_no_images_is_refused(tmp_path: Path) -> None:
    from ssgan.plots import save_image_grid

    with pytest.raises(ValueError, match="at least one image"):
        save_image_grid(torch.zeros(0, 1, 8, 8), tmp_path / "none.png")
    assert not list(tmp_path.iterdir())


def test_the_tensorboard_sample_grid_is_laid_out_as_the_png(tmp_path: Path) -> None:
    from PIL import Image

    added = []
    experiment = SimpleNamespace(add_image=lambda tag, grid, step: added.append(grid))
    trainer = SimpleNamespace(sanity_checking=False, fast_dev_run=False, global_step=3, log_dir=str(tmp_path),
                              default_root_dir=str(tmp_path), is_global_zero=True,
                              loggers=[SimpleNamespace(experiment=experiment)])
    module = SimpleNamespace(sample=lambda count, seed: torch.rand(count, 1, 8, 8))
    callbacks.SampleGrid(num_images=6)._write(trainer, module, epoch=0)  # 6 images: 3 a row, 2 rows
    (grid,) = added
    png = Image.open(tmp_path / "samples" / "epoch_0000.png")
    assert png.size == (grid.shape[2], grid.shape[1])


def test_a_class_name_the_plot_font_lacks_is_one_warning_not_matplotlibs_per_glyph(tmp_path, caplog, recwarn) -> None:
    # a CJK class name gave matplotlib's warning for each character, several lines each
    import logging

    from ssgan.plots import save_confusion_matrix

    with caplog.at_level(logging.WARNING, logger="ssgan.plots"):
        # private-use characters: no font has them, whatever fonts the machine holds
        save_confusion_matrix(torch.eye(3) * 5, ["\ue000", "\ue001", "bird"], tmp_path / "confusion_matrix.png")
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [record.getMessage() for record in caplog.records] == [
        "confusion_matrix.png: the plot's font has no glyph for \ue000, \ue001 in the class names; they show as boxes there"]
    assert not [warning for warning in recwarn if "missing from" in str(warning.message)]
