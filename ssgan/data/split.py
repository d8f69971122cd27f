"""Class-balanced, seeded labeled/validation/unlabeled splits, cached on disk (as USB does).

The split depends only on the labels, the counts and ``split_seed`` (never on the training seed),
and is drawn with NumPy's PCG64 generator, whose streams are the same on every platform.  Each
class's images are permuted once: labeled images come from the head of that permutation and
validation images from its tail.  So, for one seed, a smaller labeled set is a subset of a larger
one, and the validation set does not move when the number of labels changes.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from ssgan.atomic import write_cache
from ssgan.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Indices into the training images: labeled, validation and unlabeled pool."""

    labeled: np.ndarray
    val: np.ndarray
    unlabeled: np.ndarray


def check_label_request(num_labeled: int | None, label_fraction: float | None) -> None:
    """Checks that exactly one of ``num_labeled`` and ``label_fraction`` is set, their types, and the fraction's range."""
    if num_labeled is not None and (isinstance(num_labeled, bool) or not isinstance(num_labeled, int)):
        # 50.0, 1e2 or '50' name a whole number, but as a float or as text: say how to write it
        whole = (num_labeled if isinstance(num_labeled, float) and num_labeled.is_integer()
                 else num_labeled if isinstance(num_labeled, str) and num_labeled.strip().isdigit() else None)
        if whole is not None:
            raise UserError(f"data.num_labeled={num_labeled!r} is {'a float' if isinstance(whole, float) else 'text'}, not "
                            f"a whole number; write it as one, e.g. data.num_labeled={int(whole)}")
        raise UserError(f"data.num_labeled={num_labeled} is not a whole number of images; use e.g. data.num_labeled=100")
    if label_fraction is not None and (isinstance(label_fraction, bool) or not isinstance(label_fraction, (int, float))):
        raise UserError(f"data.label_fraction={label_fraction} is not a number; use e.g. data.label_fraction=0.01")
    if num_labeled is not None and label_fraction is not None:
        raise UserError(f"set only one of data.num_labeled and data.label_fraction; set the other to null, "
                        f"e.g. data.num_labeled=null data.label_fraction={label_fraction}")
    if num_labeled is None and label_fraction is None:
        raise UserError("set data.num_labeled (e.g. data.num_labeled=100) or data.label_fraction (e.g. data.label_fraction=0.01)")
    if label_fraction is not None and not 0 < label_fraction <= 1:
        raise UserError(f"data.label_fraction={label_fraction} is outside (0, 1]; use e.g. data.label_fraction=0.01")


