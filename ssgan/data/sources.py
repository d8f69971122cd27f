"""Readers for each supported data set's real on-disk format, returning in-memory uint8 tensors.

torchvision is used only to download; reading goes through the small readers below, so the same
code reads the files that torchvision downloads, the raw IDX files that Debian's
``dataset-fashion-mnist`` installs, and the tiny fixture files the tests write.
"""

from __future__ import annotations

import contextlib
import gzip
import pickle
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssgan.errors import UserError


@dataclass(frozen=True)
class ImageData:
    """A data set held in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ---------------------------------------------------------------------------------------- digits
def load_digits_data(test_size: int = 447, seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 digits (1,797 images), with a fixed stratified test split.

    Pixel values 0..16 are rescaled to 0..255 so every data set is stored the same way.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=test_size, stratify=labels, random_state=seed
    )
    return ImageData(torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x), torch.from_numpy(test_y), DIGIT_NAMES)


# ------------------------------------------------------------------------------- MNIST family (IDX)
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file, gzipped or not: the big-endian format of MNIST and Fashion-MNIST.

    Whether it is gzipped is read from its first bytes, not its name: a file gunzipped but still named
    ``.gz``, or a ``.gz`` download saved without its suffix, is read as it is."""
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"  # gzip's magic number
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            data = handle.read()
        magic = int.from_bytes(data[0:4], "big")
        if magic >> 8 != 0x08:  # 0x08 = unsigned byte
            raise ValueError(f"magic number {magic:#x}")
        ndim = magic & 0xFF
        shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return array.reshape(shape)
    except PermissionError:
        raise UserError(f"cannot read {path} (permission denied); ask for read access to it, or point data.root at a "
                        "copy you can read") from None
    except Exception as error:  # noqa: BLE001 - any damage (a bad gzip stream, a short file) is the file's
        raise UserError(f"{path} is not a readable IDX file ({error}); delete it and download again") from None


