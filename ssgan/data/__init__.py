"""Data: in-memory image sets, class-balanced seeded splits, and the datamodules."""

from ssgan.data.datamodule import (
    CIFAR10DataModule,
    DigitsDataModule,
    EvalBatches,
    FashionMNISTDataModule,
    MNISTDataModule,
    SemiSupervisedBatches,
    SemiSupervisedDataModule,
    SVHNDataModule,
)
from ssgan.data.folder import FolderDataModule
from ssgan.data.split import Split, cached_split, make_split, per_class_counts

__all__ = [
    "CIFAR10DataModule", "DigitsDataModule", "EvalBatches", "FashionMNISTDataModule", "FolderDataModule", "MNISTDataModule",
    "SVHNDataModule", "SemiSupervisedBatches", "SemiSupervisedDataModule", "Split", "cached_split",
    "make_split", "per_class_counts",
]
