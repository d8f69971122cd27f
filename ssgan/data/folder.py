"""The user's own images: ``root/labeled/<class>/``, ``root/unlabeled/**`` and optionally ``root/test/<class>/``."""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssgan.atomic import unwritable_cache_reason, write_cache
from ssgan.data import sources
from ssgan.data.datamodule import SemiSupervisedDataModule
from ssgan.data.images import IMAGE_SUFFIXES, class_folders, list_images, printable, read_images
from ssgan.data.split import Split, cached_split, per_class_counts, val_per_class
from ssgan.errors import UserError

log = logging.getLogger(__name__)


# ssgan's decoding rules (EXIF turns, 16- and 32-bit scaling, transparency on white): a change makes new caches
# (tests/test_folder.py holds the decoder's source hash for this version: a change to it must raise the version)
DECODER_VERSION = 5


def _class_images(class_dir: Path) -> list[Path]:
    """The images of one class folder, its subfolders included (they are that class too); none is an error."""
    files = list_images(class_dir, recursive=True)
    if not files:
        raise UserError(f"class folder {class_dir} holds no images ({' '.join(IMAGE_SUFFIXES)}); add images or remove the folder")
    return files


def memory_limit() -> int | None:
    """The bytes of memory this process may use: the machine's, or its cgroup's limit (a SLURM job's, a
    container's) where that is lower; None where the system does not say (e.g. Windows)."""
    try:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    for cgroup_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):  # cgroup v2, v1
        try:
            limit = min(limit, int(Path(cgroup_file).read_text().strip()))
        except (OSError, ValueError):  # none, or "max"
            continue
    return limit


def _refuse_more_than_memory(files: dict, image_shape: tuple[int, int, int], image_size: Any) -> None:
    """Refuses an image size at which the folder's images, held in memory as uint8 tensors, outgrow the
    memory this process may use (a typed 2800 for 28): found before any image is read, not in the allocator."""
    # the training images are held twice (decoded, then joined into one tensor; in training, the labeled
    # set and the unlabeled pool are copies of their own), the test images once
    needed = (2 * (len(files["labeled"]) + len(files["unlabeled"])) + len(files["test"])) * math.prod(image_shape)
    limit = memory_limit()
    if limit is not None and needed > limit:
        raise UserError(f"data.image_size={image_size} needs {math.ceil(needed / 2**30)} GiB to hold the folder's images "
                        f"in memory, more than the {limit // 2**30} GiB this process may use; use a smaller "
                        "data.image_size (e.g. 28)")


def _warn_of_loose_images(folder: Path, group: str) -> None:
    """Images directly in ``labeled/`` or ``test/``, outside a class folder, have no class: they are left out, with a word."""
    loose = list_images(folder)
    if loose:
        log.warning("ignored %d image(s) directly in %s (e.g. %s): a %s image belongs in its class's folder, "
                    "%s/<class name>/", len(loose), folder, loose[0].name, group, folder)


def _without_links_to_labeled_or_test(unlabeled: list[Path], labeled: list[Path], test: list[Path]) -> list[Path]:
    """The unlabeled files that are not a labeled image through a link (those are dropped, with a warning: the
    labeled images sit in the unlabeled pool as ``labeled_in_unlabeled`` says, and are never pseudo-labeled).
    A test image that is also a labeled or an unlabeled one (through a link) would be trained on: a one-line error."""
    labeled_paths = {os.path.realpath(path): path for path in labeled}
    trained = {**{os.path.realpath(path): path for path in unlabeled}, **labeled_paths}
    for path in test:
        twin = trained.get(os.path.realpath(path))
        if twin is not None:
            raise UserError(f"test image {path} is also the training image {twin} (through a link), so it would be "
                            "trained on; remove the link, or keep each image in one of labeled/, unlabeled/ and test/")
    kept = [path for path in unlabeled if os.path.realpath(path) not in labeled_paths]
    if len(kept) < len(unlabeled):
        example = next(path for path in unlabeled if os.path.realpath(path) in labeled_paths)
        log.warning("%d image(s) under unlabeled/ (e.g. %s) are labeled images too, through links; they are used as "
                    "labeled images only", len(unlabeled) - len(kept), example)
    return kept