# The training labels' counts per class of the full data sets (MNIST's are uneven, Fashion-MNIST's 6,000 each)
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
FASHION_MNIST_TRAIN_COUNTS = (6000,) * 10


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a path in a folder this user cannot read (Python 3.11 raises there): another
    user's download beside the data set's own files must not stop the run."""
    try:
        return path.is_file()
    except OSError:
        return False


def _find_idx(root: Path, folder_name: str) -> dict[str, Path | None]:
    """The four IDX files, all from one folder: the data set's own (torchvision's ``root/<name>/raw``)
    first, as MNIST-format data sets share file names, then ``root`` itself (e.g. Debian's package)
    and ``root/raw``. Without a complete folder, the fullest one (for the missing-file message)."""
    fullest: dict[str, Path | None] | None = None
    for folder in (root / folder_name / "raw", root / folder_name, root, root / "raw"):
        paths = {key: next((folder / name for name in (stem + ".gz", stem) if _is_file(folder / name)), None)
                 for key, stem in IDX_FILES.items()}
        if all(paths.values()):
            return paths
        if fullest is None or sum(p is not None for p in paths.values()) > sum(p is not None for p in fullest.values()):
            fullest = paths
    assert fullest is not None
    return fullest


# The data set that shares a data set's IDX file names: (its name, its training labels' counts, its option)
OTHER_IDX_DATA_SET = {"MNIST": ("Fashion-MNIST", FASHION_MNIST_TRAIN_COUNTS, "data=fashion_mnist"),
                      "Fashion-MNIST": ("MNIST", MNIST_TRAIN_COUNTS, "data=mnist")}


def _holds_the_other_data_set(paths: dict[str, Path | None], pretty: str) -> bool:
    """Whether complete IDX ``paths`` are the files of the data set that shares ``pretty``'s file names
    (read from their training labels, about 60 KB)."""
    other = OTHER_IDX_DATA_SET.get(pretty)
    if other is None or paths["train_labels"] is None:
        return False
    try:
        labels = read_idx(paths["train_labels"])
    except UserError:  # a damaged file: not the other data set's either
        return False
    return tuple(np.bincount(labels, minlength=len(other[1])).tolist()) == other[1]


def _idx_folder_below(root: Path, folder_name: str, pretty: str, depth: int = 2, max_folders: int = 2000) -> Path | None:
    """A folder up to ``depth`` levels below ``root`` that holds all four IDX files of ``pretty``'s data set
    (a ``data.root`` one or two folders too high, e.g. /usr/share/datasets), or None; at most ``max_folders``
    folders are looked at, and the other data set of the same file names is passed over."""
    if not root.is_dir():
        return None
    level, seen = [root], 0
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                below += sorted(child for child in folder.iterdir() if child.is_dir())
            except OSError:  # unreadable: not where the files are
                continue
        for folder in below:
            seen += 1
            if seen > max_folders:
                return None
            paths = _find_idx(folder, folder_name)
            if all(paths.values()) and not _holds_the_other_data_set(paths, pretty):
                return next(iter(paths.values())).parent  # type: ignore[union-attr]
        level = below
    return None


def whole_labels(labels: object, where: str) -> np.ndarray:
    """``labels`` as int64 (N,), or one line for labels that are not one whole number per image (a label array of
    shape (N, 1), fractions or text): casting them would train on labels the files do not hold."""
    array = np.asarray(labels)
    fix = "delete the files and download again"
    if array.ndim != 1:
        raise UserError(f"{where} holds labels of shape {tuple(array.shape)}, not one label per image (N,); {fix}")
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        return array.astype(np.int64)  # a whole number stored as a float (MATLAB's default type)
    raise UserError(f"{where} holds labels of type {array.dtype}, not whole numbers; {fix}")


def byte_pixels(images: object, where: str) -> np.ndarray:
    """``images`` as uint8 (bytes stored as other integers or whole floats too), or one line for pixels that are not
    bytes 0 to 255 (floats scaled to 0..1, or numbers out of range): casting them would wrap or truncate every
    pixel, and the run would train on noise."""
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "iu" and (array.size == 0 or (array.min() >= 0 and array.max() <= 255)):
        return array.astype(np.uint8)
    # bytes saved as floats (MATLAB's default type), not scaled to 0..1: whole numbers, and some above 1
    if array.dtype.kind == "f" and array.size and np.isfinite(array).all() and (array == np.round(array)).all() \
            and array.min() >= 0 and 1 < array.max() <= 255:
        return array.astype(np.uint8)
    shown = f" from {array.min():g} to {array.max():g}" if array.size and array.dtype.kind in "iuf" else ""
    raise UserError(f"{where} holds pixels of type {array.dtype}{shown}, where the format holds bytes 0 to 255; "
                    "delete the files and download again")


def check_labels(images: np.ndarray, labels: np.ndarray, num_classes: int, where: str) -> None:
    """One line, not a traceback later, for files whose images and labels do not pair up."""
    if len(images) != len(labels):
        raise UserError(f"{where} holds {len(images)} images but {len(labels)} labels; delete the files and download again")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{where} holds labels from {int(labels.min())} to {int(labels.max())}, but the data set has "
                        f"{num_classes} classes (0 to {num_classes - 1}); delete the files and download again")


def load_idx_data(root: str | Path, folder_name: str, classes: tuple[str, ...], download: bool,
                  downloader: Callable[[str], None], pretty: str) -> ImageData:
    """Loads an MNIST-format data set from IDX files under ``root`` (downloading if allowed)."""
    root = Path(root).expanduser()
    paths = _find_idx(root, folder_name)
    if any(p is None for p in paths.values()):
        if not download:
            missing = ", ".join(IDX_FILES[k] + ".gz" for k, p in paths.items() if p is None)
            below = _idx_folder_below(root, folder_name, pretty)
            fix = (f"they are in {below}: set data.root={below}" if below is not None else
                   "set data.download=true or point data.root at the folder holding them")
            raise UserError(f"{pretty} files not found under {root} (missing {missing}); {fix}")
        downloader(str(root))
        paths = _find_idx(root, folder_name)
        if any(p is None for p in paths.values()):
            raise UserError(f"{pretty} files not found under {root} after its download; point data.root at the folder "
                            "holding them, with data.download=false")
    arrays = {key: read_idx(path) for key, path in paths.items()}  # type: ignore[arg-type]
    for part in ("train", "test"):  # IDX holds bytes: only the labels' shape can be wrong
        arrays[f"{part}_labels"] = whole_labels(arrays[f"{part}_labels"], str(paths[f"{part}_labels"]))
        check_labels(arrays[f"{part}_images"], arrays[f"{part}_labels"], len(classes),
                     f"{paths[f'{part}_images'].parent} ({pretty}'s {part} files)")  # type: ignore[union-attr]
    # MNIST and Fashion-MNIST share their file names: tell them apart by their training labels' counts
    counts = tuple(np.bincount(arrays["train_labels"], minlength=len(classes)).tolist())
    other = OTHER_IDX_DATA_SET.get(pretty)
    if other is not None and counts == other[1]:
        raise UserError(f"{paths['train_labels'].parent} holds {other[0]}'s files, not {pretty}'s; point data.root at "
                        f"{pretty}'s, or use {other[2]}")
    return ImageData(
        torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        classes,
    )


@contextlib.contextmanager
def _download_lock(folder: Path) -> Iterator[None]:
    """One download into ``folder`` at a time on this machine. Under torchrun or srun every process of a run
    starts at once and finds the files missing; torchvision's downloads into one folder would overwrite each
    other's archives (and a failed one remove what another is writing). The processes that wait find the
    files there, and torchvision checks them instead of downloading again."""
    import fcntl
    import hashlib
    import os
    import tempfile

    lock = Path(tempfile.gettempdir()) / f"ssgan-download-{hashlib.sha1(os.fsencode(folder)).hexdigest()[:12]}.lock"
    try:
        handle = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:  # no writable temporary folder: download unguarded, as a single process would
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # and with it the lock


def _torchvision_download(name: str) -> Callable[[str], None]:
    def download(root: str) -> None:
        folder = Path(root).absolute()
        with _download_lock(folder):
            _download_into(name, root, folder)

    return download


def _download_into(name: str, root: str, folder: Path) -> None:
    """torchvision's download of data set ``name`` into ``root`` (``folder``, absolute); a failed one is a
    one-line error and removes what it created."""
    import torchvision.datasets as tvd

    dataset_class = getattr(tvd, name)
    # what was there before: a failed download removes only what it created (empty folders, partial files)
    highest_new = next((path for path in reversed([folder, *folder.parents]) if not path.exists()), None)
    had_before = set(folder.rglob("*")) if folder.is_dir() else set()  # the whole tree: raw/ may exist already
    try:
        if name == "SVHN":
            for split in ("train", "test"):
                dataset_class(root, split=split, download=True)
        else:
            for train in (True, False):
                dataset_class(root, train=train, download=True)
    except BaseException as error:  # Ctrl-C or a cut-short archive too: nothing half-written stays
        _remove_new_entries(folder, had_before, highest_new)
        if not isinstance(error, (OSError, RuntimeError)):
            raise
        # torchvision's "Error downloading <file>:" ends its first line; the cause is the message's last line
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        reason = f"{lines[0]} {lines[-1]}" if len(lines) > 1 and lines[0].endswith(":") else lines[0]
        raise UserError(
            f"could not download {name} to {root} ({reason}); "
            f"download it by hand and point data.root at it, with data.download=false"
        ) from None


def _remove_new_entries(folder: Path, had_before: set[Path], highest_new: Path | None) -> None:
    """Removes what a failed download created in ``folder``, or the folders it made for it
    (``highest_new``: the highest of ``folder`` and its parents that did not exist before)."""
    if highest_new is not None:
        shutil.rmtree(highest_new, ignore_errors=True)
        return
    new = set(folder.rglob("*")) - had_before if folder.is_dir() else set()
    for entry in new:
        if entry.parent in new:  # goes with its new folder
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _ensure_files(paths: list[Path], download: bool, torchvision_name: str, root: Path, missing: str,
                  archive: Path | None = None) -> None:
    """Downloads the data set into ``root`` if any of ``paths`` is missing, or says which are and how to fix it
    (``archive``: the download's archive, which may lie there unpacked)."""
    if all(_is_file(p) for p in paths):
        return
    if not download:
        import shlex

        absent = ", ".join(path.name for path in paths if not _is_file(path))
        fix = "set data.download=true or point data.root at the folder holding them"
        if archive is not None and _is_file(archive):  # torchvision's download would unpack it without downloading
            fix = (f"{archive} is there but not unpacked: unpack it with tar -xzf {shlex.quote(str(archive))} -C "
                   f"{shlex.quote(str(archive.parent))}, or set data.download=true")
        raise UserError(f"{missing} (missing {absent}); {fix}")
    _torchvision_download(torchvision_name)(str(root))
    if not all(_is_file(p) for p in paths):
        raise UserError(f"{missing} after its download; point data.root at the folder holding them, with "
                        "data.download=false")


def load_mnist_data(root: str | Path, download: bool = True) -> ImageData:
    """MNIST from IDX files under ``root`` (as torchvision lays them out, or flat)."""
    return load_idx_data(root, "MNIST", DIGIT_NAMES, download, _torchvision_download("MNIST"), "MNIST")


def load_fashion_mnist_data(root: str | Path, download: bool = True) -> ImageData:
    """Fashion-MNIST from IDX files under ``root``, e.g. /usr/share/datasets/fashion-mnist."""
    return load_idx_data(root, "FashionMNIST", FASHION_NAMES, download, _torchvision_download("FashionMNIST"), "Fashion-MNIST")


# --------------------------------------------------------------------------------------- CIFAR-10
CIFAR_FOLDER = "cifar-10-batches-py"


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        if not isinstance(entry, dict):
            raise ValueError(f"a {type(entry).__name__}, not a batch")
        rows, labels = np.asarray(entry["data"]), entry["labels"]
    except Exception as error:  # noqa: BLE001 - a file cut short or of another kind fails in many ways
        raise UserError(f"{path} is not a readable CIFAR-10 batch ({error}); delete it and download again") from None
    if rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:  # e.g. (N, 32, 32, 3): a reshape would scramble its pixels
        raise UserError(f"{path} holds images of shape {tuple(rows.shape)}, where a CIFAR-10 batch holds one row of "
                        "3072 values per image (N, 3072: the red, green and blue 32x32 planes); delete it and download again")
    images = byte_pixels(rows, str(path)).reshape(-1, 3, 32, 32)
    labels = whole_labels(labels, str(path))
    check_labels(images, labels, len(CIFAR10_NAMES), str(path))
    return images, labels


def load_cifar10_data(root: str | Path, download: bool = True) -> ImageData:
    """CIFAR-10 from the python pickle batches in ``root/cifar-10-batches-py``."""
    root = Path(root).expanduser()
    folder = root if root.name == CIFAR_FOLDER else root / CIFAR_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    # torchvision unpacks into <its root>/cifar-10-batches-py: the folder's parent, when root is that folder
    _ensure_files([folder / n for n in names], download, "CIFAR10", folder.parent,
                  f"CIFAR-10 batches not found under {folder}", archive=folder.parent / "cifar-10-python.tar.gz")
    train = [_read_cifar_batch(folder / n) for n in names[:5]]
    test_x, test_y = _read_cifar_batch(folder / "test_batch")
    return ImageData(
        torch.from_numpy(np.concatenate([x for x, _ in train])),
        torch.from_numpy(np.concatenate([y for _, y in train])),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y),
        CIFAR10_NAMES,
    )


# -------------------------------------------------------------------------------------------- SVHN
def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
        images = np.transpose(mat["X"], (3, 2, 0, 1))  # (32, 32, 3, N) -> (N, 3, 32, 32)
        labels = mat["y"]
    except Exception as error:  # noqa: BLE001 - a download cut short fails in many ways inside scipy
        raise UserError(f"{path} is not a readable SVHN .mat file ({error}); delete it and download again") from None
    images = byte_pixels(images, str(path))
    labels = whole_labels(labels.reshape(-1) if labels.ndim == 2 and 1 in labels.shape else labels, str(path))  # (N, 1)
    labels[labels == 10] = 0  # SVHN stores the digit 0 as class 10
    check_labels(images, labels, len(DIGIT_NAMES), str(path))
    return images, labels


def load_svhn_data(root: str | Path, download: bool = True) -> ImageData:
    """SVHN (cropped digits) from ``train_32x32.mat`` and ``test_32x32.mat`` under ``root``."""
    root = Path(root).expanduser()
    names = ("train_32x32.mat", "test_32x32.mat")
    _ensure_files([root / n for n in names], download, "SVHN", root, f"SVHN files not found under {root}")
    train_x, train_y = _read_svhn_mat(root / names[0])
    test_x, test_y = _read_svhn_mat(root / names[1])
    return ImageData(torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x), torch.from_numpy(test_y), DIGIT_NAMES)
