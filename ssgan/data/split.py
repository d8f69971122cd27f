"""Class-balanced, seeded labeled/validation/unlabeled splits, cached on disk (as USB does).

The split depends only on the labels, the counts and ``split_seed`` (never on the training seed),
and is drawn with NumPy's PCG64 generator, whose streams are the same on every platform.  For one
seed, a smaller labeled set is a subset of a larger one: each class's images are permuted once and
the labeled images are taken from the head of that permutation, the validation images next.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssgan.errors import UserError


@dataclass(frozen=True)
class Split:
    """Indices into the training images: labeled, validation and unlabeled pool."""

    labeled: np.ndarray
    val: np.ndarray
    unlabeled: np.ndarray


def per_class_counts(labels: np.ndarray, num_classes: int, num_labeled: int | None, label_fraction: float | None) -> np.ndarray:
    """How many labeled images to draw from each class, validating the user's request.

    ``num_labeled`` is split evenly over the K classes; ``label_fraction`` takes that fraction of
    every class (rounded), so the labeled set keeps the class proportions of the data.
    """
    class_sizes = np.bincount(labels, minlength=num_classes)
    if (num_labeled is None) == (label_fraction is None):
        if num_labeled is not None:
            raise UserError(f"set only one of data.num_labeled and data.label_fraction; set the other to null, "
                            f"e.g. data.num_labeled=null data.label_fraction={label_fraction}")
        raise UserError("set data.num_labeled (e.g. data.num_labeled=100) or data.label_fraction (e.g. data.label_fraction=0.01)")
    if label_fraction is not None:
        if not 0 < label_fraction <= 1:
            raise UserError(f"data.label_fraction={label_fraction} is outside (0, 1]; use e.g. data.label_fraction=0.01")
        counts = np.rint(class_sizes * label_fraction).astype(np.int64)
        if counts.min() < 1:
            smallest = 1.0 / class_sizes.min()
            raise UserError(
                f"data.label_fraction={label_fraction} gives 0 labels for some class; use at least {smallest:.2g}"
            )
        return counts
    total = int(class_sizes.sum())
    if num_labeled < num_classes:
        raise UserError(f"data.num_labeled={num_labeled} is below the number of classes ({num_classes}); use at least {num_classes}")
    if num_labeled % num_classes:
        below = num_labeled // num_classes * num_classes
        raise UserError(
            f"data.num_labeled={num_labeled} is not divisible by the {num_classes} classes; "
            f"use {below} or {below + num_classes}"
        )
    per_class = num_labeled // num_classes
    if per_class > class_sizes.min():
        most = int(class_sizes.min()) * num_classes
        raise UserError(
            f"data.num_labeled={num_labeled} is more than the data set holds ({total} training images, "
            f"{int(class_sizes.min())} in the smallest class); use at most {most}"
        )
    return np.full(num_classes, per_class, dtype=np.int64)


def make_split(labels: np.ndarray, num_classes: int, labeled_per_class: np.ndarray, num_val: int, split_seed: int,
               labeled_in_unlabeled: bool = True) -> Split:
    """Draws the split.  ``num_val`` labeled validation images are spread evenly over the classes.

    Validation images are never in the unlabeled pool; labeled images are, if ``labeled_in_unlabeled``.
    """
    if num_val < 0:
        raise UserError(f"data.num_val={num_val} is negative; use 0 or more")
    rng = np.random.Generator(np.random.PCG64(split_seed))
    val_per_class = np.full(num_classes, num_val // num_classes)
    val_per_class[: num_val % num_classes] += 1
    labeled, val, rest = [], [], []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(len(members))]
        n_lab, n_val = int(labeled_per_class[k]), int(val_per_class[k])
        if n_lab + n_val > len(members):
            raise UserError(
                f"class {k} has {len(members)} training images, fewer than its {n_lab} labeled + {n_val} validation "
                f"images; lower data.num_labeled or data.num_val"
            )
        labeled.append(members[:n_lab])
        val.append(members[n_lab:n_lab + n_val])
        rest.append(members[n_lab + n_val:])
    labeled_idx = np.sort(np.concatenate(labeled))
    unlabeled_idx = np.sort(np.concatenate(rest + (labeled if labeled_in_unlabeled else [])))
    return Split(labeled_idx, np.sort(np.concatenate(val)), unlabeled_idx)


def cached_split(cache_dir: str | Path | None, dataset: str, labels: np.ndarray, num_classes: int,
                 labeled_per_class: np.ndarray, num_val: int, split_seed: int, labeled_in_unlabeled: bool = True) -> Split:
    """``make_split``, cached per (data set, number labeled, validation size, split seed).

    A cached file is reused only if it matches the data set's size; it is written atomically, so
    concurrent runs sharing a cache never see a half-written file.
    """
    if cache_dir is None:
        return make_split(labels, num_classes, labeled_per_class, num_val, split_seed, labeled_in_unlabeled)
    num_labeled = int(labeled_per_class.sum())
    path = Path(cache_dir).expanduser() / dataset / f"labeled{num_labeled}_val{num_val}_seed{split_seed}.npz"
    split = None
    if path.is_file():
        try:
            with np.load(path) as cached:
                if int(cached["num_train"]) == len(labels):
                    split = Split(cached["labeled"], cached["val"], cached["unlabeled_rest"])
        except (OSError, ValueError, KeyError):
            split = None  # unreadable: draw it again and overwrite
    if split is None:
        split = make_split(labels, num_classes, labeled_per_class, num_val, split_seed, labeled_in_unlabeled=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp.npz", delete=False) as handle:
            np.savez(handle, labeled=split.labeled, val=split.val, unlabeled_rest=split.unlabeled, num_train=len(labels))
        os.replace(handle.name, path)
    if labeled_in_unlabeled:
        split = Split(split.labeled, split.val, np.sort(np.concatenate([split.unlabeled, split.labeled])))
    return split
