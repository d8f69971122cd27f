"""Shared fixtures: Hydra ``compose()`` configs and tiny data files in each real on-disk format."""

from __future__ import annotations

import contextlib
import faulthandler
import gzip
import importlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from ssgan.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:  # `make test` runs the tests in parallel workers
    # The workers share the cores: one thread each, here and in the processes a test starts. Two workers
    # of two threads each on 2 cores spin-wait on each other and run several times slower.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

TRAIN_PER_CLASS, TEST_PER_CLASS = 12, 3


class OwnCheckpoint(Checkpoint):
    """A user's checkpoint callback of Lightning's base class, not a ``ModelCheckpoint`` (``_target_: conftest.OwnCheckpoint``)."""


class CrashingCallback(Checkpoint):
    """A callback whose construction crashes (a bug in a user's class, not a checked setting): ``conftest.CrashingCallback``."""

    def __init__(self) -> None:
        raise RuntimeError("a crash inside the callback's __init__")


class OptimizerStateMismatch(pl.Callback):
    """Fails a resumed fit as torch does when the checkpoint's optimizer state fits no parameter group of
    this run's optimizer: after ``on_fit_start``, before any batch (``conftest.OptimizerStateMismatch``)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group")


def _fixture_images(rng: np.random.Generator, per_class: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(10), per_class)
    images = rng.integers(0, 256, size=(len(labels), *shape), dtype=np.uint8)
    return images, labels


def write_idx(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` as a gzipped IDX file (MNIST's format: magic 0x0008 | ndim, big-endian dims)."""
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of the four Fashion-MNIST/MNIST IDX .gz files, as Debian installs them."""
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, per_class in (("train", TRAIN_PER_CLASS), ("t10k", TEST_PER_CLASS)):
        images, labels = _fixture_images(rng, per_class, (28, 28))
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cifar-10-batches-py`` with five tiny training batches and a test batch (python pickles)."""
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, per_class in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", TEST_PER_CLASS)]:
        images, labels = _fixture_images(rng, per_class, (3, 32, 32))
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": images.reshape(len(images), -1), "labels": labels.tolist()}, handle)
    return root


@pytest.fixture(scope="session")
def svhn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train_32x32.mat`` and ``test_32x32.mat`` with X (32, 32, 3, N) and y in 1..10 (10 is the digit 0)."""
    from scipy.io import savemat

    root = tmp_path_factory.mktemp("svhn")
    rng = np.random.default_rng(2)
    for name, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        images, labels = _fixture_images(rng, per_class, (32, 32, 3))
        labels = np.where(labels == 0, 10, labels)
        savemat(root / f"{name}_32x32.mat", {"X": np.moveaxis(images, 0, -1), "y": labels.reshape(-1, 1)})
    return root


@pytest.fixture()
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides)``: the training config as Hydra composes it, writing under ``tmp_path``."""

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


FAST = ("trainer.fast_dev_run=true", "trainer.enable_progress_bar=false", "logger=csv")


