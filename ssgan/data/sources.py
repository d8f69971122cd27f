"""Readers for each supported data set's real on-disk format, returning in-memory uint8 tensors.

torchvision is used only to download; reading goes through the small readers below, so the same
code reads the files that torchvision downloads, the raw IDX files that Debian's
``dataset-fashion-mnist`` installs, and the tiny fixture files the tests write.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
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
    """Reads an IDX file (optionally gzipped): the big-endian format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
        magic = int.from_bytes(data[0:4], "big")
        if magic >> 8 != 0x08:  # 0x08 = unsigned byte
            raise ValueError(f"magic number {magic:#x}")
        ndim = magic & 0xFF
        shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return array.reshape(shape)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path} is not a readable IDX file ({error}); delete it and download again") from None


def _find_idx(root: Path, folder_name: str, stem: str) -> Path | None:
    for folder in (root, root / "raw", root / folder_name / "raw", root / folder_name):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_data(root: str | Path, folder_name: str, classes: tuple[str, ...], download: bool,
                  downloader: Callable[[str], None], pretty: str) -> ImageData:
    """Loads an MNIST-format data set from IDX files under ``root`` (downloading if allowed)."""
    root = Path(root).expanduser()
    paths = {key: _find_idx(root, folder_name, stem) for key, stem in IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        if not download:
            missing = ", ".join(IDX_FILES[k] + ".gz" for k, p in paths.items() if p is None)
            raise UserError(
                f"{pretty} files not found under {root} (missing {missing}); "
                f"set data.download=true or point data.root at the folder holding them"
            )
        downloader(str(root))
        paths = {key: _find_idx(root, folder_name, stem) for key, stem in IDX_FILES.items()}
    arrays = {key: read_idx(path) for key, path in paths.items()}  # type: ignore[arg-type]
    return ImageData(
        torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        classes,
    )


def _torchvision_download(name: str) -> Callable[[str], None]:
    def download(root: str) -> None:
        import torchvision.datasets as tvd

        dataset_class = getattr(tvd, name)
        try:
            if name == "SVHN":
                for split in ("train", "test"):
                    dataset_class(root, split=split, download=True)
            else:
                for train in (True, False):
                    dataset_class(root, train=train, download=True)
        except (OSError, RuntimeError) as error:
            raise UserError(
                f"could not download {name} to {root} ({str(error).splitlines()[0]}); "
                f"download it by hand and point data.root at it, with data.download=false"
            ) from None

    return download


def _ensure_files(paths: list[Path], download: bool, torchvision_name: str, root: Path, missing: str) -> None:
    """Downloads the data set into ``root`` if any of ``paths`` is missing, or says how to fix it."""
    if all(p.is_file() for p in paths):
        return
    if not download:
        raise UserError(f"{missing}; set data.download=true or point data.root at the folder holding them")
    _torchvision_download(torchvision_name)(str(root))


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
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return images, np.asarray(entry["labels"], dtype=np.int64)
    except (OSError, KeyError, ValueError, pickle.UnpicklingError, EOFError) as error:
        raise UserError(f"{path} is not a readable CIFAR-10 batch ({error}); delete it and download again") from None


def load_cifar10_data(root: str | Path, download: bool = True) -> ImageData:
    """CIFAR-10 from the python pickle batches in ``root/cifar-10-batches-py``."""
    root = Path(root).expanduser()
    folder = root if root.name == CIFAR_FOLDER else root / CIFAR_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    _ensure_files([folder / n for n in names], download, "CIFAR10", root, f"CIFAR-10 batches not found under {folder}")
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
        images = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8)  # (32, 32, 3, N) -> (N, 3, 32, 32)
        labels = mat["y"].astype(np.int64).reshape(-1)
    except (OSError, KeyError, ValueError) as error:
        raise UserError(f"{path} is not a readable SVHN .mat file ({error}); delete it and download again") from None
    labels[labels == 10] = 0  # SVHN stores the digit 0 as class 10
    return images, labels


def load_svhn_data(root: str | Path, download: bool = True) -> ImageData:
    """SVHN (cropped digits) from ``train_32x32.mat`` and ``test_32x32.mat`` under ``root``."""
    root = Path(root).expanduser()
    names = ("train_32x32.mat", "test_32x32.mat")
    _ensure_files([root / n for n in names], download, "SVHN", root, f"SVHN files not found under {root} (need {', '.join(names)})")
    train_x, train_y = _read_svhn_mat(root / names[0])
    test_x, test_y = _read_svhn_mat(root / names[1])
    return ImageData(torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x), torch.from_numpy(test_y), DIGIT_NAMES)
