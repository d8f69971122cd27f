"""Callbacks used by the training task."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ssgan.atomic import atomic_write, remove_stale_temporaries
from ssgan.errors import UserError

log = logging.getLogger(__name__)


def last_epoch_fraction(trainer: pl.Trainer) -> float:
    """The fraction of the current (or last) training epoch's batches that ran: 1.0 for an epoch that ran to
    its end, less where ``trainer.max_steps`` or ``trainer.max_time`` stopped the fit inside it (Lightning
    then ends that epoch all the same: its end-of-epoch hooks run, and ``current_epoch`` counts it)."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    batches = trainer.num_training_batches
    if progress.is_last_batch or not 0 < batches < float("inf") or progress.current.ready >= batches:
        return 1.0
    return progress.current.completed / batches


class SpeedMonitor(pl.Callback):
    """Measures the wall time of each training epoch and of each training iteration (batch).

    Logs ``time/epoch_seconds`` and ``time/iteration_ms`` (the epoch's median) once per epoch;
    ``summary()`` gives the means over the run for ``metrics.json``. An epoch that this process ran
    only part of (a run resumed mid-epoch) gives its iteration times but no epoch time.

    The epoch time is the training pass alone: validation, also a mid-epoch one
    (``trainer.val_check_interval``), is left out; a mid-epoch checkpoint's save is counted in.

    Its state goes into each checkpoint: the times so far and the seconds spent fitting up to the
    save. A resumed run's figures (``earlier_seconds`` included) therefore cover the whole run, not
    only the resumed process.
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.iteration_ms: list[float] = []  # each epoch's median
        self.iteration_counts: list[int] = []  # the iterations behind each median (an epoch cut or resumed has fewer)
        self.earlier_seconds = 0.0  # seconds spent fitting before this process, up to its checkpoint
        self._fit_start: float | None = None
        self._epoch_start: float | None = None
        self._batch_start = self._last_batch_end = 0.0
        self._epoch_iterations: list[float] = []
        self._validation_start: float | None = None
        self._epoch_validations: list[tuple[float, float]] = []  # (start, end) of the epoch's validation passes

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._fit_start = time.perf_counter()

    def seconds_fitting(self) -> float | None:
        """Seconds spent fitting since fit's setup (under DDP, once every rank has started), those of the
        resumed checkpoint's processes included; None before fit's setup."""
        if self._fit_start is None:
            return None
        return self.earlier_seconds + time.perf_counter() - self._fit_start

    def state_dict(self) -> dict[str, Any]:
        fitting = self.seconds_fitting()
        return {"train_seconds": self.earlier_seconds if fitting is None else fitting,
                "epoch_seconds": list(self.epoch_seconds), "iteration_ms": list(self.iteration_ms),
                "iteration_counts": list(self.iteration_counts)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier_seconds = float(state_dict.get("train_seconds", 0.0))
        self.epoch_seconds = [float(value) for value in state_dict.get("epoch_seconds", [])]
        self.iteration_ms = [float(value) for value in state_dict.get("iteration_ms", [])]
        self.iteration_counts = [int(value) for value in state_dict.get("iteration_counts", [])]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start, self._epoch_iterations, self._epoch_validations = time.perf_counter(), [], []

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validation_start is not None and self._epoch_start is not None:
            self._epoch_validations.append((self._validation_start, time.perf_counter()))
        self._validation_start = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._last_batch_end = time.perf_counter()
        self._epoch_iterations.append(1000.0 * (self._last_batch_end - self._batch_start))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        timed: dict[str, float] = {}
        # Whole epochs only: a resumed epoch's remaining batches are not an epoch's time.
        if self._epoch_start is not None and len(self._epoch_iterations) >= trainer.num_training_batches:
            # Lightning calls this after the epoch's validation: stop the clock at the last batch
            # instead, and take out the validations between batches (val_check_interval < 1), so the
            # epoch time is the training pass alone (data, steps and logging).
            between_batches = sum(end - start for start, end in self._epoch_validations if end <= self._last_batch_end)
            timed["time/epoch_seconds"] = self._last_batch_end - self._epoch_start - between_batches
            self.epoch_seconds.append(timed["time/epoch_seconds"])
        if self._epoch_iterations:
            timed["time/iteration_ms"] = statistics.median(self._epoch_iterations)
            self.iteration_ms.append(timed["time/iteration_ms"])
            self.iteration_counts.append(len(self._epoch_iterations))
        if timed:
            pl_module.log_dict(timed, on_epoch=True, sync_dist=trainer.world_size > 1)
        self._epoch_start, self._epoch_iterations, self._epoch_validations = None, [], []

    def summary(self) -> dict[str, float | None]:
        """Mean epoch seconds, and the mean of the per-epoch median iteration times weighted by each epoch's
        iterations (an epoch that a stop cut short, or the part of it that a resume ran, counts by its
        share), over the run."""
        iteration_ms = None
        if self.iteration_ms:
            counts = self.iteration_counts[-len(self.iteration_ms):]
            missing = len(self.iteration_ms) - len(counts)  # the epochs of a checkpoint of an ssgan that kept no counts
            counts = [statistics.median(counts) if counts else 1] * missing + counts
            iteration_ms = round(sum(m * n for m, n in zip(self.iteration_ms, counts)) / sum(counts), 3)
        return {
            "epoch_seconds": round(statistics.mean(self.epoch_seconds), 3) if self.epoch_seconds else None,
            "iteration_ms": iteration_ms,
        }


class MidEpochCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` for saves every ``every_n_train_steps`` optimizer steps, except on an
    epoch's last batch.

    Lightning counts a checkpoint of the last batch as the epoch's end: a run killed after it, while it
    validates, would resume in the next epoch and skip that epoch's validation and epoch-end work
    (the self-training round boundary, the learning-rate step). The end-of-epoch save follows anyway.
    The checkpoint holds the weights after the batch's steps: a resume goes on with the next batch.

    The save comes at the end of the first batch that reaches each multiple of ``every_n_train_steps``:
    SSGAN takes two optimizer steps a batch, so Lightning's own test (the step count divisible by N)
    would skip every multiple of an odd N that falls between a batch's two steps.
    """

    def __init__(self, *args: Any, every_n_train_steps: int | None = None, every_n_epochs: int | None = None,
                 **kwargs: Any) -> None:
        for name, value in (("every_n_train_steps", every_n_train_steps), ("every_n_epochs", every_n_epochs)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise UserError(f"the mid-epoch checkpoint's {name}={value!r} is not a count; use 0 (off) or a whole "
                                f"number, e.g. callbacks.mid_epoch_checkpoint.every_n_train_steps=1000")
        if kwargs.get("train_time_interval") is not None:  # its save would come from Lightning's own test, which this one replaces
            raise UserError("the mid-epoch checkpoint saves by optimizer steps, not by time; set "
                            "callbacks.mid_epoch_checkpoint.every_n_train_steps (e.g. =1000) instead of train_time_interval")
        if every_n_train_steps and every_n_epochs:
            raise UserError(f"the mid-epoch checkpoint has every_n_train_steps={every_n_train_steps} and every_n_epochs="
                            f"{every_n_epochs}; set one of them (the end-of-epoch last.ckpt is saved anyway), e.g. "
                            "callbacks.mid_epoch_checkpoint.every_n_epochs=0")
        super().__init__(*args, every_n_train_steps=every_n_train_steps, every_n_epochs=every_n_epochs, **kwargs)
        self._steps_before_batch = 0
        self._configured_every_n_train_steps = self._every_n_train_steps

    @property
    def state_key(self) -> str:
        # the configured step count, not the 1 that a save sets for a moment below: the checkpoint's
        # state of this callback must be found again under the same key by a resume with the same settings
        return self._generate_state_key(monitor=self.monitor, mode=self.mode,
                                        every_n_train_steps=self._configured_every_n_train_steps,
                                        every_n_epochs=self._every_n_epochs, train_time_interval=self._train_time_interval)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._steps_before_batch = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        every = self._every_n_train_steps
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or every < 1:
            return
        if trainer.global_step // every == self._steps_before_batch // every:  # no multiple of N reached in this batch
            return
        with warnings.catch_warnings():
            # Lightning's advice to save the weights from before the step: a resume goes on after the
            # batch, so the weights after it are the right ones
            warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
            self._every_n_train_steps = 1  # Lightning's test (step divisible by N) passes: this batch saves
            try:
                super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            finally:
                self._every_n_train_steps = every


class SampleGrid(pl.Callback):
    """Writes a grid of generator samples every ``every_n_epochs`` epochs, to a PNG file and to TensorBoard.

    Files are ``{dirpath}/epoch_{epoch:04d}.png`` (by default ``samples/`` in the trainer's log folder,
    e.g. ``lightning_logs/version_N``); the TensorBoard image is ``samples`` (if a
    TensorBoard logger is configured). The same latent vectors (``seed``) are used every time, so
    the grids show how the generator changes. Models without a generator are skipped.
    """

    def __init__(self, dirpath: str | None = None, every_n_epochs: int = 5, num_images: int = 100, seed: int = 0) -> None:
        if every_n_epochs < 1 or num_images < 1:
            raise UserError(f"the sample grid needs every_n_epochs and num_images of at least 1 (got {every_n_epochs} and "
                            f"{num_images}); e.g. callbacks.sample_grid.every_n_epochs=5, or callbacks.sample_grid=null for none")
        self.dirpath, self.every_n_epochs, self.num_images, self.seed = dirpath, every_n_epochs, num_images, seed
        self._written_at_step: int | None = None  # the global step of the last grid
        self._trained_epoch: int | None = None  # the epoch of the last training batch

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch, max_epochs = trainer.current_epoch, trainer.max_epochs
        is_last = max_epochs is not None and max_epochs > 0 and epoch + 1 >= max_epochs  # -1: no last epoch known
        if (epoch + 1) % self.every_n_epochs and not is_last:
            return
        self._write(trainer, pl_module, epoch)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any) -> None:
        self._trained_epoch = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a run that stopped before its last epoch's end (max_steps, early stopping) gets its final grid too,
        # named after the epoch it stopped in (current_epoch has moved on when that epoch was complete)
        if trainer.global_step != self._written_at_step and self._trained_epoch is not None:
            self._write(trainer, pl_module, self._trained_epoch)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        if not hasattr(pl_module, "sample") or trainer.sanity_checking:
            return
        if trainer.fast_dev_run and not self.dirpath:  # it writes no logs or checkpoints: nor a grid into the working folder
            return
        self._written_at_step = trainer.global_step
        # on every rank: under DDP, trainer.log_dir is a broadcast, which rank 0 alone would wait in forever
        folder = Path(self.dirpath) if self.dirpath else Path(trainer.log_dir or trainer.default_root_dir) / "samples"
        if not trainer.is_global_zero:
            return
        from ssgan.plots import grid_row_length, save_image_grid
        from torchvision.utils import make_grid

        images = pl_module.sample(self.num_images, seed=self.seed)  # (N, C, H, W) in [0, 1]
        save_picture(lambda path: save_image_grid(images.cpu(), path), folder / f"epoch_{epoch:04d}.png")
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard's SummaryWriter
                # laid out as the PNG is
                experiment.add_image("samples", make_grid(images.cpu(), nrow=grid_row_length(len(images))), epoch)