def _signals_as_a_shell_gives_them() -> None:
    """In the child before it starts Python: SIGINT and SIGTERM at their defaults (Python turns SIGINT into
    KeyboardInterrupt), and no signal blocked. A child inherits them from this worker, and a worker once ran
    a Ctrl-C test's child with SIGINT ignored: that run never saw its Ctrl-C and finished (exit 0, not 130)."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs ``python -m ssgan.train ARGS`` in ``cwd`` and returns the finished process (``env``: extra variables)."""
    env = {**os.environ, "SSGAN_CACHE_DIR": str(cwd / "cache"), "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ssgan.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_signals_as_a_shell_gives_them)


# Nets of a quarter of the reference MLPs' work, for tests of bookkeeping (resuming, DDP) rather than of learning.
SMALLER_D, SMALLER_G = "+model.net_kwargs.hidden=[250,125,125]", "+model.generator_kwargs.hidden=[128,128]"


def _run_ssgan_train() -> int:
    """Calls ``ssgan-train``'s ``main()`` with the present ``sys.argv``; returns the status its process would exit with."""
    from ssgan.train import main

    try:
        main()
    except SystemExit as exited:
        if exited.code is None or isinstance(exited.code, int):
            return exited.code or 0
        print(exited.code, file=sys.stderr)  # as the interpreter does with sys.exit("text")
        return 1
    return 0


def _as_a_new_process(stdout: int, stderr: int) -> None:
    """Makes a forked child of a pytest worker look like a new interpreter to the code it runs.

    It gets a process group of its own (the parent stops it with every process it starts), a new
    interpreter's signal handling, and its console output goes to the files ``stdout`` and ``stderr``.
    """
    os.setpgid(0, 0)
    faulthandler.disable()  # pytest's, which would write to the parent's stderr
    for number in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with contextlib.suppress(OSError, ValueError):  # the few that cannot be caught
            signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for ignored in (signal.SIGPIPE, signal.SIGXFSZ):  # as Python starts
        signal.signal(ignored, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    was_stdout = (sys.stdout, sys.__stdout__)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    sys.stdout, sys.stderr = (open(fd, "w", buffering=1, closefd=False) for fd in (1, 2))
    # the root's handlers are pytest's (Hydra sets the run's own); a library's console handler, such as
    # Lightning's, was bound to the stream pytest captured when the library was imported
    logging.getLogger().handlers.clear()
    for logger in logging.Logger.manager.loggerDict.values():
        for handler in getattr(logger, "handlers", []):
            if type(handler) is logging.StreamHandler:  # not a file's
                handler.setStream(sys.stdout if handler.stream in was_stdout else sys.stderr)
    warnings.simplefilter("ignore")  # as PYTHONWARNINGS=ignore
    # one thread: the same sums in every run; and an OpenMP pool the parent started is not used across the fork
    torch.set_num_threads(1)


def train_in_fork(*args: str, cwd: Path, env: dict[str, str] | None = None,
                  timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs ``ssgan-train ARGS`` in a forked child of this process; returns it as a finished process.

    The child is a process of its own (a test can kill it, and its exit status is real), but it skips
    the ~9 s in which a new interpreter imports torch, Lightning and torchmetrics (torchmetrics alone
    pulls in scipy, matplotlib and torchvision). It gets the environment ``run_cli`` gives, plus ``env``.
    What happens at interpreter exit only ``run_cli`` shows: the child ends with ``os._exit``.
    """
    importlib.import_module("ssgan.train")  # once, in this process, not in each child

    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:  # shared with the child
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: it never returns into pytest
            code = 1
            try:
                _as_a_new_process(stdout.fileno(), stderr.fileno())
                os.chdir(cwd)
                os.environ.update({"SSGAN_CACHE_DIR": str(cwd / "cache"), **(env or {})})
                sys.argv = ["ssgan-train", *args]
                code = _run_ssgan_train()
            except KeyboardInterrupt:  # the interpreter prints it, then dies of SIGINT
                traceback.print_exc()
                sys.stderr.flush()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGINT)
            except BaseException:  # as the interpreter reports an uncaught exception
                traceback.print_exc()
            finally:
                # the interpreter's exit would stop a joblib sweep's idle workers (hydra/launcher=local); os._exit
                # leaves them to train_in_fork's caller, alive for minutes
                executors = sys.modules.get("joblib.externals.loky.reusable_executor")
                if executors is not None and executors._executor is not None:
                    with contextlib.suppress(Exception):
                        executors._executor.shutdown(wait=True)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        with contextlib.suppress(OSError):  # the child does it too: whichever comes first
            os.setpgid(pid, pid)
        try:
            deadline = time.monotonic() + timeout
            while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(["ssgan-train", *args], timeout)
                time.sleep(0.05)
        except BaseException:  # a timeout, or the test run interrupted: the child and what it started go
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        outputs = []
        for stream in (stdout, stderr):
            stream.seek(0)
            outputs.append(stream.read().decode(errors="replace"))
    return subprocess.CompletedProcess(["ssgan-train", *args], os.waitstatus_to_exitcode(waited[1]), *outputs)


@pytest.fixture
def train_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str]]:
    """Runs ``ssgan-train ARGS`` through its console entry point in this process; returns (exit code, stderr).

    The same ``main()`` as the installed command, without the ~9 s of a new interpreter importing
    torch. ``train_in_fork`` shows what needs a process of its own (a kill, its exit status), and
    ``run_cli`` what only a new interpreter shows (nothing printed at interpreter exit).
    """

    def _run(*args: str, cwd: Path) -> tuple[int, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("SSGAN_CACHE_DIR", str(cwd / "cache"))
        monkeypatch.setattr(sys, "argv", ["ssgan-train", *args])
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        ctrl_c_handler = signal.getsignal(signal.SIGINT)
        capsys.readouterr()
        try:
            code = _run_ssgan_train()
        finally:  # Hydra's job logging replaced the root handlers with ones on this test's captured streams
            signal.signal(signal.SIGINT, ctrl_c_handler)  # the worker's own, whatever the run left
            for handler in set(root.handlers) - set(handlers):
                handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
            GlobalHydra.instance().clear()
        return code, capsys.readouterr().err

    return _run


FOLDER_CLASSES = ("circle", "square", "stripes")


def _pattern(kind: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A grey (size, size) uint8 image of one of three drawable classes, with noise."""
    yy, xx = np.mgrid[:size, :size]
    if kind == 0:
        image = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2) * 200.0
    elif kind == 1:
        image = ((abs(yy - size / 2) < size / 4) & (abs(xx - size / 2) < size / 4)) * 200.0
    else:
        image = (xx // 4 % 2) * 200.0
    return np.clip(image + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)


def write_image_folder(root: Path, labeled_per_class: int = 4, unlabeled: int = 24, test_per_class: int = 3,
                       seed: int = 0) -> Path:
    """Writes ``root/labeled/<class>/``, ``root/unlabeled/<part>/`` and ``root/test/<class>/`` PNGs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, label in zip(FOLDER_CLASSES, range(3)):
        for part, count in (("labeled", labeled_per_class), ("test", test_per_class)):
            if count == 0:
                continue
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(_pattern(label, rng)).save(folder / f"{name}_{i}.png")
    for i in range(unlabeled):
        folder = root / "unlabeled" / f"part{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pattern(i % 3, rng)).save(folder / f"image_{i}.png")
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image folder in the layout ``data=folder`` reads: 3 classes, 28x28 grey PNGs."""
    return write_image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def folder_checkpoint(tmp_path_factory: pytest.TempPathFactory, image_folder: Path) -> Path:
    """``last.ckpt`` of a one-epoch SSGAN run on ``image_folder`` (the tools' tiny checkpoint)."""
    from ssgan.train import train

    out = tmp_path_factory.mktemp("folder_run")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "data=folder", f"data.root={image_folder}", "data.num_val=3", "data.batch_size=10", "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(out / "cache")
    train(cfg)
    GlobalHydra.instance().clear()
    return out / "checkpoints" / "last.ckpt"
