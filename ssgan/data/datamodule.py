"""Datamodules that split labeled from unlabeled images and serve them from memory.

Images stay uint8 tensors in memory and batches are gathered by index, with no per-sample
transform and no DataLoader workers: the training step converts them to float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from ssgan.data import sources
from ssgan.data.split import Split, cached_split, check_label_request, per_class_counts
from ssgan.errors import UserError

TrainBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # labeled (B_l,C,H,W) u8, labels (B_l,), unlabeled (B_u,C,H,W) u8


def _epoch_order(size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``length`` indices into ``range(size)``: fresh permutations laid end to end."""
    repeats = -(-length // size)
    return torch.cat([torch.randperm(size, generator=generator) for _ in range(repeats)])[:length]


class SemiSupervisedBatches:
    """One epoch of (labeled images, labels, unlabeled images) batches: one pass over the unlabeled pool.

    The pool is reshuffled every epoch and its last partial batch is dropped, as in the reference,
    so every image is seen over the epochs but an epoch has ``len(pool) // batch_size`` batches.

    The labeled batch is drawn independently of the unlabeled one, from permutations of the
    (small) labeled set laid end to end, as in openai/improved-gan.  Shuffling is seeded by
    ``seed`` and the epoch number, so an epoch's batches are the same on a resumed run.
    """

    def __init__(self, labeled_images: torch.Tensor, labels: torch.Tensor, unlabeled_images: torch.Tensor,
                 batch_size: int, labeled_batch_size: int, seed: int, epoch: Callable[[], int]) -> None:
        self.labeled_images, self.labels, self.unlabeled_images = labeled_images, labels, unlabeled_images
        self.batch_size, self.labeled_batch_size = batch_size, labeled_batch_size
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return max(1, len(self.unlabeled_images) // self.batch_size)

    def __iter__(self) -> Iterator[TrainBatch]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch())
        num_batches = len(self)
        unlabeled_order = _epoch_order(len(self.unlabeled_images), num_batches * self.batch_size, generator)
        labeled_order = _epoch_order(len(self.labeled_images), num_batches * self.labeled_batch_size, generator)
        for unlabeled_idx, labeled_idx in zip(unlabeled_order.split(self.batch_size), labeled_order.split(self.labeled_batch_size)):
            yield self.labeled_images[labeled_idx], self.labels[labeled_idx], self.unlabeled_images[unlabeled_idx]


class EvalBatches:
    """Sequential (images, labels) batches for validation and test."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> None:
        self.images, self.labels, self.batch_size = images, labels, batch_size

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from zip(self.images.split(self.batch_size), self.labels.split(self.batch_size))


class SemiSupervisedDataModule(pl.LightningDataModule):
    """Base datamodule: loads a data set into memory and splits it into labeled, validation and unlabeled.

    Args:
        num_labeled: labeled training images, ``num_labeled / K`` per class. Exclusive with ``label_fraction``.
        label_fraction: fraction of each class's training images that is labeled, in (0, 1].
        num_val: labeled validation images carved from the training data (spread evenly over the
            classes). They count on top of ``num_labeled`` and are never in the unlabeled pool.
        split_seed: seed of the split, separate from the training seed.
        labeled_in_unlabeled: whether labeled images also sit in the unlabeled pool (the reference does so).
        batch_size: unlabeled images per training batch (also the number of generated images).
        labeled_batch_size: labeled images per training batch; defaults to ``batch_size``.
        eval_batch_size: batch size for validation and test.
        split_cache_dir: folder caching splits per (data set, labeled count, validation size, split seed);
            ``None`` disables the cache.
        shuffle_seed: seed of the batch order; ``None`` takes torch's seed, which ``seed_everything`` sets.
    """

    name = "base"
    num_classes: int
    image_shape: tuple[int, int, int]

    def __init__(self, num_labeled: int | None = None, label_fraction: float | None = None, num_val: int = 100,
                 split_seed: int = 0, labeled_in_unlabeled: bool = True, batch_size: int = 100,
                 labeled_batch_size: int | None = None, eval_batch_size: int = 1000,
                 split_cache_dir: str | None = None, shuffle_seed: int | None = None) -> None:
        super().__init__()
        if batch_size < 1 or (labeled_batch_size is not None and labeled_batch_size < 1):
            raise UserError(f"data.batch_size must be at least 1 (got {batch_size}, labeled {labeled_batch_size})")
        if eval_batch_size < 1:
            raise UserError(f"data.eval_batch_size must be at least 1 (got {eval_batch_size})")
        check_label_request(num_labeled, label_fraction)  # now, before any data is read
        self.num_labeled, self.label_fraction, self.num_val = num_labeled, label_fraction, num_val
        self.split_seed, self.labeled_in_unlabeled = split_seed, labeled_in_unlabeled
        self.batch_size, self.labeled_batch_size = batch_size, labeled_batch_size or batch_size
        self.eval_batch_size, self.split_cache_dir, self.shuffle_seed = eval_batch_size, split_cache_dir, shuffle_seed
        self.data: sources.ImageData | None = None
        self.split: Split | None = None

    # -- what a subclass provides ---------------------------------------------------------------
    def load(self) -> sources.ImageData:
        """Reads the whole data set into memory."""
        raise NotImplementedError(f"{type(self).__name__} must implement load(), the abstract reader of its data set")

    # -- Lightning hooks ------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Loads (and, where allowed, downloads) the data once, so that errors surface before training."""
        self.setup()

    def setup(self, stage: str | None = None) -> None:
        if self.split is not None:
            return
        data = self.load()
        if data.image_shape != tuple(self.image_shape):
            raise UserError(f"{self.name} images have shape {data.image_shape}, expected {self.image_shape}")
        labels = data.train_labels.numpy()
        counts = per_class_counts(labels, self.num_classes, self.num_labeled, self.label_fraction, self.num_val)
        self.split = cached_split(self.split_cache_dir, self.name, labels, self.num_classes, counts,
                                  self.num_val, self.split_seed, self.labeled_in_unlabeled)
        self.data = data

    @property
    def labeled_count(self) -> int:
        """The number of labeled training images (known after ``setup``)."""
        assert self.split is not None, "call setup() first"
        return len(self.split.labeled)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes if self.data is not None else tuple(str(k) for k in range(self.num_classes))

    def _subset(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.data is not None
        index = torch.from_numpy(indices)
        return self.data.train_images[index], self.data.train_labels[index]

    def train_dataloader(self) -> SemiSupervisedBatches:
        assert self.split is not None
        labeled_images, labels = self._subset(self.split.labeled)
        unlabeled_images, _ = self._subset(self.split.unlabeled)  # the labels of the pool are never used
        seed = self.shuffle_seed if self.shuffle_seed is not None else torch.initial_seed() % (2**31)
        return SemiSupervisedBatches(labeled_images, labels, unlabeled_images, self.batch_size,
                                     self.labeled_batch_size, seed, self._current_epoch)

    def val_dataloader(self) -> EvalBatches | list:
        assert self.split is not None
        if len(self.split.val) == 0:
            return []
        return EvalBatches(*self._subset(self.split.val), self.eval_batch_size)

    def test_dataloader(self) -> EvalBatches:
        assert self.data is not None
        return EvalBatches(self.data.test_images, self.data.test_labels, self.eval_batch_size)

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0


class DigitsDataModule(SemiSupervisedDataModule):
    """scikit-learn's 8x8 digits (embedded; 1,350 training and 447 test images, a fixed stratified split)."""

    name = "digits"
    num_classes = 10
    image_shape = (1, 8, 8)

    def load(self) -> sources.ImageData:
        return sources.load_digits_data()


class _DownloadableDataModule(SemiSupervisedDataModule):
    """A data set read from ``root``, downloaded through torchvision if missing and ``download``."""

    def __init__(self, root: str = "data", download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root, self.download = str(Path(root).expanduser()), download


class MNISTDataModule(_DownloadableDataModule):
    """MNIST (28x28 grey): IDX files under ``root``, or downloaded there by torchvision."""

    name = "mnist"
    num_classes = 10
    image_shape = (1, 28, 28)

    def load(self) -> sources.ImageData:
        return sources.load_mnist_data(self.root, self.download)


class FashionMNISTDataModule(_DownloadableDataModule):
    """Fashion-MNIST (28x28 grey): IDX files under ``root`` (e.g. /usr/share/datasets/fashion-mnist)."""

    name = "fashion_mnist"
    num_classes = 10
    image_shape = (1, 28, 28)

    def load(self) -> sources.ImageData:
        return sources.load_fashion_mnist_data(self.root, self.download)


class CIFAR10DataModule(_DownloadableDataModule):
    """CIFAR-10 (32x32 RGB): python pickle batches under ``root/cifar-10-batches-py``."""

    name = "cifar10"
    num_classes = 10
    image_shape = (3, 32, 32)

    def load(self) -> sources.ImageData:
        return sources.load_cifar10_data(self.root, self.download)


class SVHNDataModule(_DownloadableDataModule):
    """SVHN cropped digits (32x32 RGB): ``train_32x32.mat`` and ``test_32x32.mat`` under ``root``."""

    name = "svhn"
    num_classes = 10
    image_shape = (3, 32, 32)

    def load(self) -> sources.ImageData:
        return sources.load_svhn_data(self.root, self.download)