class ConfusionMatrixPlot(pl.Callback):
    """Draws the last test's confusion matrix (with counts) to ``{dirpath}/confusion_matrix.png``.

    ``dirpath`` defaults to the trainer's log folder (e.g. ``lightning_logs/version_N``).
    """

    def __init__(self, dirpath: str | None = None, filename: str = "confusion_matrix.png") -> None:
        self.dirpath, self.filename = dirpath, filename

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        confusion = getattr(pl_module, "test_confusion_matrix", None)
        if confusion is None or (trainer.fast_dev_run and not self.dirpath):  # as SampleGrid: no file in the working folder
            return
        # on every rank: under DDP, trainer.log_dir is a broadcast, which rank 0 alone would wait in forever
        folder = Path(self.dirpath or trainer.log_dir or trainer.default_root_dir)
        if not trainer.is_global_zero:
            return
        from ssgan.plots import save_confusion_matrix

        save_picture(lambda path: save_confusion_matrix(confusion, pl_module.class_names, path), folder / self.filename)


def save_picture(save: Callable[[Path], None], path: Path) -> None:
    """``save(path)``, where a picture that cannot be written (a full disk) is a warning: it must not stop the
    training, nor discard the test result it shows."""
    try:
        save(path)
    except OSError as error:
        log.warning("could not write %s (%s); going on without it", path, error.strerror or error)