class FolderDataModule(SemiSupervisedDataModule):
    """Images from a folder tree, decoded once and cached as uint8 tensors.

    Layout: ``root/labeled/<class>/**.{png,jpg,jpeg,bmp,webp}`` (the class names are the folder
    names, sorted; images may sit in subfolders of a class folder), ``root/unlabeled/**`` (any
    depth, optional) and ``root/test/<class>/**`` (optional; its classes must appear in ``labeled/``).

    Every image is converted to ``channels`` (1: grey, 3: RGB) and resized to ``image_size``. A
    file that cannot be read is logged by path and skipped, with a count at the end. The decoded
    tensors are cached in ``image_cache_dir`` (keyed by the files' paths, sizes and modification
    times, and the image shape), so later runs and epochs read no image files; a new cache of the
    same folder and image shape replaces the older ones.

    By default all images of ``labeled/`` are labeled training images, apart from ``num_val``
    validation images drawn from them; ``num_labeled`` or ``label_fraction`` uses a class-balanced
    subset instead (the rest join the unlabeled pool).

    Args (besides those of ``SemiSupervisedDataModule``):
        root: the folder holding ``labeled/``, ``unlabeled/`` and ``test/``.
        image_size: (height, width) the images are resized to, or one number for both.
        channels: 1 for grey images, 3 for RGB.
        image_cache_dir: folder for the decoded tensors; ``None`` decodes on every run.
    """

    name = "folder"
    labels_optional = True

    def __init__(self, root: str, image_size: int | Sequence[int] = 28, channels: int = 1,
                 image_cache_dir: str | None = None, num_labeled: int | None = None,
                 label_fraction: float | None = None, num_val: int = 0, **kwargs: Any) -> None:
        self.root = Path(root).expanduser()
        size = [image_size, image_size] if isinstance(image_size, int) else image_size
        if (isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2
                or not all(isinstance(side, int) and not isinstance(side, bool) and side >= 1 for side in size)):
            raise UserError(f"data.image_size={image_size} is not a size; use one whole number (e.g. 28) or "
                            "[height, width]")
        if channels not in (1, 3):
            raise UserError(f"data.channels={channels} is not supported; use 1 (grey) or 3 (RGB)")
        self.image_shape = (channels, int(size[0]), int(size[1]))
        self.image_cache_dir = image_cache_dir
        problem = unwritable_cache_reason(image_cache_dir, "data.image_cache_dir", "the images are decoded on every run")
        if problem:  # found now, not after decoding every image
            raise UserError(f"cannot write data.image_cache_dir={image_cache_dir}: {problem}; set SSGAN_CACHE_DIR to a "
                            "folder you can write to, or data.image_cache_dir=null to decode on every run")
        self._files = self._scan()
        _refuse_more_than_memory(self._files, self.image_shape, image_size)
        self._kept_training_files: list[Path] | None = None  # set by load()
        self.class_names = tuple(self._files["classes"])
        self.num_classes = len(self.class_names)
        super().__init__(num_labeled=num_labeled, label_fraction=label_fraction, num_val=num_val, **kwargs)

    # -- the folder tree --------------------------------------------------------------------------
    def _scan(self) -> dict[str, Any]:
        """Lists the files, checking the layout; reads no image."""
        root = self.root
        if root.is_file():
            raise UserError(f"data.root={root} is a file, not a folder; point it at a folder holding labeled/<class>/ "
                            "images")
        if not root.is_dir():
            raise UserError(f"data.root={root} does not exist; point it at a folder holding labeled/<class>/ images")
        labeled_dir = root / "labeled"
        if not labeled_dir.is_dir() and root.name in ("labeled", "unlabeled", "test"):
            raise UserError(f"data.root={root} is the {root.name}/ folder itself; point data.root at the folder above it "
                            f"({root.parent})")
        if not labeled_dir.is_dir():
            raise UserError(f"{root} has no labeled/ folder; put the labeled images in {labeled_dir}/<class name>/")
        _warn_of_loose_images(labeled_dir, "labeled")
        class_dirs = class_folders(labeled_dir)
        if not class_dirs:
            raise UserError(f"{labeled_dir} holds no class folders; put each class's images in {labeled_dir}/<class name>/")
        if len(class_dirs) < 2:
            raise UserError(f"{labeled_dir} holds one class folder ({class_dirs[0].name}); a classifier needs at least 2 classes")
        classes = [d.name for d in class_dirs]
        labeled_files, labeled_labels = [], []
        class_of_file: dict[str, int] = {}  # real path -> label: a link can show one image in two class folders
        for label, class_dir in enumerate(class_dirs):
            files = _class_images(class_dir)
            for path in files:
                first = class_of_file.setdefault(os.path.realpath(path), label)
                if first != label:
                    raise UserError(f"{path} is also in class folder {class_dirs[first]} (through a link), so it would be "
                                    f"trained as both {classes[first]} and {classes[label]}; remove the link, or keep "
                                    "each image in one class folder")
            labeled_files += files
            labeled_labels += [label] * len(files)
        unlabeled_dir, test_dir = root / "unlabeled", root / "test"
        for optional_dir in (unlabeled_dir, test_dir):  # a file (or a link to nothing) there would be passed over unseen
            if os.path.lexists(optional_dir) and not optional_dir.is_dir():
                what = "a link to nothing" if not optional_dir.exists() else "a file, not a folder"
                raise UserError(f"{optional_dir} is {what}; put the {optional_dir.name} images in a folder "
                                f"{optional_dir}/, or remove it")
        unlabeled_files = list_images(unlabeled_dir, recursive=True) if unlabeled_dir.is_dir() else []
        if unlabeled_dir.is_dir() and not unlabeled_files:
            raise UserError(f"{unlabeled_dir} holds no images ({' '.join(IMAGE_SUFFIXES)}); add images or remove the folder")
        test_files, test_labels = [], []
        if test_dir.is_dir():
            _warn_of_loose_images(test_dir, "test")
            for class_dir in class_folders(test_dir):
                if class_dir.name not in classes:
                    raise UserError(f"class '{class_dir.name}' of {test_dir} is not in {labeled_dir}; add "
                                    f"{labeled_dir / class_dir.name}/ with labeled images or remove {class_dir}")
                files = _class_images(class_dir)  # an empty one is a mistake too: its class would go untested
                test_files += files
                test_labels += [classes.index(class_dir.name)] * len(files)
            if not test_files:
                raise UserError(f"{test_dir} holds no images in class folders; put them in {test_dir}/<class name>/ or remove it")
        unlabeled_files = _without_links_to_labeled_or_test(unlabeled_files, labeled_files, test_files)
        return {"classes": classes, "labeled": labeled_files, "labeled_labels": labeled_labels,
                "unlabeled": unlabeled_files, "test": test_files, "test_labels": test_labels}

    def _relative(self, path: Path) -> bytes:
        """``path`` relative to the root, as the file system's bytes (a name need not be valid UTF-8)."""
        return os.fsencode(path.relative_to(self.root))

    def _cache_key(self) -> str:
        # the decoder's version too (ours and Pillow's): a cache made before a decoding change (EXIF turns,
        # 16-bit scaling, transparency on white, a Pillow release that decodes differently) is not reused
        import PIL

        digest = hashlib.sha1(f"{self.image_shape!r}|decode {DECODER_VERSION}|Pillow {PIL.__version__}".encode())
        for group in ("labeled", "unlabeled", "test"):
            for path in self._files[group]:
                stat = path.stat() if path.exists() else path.lstat()  # a link whose target is gone: the link's own
                digest.update(f"{group}|".encode() + self._relative(path) + f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def _cache_path(self) -> Path:
        """``<this folder, image size and decoder>-<its files>.pt``: the first part names the caches that a newer
        one replaces (the folder's files changed). Another decoder's caches stay: two environments of other
        Pillow releases sharing a cache folder would otherwise delete each other's on every run."""
        import PIL

        owner = hashlib.sha1(os.fsencode(self.root.resolve())
                             + f"|{self.image_shape!r}|decode {DECODER_VERSION}|Pillow {PIL.__version__}".encode())
        return Path(self.image_cache_dir).expanduser() / f"{owner.hexdigest()[:12]}-{self._cache_key()}.pt"

    @property
    def split_name(self) -> str:
        """The split cache's data set name: this folder's labeled files, so another folder never shares it."""
        digest = hashlib.sha1(os.fsencode(self.root.resolve()))
        for path, label in zip(self._files["labeled"], self._files["labeled_labels"]):
            digest.update(self._relative(path) + f"|{label}\n".encode())
        return f"folder-{digest.hexdigest()[:12]}"

    def data_fingerprint(self) -> str:
        """The training files the split's positions point at (the readable ones of labeled/ and unlabeled/,
        in order): a file added, removed or renamed changes it."""
        assert self._kept_training_files is not None, "load() first"
        digest = hashlib.sha1()
        for path in self._kept_training_files:
            digest.update(self._relative(path) + b"\n")
        return digest.hexdigest()[:16]

    @property
    def changed_data_hint(self) -> str:
        return (f"the files under {self.root}/labeled or {self.root}/unlabeled were added, removed or renamed since; "
                "put them back as they were, or start a new run")

    def _decode(self) -> dict[str, Any]:
        """Decodes every image (or reads the tensor cache); reports the unreadable files."""
        cache_path = None
        if self.image_cache_dir is not None:
            cache_path = self._cache_path()
            if cache_path.is_file():
                try:
                    cached = torch.load(cache_path, map_location="cpu", weights_only=True)
                except Exception:  # unreadable or from another version: decode again and overwrite
                    log.warning("ignoring unreadable image cache %s", cache_path)
                else:
                    for path in cached.get("skipped_files", []):
                        log.warning("skipped unreadable image %s (found when the image cache %s was made)",
                                    printable(str(self.root / path)), cache_path)
                    return cached
        decoded: dict[str, Any] = {}
        total_skipped, total, skipped_files, unopened = 0, 0, [], []
        for group in ("labeled", "unlabeled", "test"):
            files = self._files[group]
            images, kept, skipped = read_images(files, self.image_shape, unopened)
            decoded[f"{group}_images"] = images
            if group != "unlabeled":
                decoded[f"{group}_labels"] = torch.tensor(self._files[f"{group}_labels"], dtype=torch.long)[kept]
            total_skipped += len(skipped)
            skipped_files += [str(path.relative_to(self.root)) for path in skipped]
            total += len(files)
        decoded["skipped"], decoded["skipped_files"] = total_skipped, skipped_files
        if cache_path is not None and unopened:
            # a file the file system refused (permissions, a network share's error) may read next time, and
            # fixing that changes neither its size nor its time: a cache would keep it skipped
            log.warning("the image cache is not written this time: %d file(s) could not be opened (e.g. %s); the "
                        "next run reads them again", len(unopened), printable(str(unopened[0])))
        elif cache_path is not None:
            # atomic: concurrent runs never read half a cache
            write_cache(cache_path, lambda temporary: torch.save(decoded, temporary), "image cache")
            # the same folder's caches of earlier files or decoders: no run reads them again, and each is
            # the size of the data set
            owner = cache_path.name.split("-")[0]
            for outdated in cache_path.parent.glob(f"{owner}-*.pt"):
                if outdated != cache_path:
                    try:
                        outdated.unlink(missing_ok=True)
                    except OSError as error:  # another user's file in a shared folder: a cache costs no run
                        log.debug("could not remove the outdated image cache %s (%s)", outdated, error)
        return decoded

    def load(self) -> sources.ImageData:
        decoded = self._decode()
        skipped = {os.fsencode(name) for name in decoded["skipped_files"]}
        self._kept_training_files = [path for group in ("labeled", "unlabeled") for path in self._files[group]
                                     if self._relative(path) not in skipped]
        total = sum(len(self._files[group]) for group in ("labeled", "unlabeled", "test"))
        if decoded["skipped"]:
            log.warning("skipped %d unreadable image(s) of %d under %s (listed above on their first reading)",
                        decoded["skipped"], total, self.root)
        labels = decoded["labeled_labels"]
        counts = torch.bincount(labels, minlength=self.num_classes)
        if (counts == 0).any():
            empty = self.class_names[int(torch.nonzero(counts == 0)[0])]
            raise UserError(f"no readable image is left in {self.root / 'labeled' / empty}; replace its unreadable files")
        unlabeled = decoded["unlabeled_images"]
        train_images = torch.cat([decoded["labeled_images"], unlabeled])
        # the unlabeled folder's images have no label: -1 (never used for training)
        train_labels = torch.cat([labels, torch.full((len(unlabeled),), -1, dtype=torch.long)])
        return sources.ImageData(train_images, train_labels, decoded["test_images"], decoded["test_labels"],
                                 self.class_names)

    @property
    def no_unlabeled_hint(self) -> str:
        return f" or add images under {self.root / 'unlabeled'}/"

    def make_split(self, data: sources.ImageData) -> Split:
        """Splits the labeled folder's images; the unlabeled folder's images all join the unlabeled pool."""
        all_labels = data.train_labels.numpy()
        labels = all_labels[all_labels >= 0]  # the labeled folder's images come first
        num_labeled_files = len(labels)
        if self.num_labeled is None and self.label_fraction is None:  # all labeled images, minus validation
            counts = np.bincount(labels, minlength=self.num_classes) - val_per_class(self.num_val, self.num_classes)
            if counts.min() < 1:
                short = self.class_names[int(np.argmin(counts))]
                raise UserError(f"data.num_val={self.num_val} leaves no labeled training image of class '{short}'; "
                                f"lower data.num_val or add images to {self.root / 'labeled' / short}")
        else:
            counts = per_class_counts(labels, self.num_classes, self.num_labeled, self.label_fraction, self.num_val)
        split = cached_split(self.split_cache_dir, self.split_name, labels, self.num_classes, counts, self.num_val,
                             self.split_seed, labeled_in_unlabeled=False)
        pool = [split.unlabeled, np.arange(num_labeled_files, len(all_labels))]
        if self.labeled_in_unlabeled:
            pool.append(split.labeled)
        return Split(split.labeled, split.val, np.sort(np.concatenate(pool)))