def val_per_class(num_val: int, num_classes: int) -> np.ndarray:
    """``num_val`` validation images spread evenly over the classes (the first classes get the rest)."""
    if num_val < 0:
        raise UserError(f"data.num_val={num_val} is negative; use 0 or more")
    counts = np.full(num_classes, num_val // num_classes, dtype=np.int64)
    counts[: num_val % num_classes] += 1
    return counts


def largest_num_val(class_sizes: np.ndarray, labels_needed: np.ndarray | int = 1) -> int:
    """The most validation images that leave every class (sizes > 0) ``labels_needed`` images for its
    labels (per class; falls back to one when even no validation leaves that many)."""
    def fits(num_val: int) -> bool:
        return (class_sizes - val_per_class(num_val, len(class_sizes)) - labels_needed).min() >= 0

    if not fits(0):
        labels_needed = 1

    low, high = 0, int(class_sizes.sum())  # fits(low) holds; fits(high) does not
    while high - low > 1:  # fits only gets harder as num_val grows
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def per_class_counts(labels: np.ndarray, num_classes: int, num_labeled: int | None, label_fraction: float | None,
                     num_val: int = 0) -> np.ndarray:
    """How many labeled images to draw from each class, validating the user's request.

    ``num_labeled`` is split evenly over the K classes; ``label_fraction`` takes that fraction of
    every class (rounded), so the labeled set keeps the class proportions of the data.  The
    ``num_val`` validation images are set aside first.
    """
    check_label_request(num_labeled, label_fraction)
    class_sizes = np.bincount(labels, minlength=num_classes)
    if class_sizes.min() == 0:  # e.g. cut-short or foreign files: no count below could be drawn
        raise UserError(f"class {int(np.argmin(class_sizes))} has no training images; the data set's files are "
                        "incomplete: delete them and download again, or point data.root at complete files")
    available = class_sizes - val_per_class(num_val, num_classes)  # what is left for labels, per class
    if available.min() < 1 and class_sizes.min() > 0:  # every class needs an image left for its labels
        # the suggestion leaves room for the labels asked for too, where the request says how many
        if label_fraction is not None:
            labels_needed: np.ndarray | int = np.maximum(fraction_counts(class_sizes, label_fraction), 1)
        else:
            labels_needed = max(1, num_labeled // num_classes) if num_labeled % num_classes == 0 else 1
        raise UserError(f"data.num_val={num_val} leaves no training images for labels in some class "
                        f"({int(class_sizes.min())} in the smallest class); use at most data.num_val="
                        f"{largest_num_val(class_sizes, labels_needed)}")
    if label_fraction is not None:
        counts = fraction_counts(class_sizes, label_fraction)
        if counts.min() < 1:
            raise UserError(f"data.label_fraction={label_fraction} gives 0 labels for some class; use at least "
                            f"{smallest_fraction(int(class_sizes.min()))}")
        if (counts > available).any():
            # the largest fraction whose counts fit beside the validation images (rounded down: size * f <= available)
            fitting = math.floor(float((available / class_sizes).min()) * 10000) / 10000
            raise UserError(f"data.label_fraction={label_fraction} leaves no room for the {num_val} validation images; "
                            f"use at most data.label_fraction={fitting:g}, or data.num_val="
                            f"{largest_num_val(class_sizes, counts)}")
        return counts
    if num_labeled < num_classes:
        raise UserError(f"data.num_labeled={num_labeled} is below the number of classes ({num_classes}); use at least {num_classes}")
    if num_labeled % num_classes and num_labeled // num_classes <= available.min():
        below = num_labeled // num_classes * num_classes
        # the count above only where the data set holds it
        nearest = f"{below} or {below + num_classes}" if num_labeled // num_classes < available.min() else f"{below}"
        raise UserError(f"data.num_labeled={num_labeled} is not divisible by the {num_classes} classes; use {nearest}")
    if num_labeled // num_classes > available.min():
        raise UserError(
            f"data.num_labeled={num_labeled} is more than the data set holds ({int(class_sizes.sum())} training images, "
            f"{int(class_sizes.min())} in the smallest class, {num_val} kept for validation); "
            f"use at most {int(available.min()) * num_classes}"
        )
    return np.full(num_classes, num_labeled // num_classes, dtype=np.int64)


def fraction_counts(class_sizes: np.ndarray, label_fraction: float) -> np.ndarray:
    """``class_size * label_fraction`` per class, rounded to the nearest whole image, a half to even.

    Computed in decimal from the fraction as written (0.0003, not the float just below it): in floating
    point an exact half such as 5000 * 0.0003 = 1.5 comes out as 1.4999... or 1.5000...1 and rounds
    either way."""
    fraction = Decimal(repr(float(label_fraction)))
    return np.array([int((Decimal(int(size)) * fraction).to_integral_value(rounding=ROUND_HALF_EVEN))
                     for size in class_sizes], dtype=np.int64)


def smallest_fraction(smallest_class: int) -> str:
    """The smallest ``label_fraction`` with two significant figures that gives the smallest class a
    label (``rint`` rounds a half to even, so the class needs more than half an image)."""
    fraction = 0.5 / smallest_class
    step = 10.0 ** (math.floor(math.log10(fraction)) - 1)
    steps = math.ceil(fraction / step)
    while fraction_counts(np.array([smallest_class]), float(f"{steps * step:.2g}"))[0] < 1:
        steps += 1
    return f"{steps * step:.2g}"


def make_split(labels: np.ndarray, num_classes: int, labeled_per_class: np.ndarray, num_val: int, split_seed: int,
               labeled_in_unlabeled: bool = True) -> Split:
    """Draws the split.  ``num_val`` labeled validation images are spread evenly over the classes.

    Validation images are never in the unlabeled pool; labeled images are, if ``labeled_in_unlabeled``.
    """
    rng = np.random.Generator(np.random.PCG64(split_seed))
    val_counts = val_per_class(num_val, num_classes)
    labeled, val, rest = [], [], []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(len(members))]
        n_lab, n_val = int(labeled_per_class[k]), int(val_counts[k])
        if n_lab + n_val > len(members):
            raise UserError(
                f"class {k} has {len(members)} training images, fewer than its {n_lab} labeled + {n_val} validation "
                f"images; lower data.num_labeled or data.num_val"
            )
        labeled.append(members[:n_lab])
        val.append(members[len(members) - n_val:])
        rest.append(members[n_lab:len(members) - n_val])
    labeled_idx = np.sort(np.concatenate(labeled))
    unlabeled_idx = np.sort(np.concatenate(rest + (labeled if labeled_in_unlabeled else [])))
    return Split(labeled_idx, np.sort(np.concatenate(val)), unlabeled_idx)


def split_cache_path(cache_dir: str | Path, dataset: str, labeled_per_class: np.ndarray, num_val: int, split_seed: int) -> Path:
    """``<cache>/<data set>/labeled<N>_val<V>_seed<S>.npz``; uneven per-class counts (from a label
    fraction) add a short hash of the counts, so they never share a file with a balanced split."""
    name = f"labeled{int(labeled_per_class.sum())}"
    if len(set(labeled_per_class.tolist())) > 1:
        name += "-" + hashlib.sha1(labeled_per_class.astype(np.int64).tobytes()).hexdigest()[:8]
    return Path(cache_dir).expanduser() / dataset / f"{name}_val{num_val}_seed{split_seed}.npz"


def cached_split(cache_dir: str | Path | None, dataset: str, labels: np.ndarray, num_classes: int,
                 labeled_per_class: np.ndarray, num_val: int, split_seed: int, labeled_in_unlabeled: bool = True) -> Split:
    """``make_split``, cached per (data set, labeled counts, validation size, split seed).

    A cached file is reused only if it was drawn from these labels (a hash of them) with these
    per-class counts, validation size and split seed; an unreadable, stale or foreign file (one
    copied or renamed from another split's) is drawn again and overwritten. It is written
    atomically, so concurrent runs sharing a cache never see a half-written file.
    """
    if cache_dir is None:
        return make_split(labels, num_classes, labeled_per_class, num_val, split_seed, labeled_in_unlabeled)
    path = split_cache_path(cache_dir, dataset, labeled_per_class, num_val, split_seed)
    # the data set's name alone does not say which files were read (e.g. another data.root)
    labels_hash = hashlib.sha1(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()
    split = None
    if path.is_file():
        try:
            with np.load(path) as cached:
                if (str(cached["labels_sha1"]) == labels_hash
                        and np.array_equal(cached["labeled_per_class"], labeled_per_class)
                        and int(cached["num_val"]) == num_val and len(cached["val"]) == num_val
                        and int(cached["split_seed"]) == split_seed):
                    split = Split(cached["labeled"], cached["val"], cached["unlabeled_rest"])
        except Exception:  # noqa: BLE001 - any damage (a truncated zip, a bad CRC, an old layout): draw it again
            split = None
        if split is None:
            log.info("the split cache %s is not this split's (damaged, from an older ssgan, or of another split): "
                     "drawing it again", path)
    if split is None:
        split = make_split(labels, num_classes, labeled_per_class, num_val, split_seed, labeled_in_unlabeled=False)
        write_cache(path, lambda temporary: np.savez(temporary, labeled=split.labeled, val=split.val,
                                                     unlabeled_rest=split.unlabeled, num_train=len(labels),
                                                     labeled_per_class=labeled_per_class, labels_sha1=labels_hash,
                                                     num_val=num_val, split_seed=split_seed),
                    "split cache")
    if labeled_in_unlabeled:
        split = Split(split.labeled, split.val, np.sort(np.concatenate([split.unlabeled, split.labeled])))
    return split