class KeepBestAcrossFolders(pl.Callback):
    """A resume into another folder than the checkpoint's (a new ``hydra.run.dir``, a moved run, a new
    ``version_N`` of ``ssgan-cli``) keeps the run's best checkpoint and its score.

    Lightning reloads a ``ModelCheckpoint``'s best score only where its folder is unchanged, and otherwise
    keeps only ``best_model_path``, which points into the old folder: the first validation after the resume
    would become ``best.ckpt``, ``best_epoch`` and ``test_ckpt=best`` would name the wrong epoch, and a
    deleted old folder stopped the run at its end. Here the kept checkpoints are copied into this run's
    folder (the old folder is only read) and the score goes on from them; where the old best file is gone,
    best.ckpt counts from the resumed epoch on, with a warning.
    """

    def __init__(self) -> None:
        self._saved: dict[str, Any] = {}  # the callbacks' states of the checkpoint Lightning is restoring
        self._copies: list[str] = []  # the files copied into this run's folder

    def discard_copies(self) -> None:
        """Removes the copies (and a checkpoints folder they alone were in): for a start that failed."""
        for path in self._copies:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            with contextlib.suppress(OSError):  # one that holds other files is kept
                os.rmdir(os.path.dirname(path))
        self._copies = []

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        # called before the callbacks load their states (which drop a moved folder's best score), from the
        # checkpoint Lightning has read already
        self._saved = checkpoint.get("callbacks") or {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        saved, self._saved = self._saved, {}
        for callback in trainer.checkpoint_callbacks:
            state = saved.get(callback.state_key) if isinstance(callback, ModelCheckpoint) else None
            if state and callback.monitor and callback.dirpath and state.get("dirpath"):
                self._carry_over(trainer, callback, state)

    def _carry_over(self, trainer: pl.Trainer, callback: ModelCheckpoint, state: dict[str, Any]) -> None:
        old_dir, new_dir = os.path.abspath(state["dirpath"]), os.path.abspath(callback.dirpath)
        if old_dir == new_dir:  # Lightning restored it all
            return
        found_dir = old_dir  # where the run's checkpoints are now
        resumed = str(trainer.ckpt_path or "")
        if os.path.isfile(resumed):
            beside = os.path.dirname(os.path.abspath(resumed))
            if os.path.basename(beside) == os.path.basename(old_dir):  # the run's folder has moved (its old place
                found_dir = beside                                        # may hold another run now)

        def here(path: str, folder: str = new_dir) -> str:  # a kept file's place in this run's folder (or ``folder``)
            return os.path.join(folder, os.path.relpath(os.path.abspath(path), old_dir)) if path else ""

        kept: dict[str, Any] = {}
        if trainer.is_global_zero:
            os.makedirs(new_dir, exist_ok=True)
        for path, score in (state.get("best_k_models") or {}).items():
            target = here(path)
            # beside the resumed checkpoint, else where the state says (a copied last.ckpt)
            source = next((place for place in (here(path, found_dir), path) if os.path.isfile(place)), None)
            if trainer.is_global_zero and not os.path.isfile(target) and source is not None:
                atomic_write(Path(target), lambda temporary, source=source: shutil.copyfile(source, temporary))
                self._copies.append(target)
            kept[target] = score
        trainer.strategy.barrier("ssgan_keep_best")
        kept = {path: score for path, score in kept.items() if os.path.isfile(path)}
        best = here(state.get("best_model_path") or "")
        if best not in kept:
            log.warning("the best checkpoint of the resumed run (%s) is gone: best.ckpt counts from the resumed epoch "
                        "on", state.get("best_model_path"))
            callback.best_model_path, callback.best_model_score, callback.best_k_models = "", None, {}
            callback.kth_best_model_path = ""
            return
        callback.best_k_models = kept
        callback.best_model_path, callback.best_model_score = best, state.get("best_model_score")
        kth = here(state.get("kth_best_model_path") or "")
        callback.kth_best_model_path = kth if kth in kept else best
        callback.kth_value = state.get("kth_value", callback.kth_value)
        log.info("resumed into %s: the run's best checkpoint so far (%s=%s) is kept as %s", new_dir, callback.monitor,
                 f"{float(callback.best_model_score):.4g}" if callback.best_model_score is not None else "?", best)


class SyncedSigterm(pl.Callback):
    """Stops a run on SIGTERM: under DDP every rank after the same training batch, with no collective in the handler.

    Lightning's SIGTERM handler (pytorch-lightning 2.6) broadcasts from inside the handler. When the
    signal lands while rank 0 writes a checkpoint and the other ranks wait in the save's barrier, the
    broadcast and the barrier never match and every rank hangs. Here the handler only records the
    signal and passes it on to the ranks Lightning launched, as Lightning's does; after each training
    batch (every rank runs the same number) the ranks all-reduce the record (max), so all of them stop
    after the same batch through Lightning's own SIGTERM exit. A signal that lands after the last
    training batch lets the run finish (validation and test batches may differ in number between
    ranks, so they are not synced). In one process Lightning's handler is left as it is.

    In one process, Lightning's prediction loop never looks at the signal (its validation and test
    loops do), so a SIGTERM would let ``predict`` run on to its end: here it stops after the current
    batch, as they do. Under DDP prediction runs on to its end: its ranks may hold different numbers of
    batches, so they could not stop together.
    """

    def __init__(self) -> None:
        self._trainer: pl.Trainer | None = None
        self.received = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.world_size > 1:
            self._trainer = trainer
            # the connector builds its handler from this attribute when it registers it, after the callbacks' setup
            trainer._signal_connector._sigterm_notifier_fn = self._record

    def _record(self, signum: int, frame: Any) -> None:
        trainer = self._trainer
        log.info("[rank %d] received SIGTERM: every rank stops at the end of this or the next training batch",
                 trainer.global_rank)
        if not self.received and trainer.strategy.launcher is not None:
            trainer.strategy.launcher.kill(signum)  # the ranks this process started: each records it too
        self.received = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any) -> None:
        if trainer.world_size <= 1:
            return
        received = torch.tensor([1.0 if self.received else 0.0], device=trainer.strategy.root_device)  # (1,)
        torch.distributed.all_reduce(received, op=torch.distributed.ReduceOp.MAX)
        if received.item() > 0:
            trainer._signal_connector.received_sigterm = True  # every rank at once: Lightning's loop stops here

    def on_predict_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.world_size > 1:  # a rank that stopped alone would leave the others waiting in a collective
            return
        # as the evaluation loop does: after the last batch the run ends by itself, with all its predictions
        if trainer.received_sigterm and not trainer.predict_loop.batch_progress.is_last_batch:
            raise SIGTERMException


@contextlib.contextmanager
def ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored within the block and put back after: for an entry point's clean-up of a stopped run,
    which a second Ctrl-C must not cut short (Lightning ignores it during its own clean-up, then puts the
    handler back, before ours begins). Only the main thread may set handlers; one set outside Python
    (getsignal gives None) is left alone."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigterm_stops_outside_lightning() -> Iterator[None]:
    """Within the block, a SIGTERM that lands outside Lightning's fit, validate, test and predict (while the
    data are read, between fit and test) raises Lightning's ``SIGTERMException``, as a stop inside fit ends.

    Python's default handler would kill the process there, before the entry point could take the start
    back (an earlier run's record put back, a folder of Hydra's files alone removed) or say how to go on.
    Inside Lightning's stages its handler is in charge (it calls this one after its own, which then does
    nothing more), and so is the signal's own default between DDP's stages. A handler the program had set
    is still called first, as Lightning calls it.
    """
    # only the main thread may set handlers; a process started with SIGTERM ignored keeps ignoring it, and
    # a handler set outside Python (getsignal gives None) could not be put back
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)  # before the new one is set: it reads this
    if previous is None or previous is signal.SIG_IGN:
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        if signal.getsignal(signal.SIGTERM) is not stop:  # inside a Lightning stage
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # between DDP's stages the other ranks may wait for this one in a collective: a stop of this
            # rank alone would not end them either, so the signal ends the process as Python's default does
            if not callable(previous):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        raise SIGTERMException

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it and renames it into place.

    A run killed while saving (SIGKILL, a pre-empted node) leaves the previous checkpoint whole,
    never a truncated one; the next save of that checkpoint removes the killed save's temporary file.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        path = Path(path)
        remove_stale_temporaries(path, older_than=0)  # one writer per checkpoint: every leftover is a killed save's

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the rename makes it the checkpoint

        # a last.ckpt that is a link (Lightning's save_last="link") is replaced, never the checkpoint it names
        atomic_write(path, write, follow_symlinks=False)
