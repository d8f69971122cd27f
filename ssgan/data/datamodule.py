"""Datamodules that split labeled from unlabeled images and serve them from memory.

Images stay uint8 tensors in memory and batches are gathered by index, with no per-sample
transform and no DataLoader workers: the training step converts them to float.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from ssgan.atomic import unwritable_cache_reason
from ssgan.data import sources
from ssgan.data.split import Split, cached_split, check_label_request, per_class_counts
from ssgan.errors import UserError

log = logging.getLogger(__name__)

TrainBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # labeled (B_l,C,H,W) u8, labels (B_l,), unlabeled (B_u,C,H,W) u8


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Moves each image of a (B, C, H, W) batch by up to ``max_shift`` pixels in x and in y, filling with 0."""
    batch, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    offset_y, offset_x = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator)
    rows = (offset_y[:, None] + torch.arange(height))[:, None, :, None]  # (B, 1, H, 1)
    cols = (offset_x[:, None] + torch.arange(width))[:, None, None, :]  # (B, 1, 1, W)
    return padded[torch.arange(batch)[:, None, None, None], torch.arange(channels)[None, :, None, None], rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirrors a random half of a (B, C, H, W) batch left to right."""
    flip = torch.rand(len(images), generator=generator) < 0.5  # (B,)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def _epoch_order(size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``length`` indices into ``range(size)``: fresh permutations laid end to end.

    All permutations come from one tensor op (argsort of float64 uniforms, (repeats, size)), so
    the Python work per epoch does not grow with the number of permutations.
    """
    repeats = -(-length // size)
    keys = torch.rand(repeats, size, generator=generator, dtype=torch.float64)
    return keys.argsort(dim=1).flatten()[:length]


class SemiSupervisedBatches:
    """One epoch of (labeled images, labels, unlabeled images) batches: one pass over the unlabeled pool.

    The pool is reshuffled every epoch and its last partial batch is dropped, as in the reference,
    so every image is seen over the epochs but an epoch has ``len(pool) // batch_size`` batches.

    The labeled batch is drawn independently of the unlabeled one, from permutations of the
    (small) labeled set laid end to end, as in openai/improved-gan.  Shuffling is seeded by
    ``seed`` and the epoch number, so an epoch's batches are the same on a resumed run.

    ``augment_shift`` (pixels) and ``augment_flip`` augment the labeled and the unlabeled images of
    each batch (the discriminator's real inputs) with random translations and left-right mirroring.

    It is resumable (Lightning's ``state_dict`` / ``load_state_dict`` protocol): a checkpoint taken
    mid-epoch records how many of the epoch's batches were trained on (``progress``), and the
    resumed epoch goes on from the next batch, so a resumed run sees the same batches.

    Under DDP (``num_shards`` > 1) every rank draws the same epoch order and takes every
    ``num_shards``-th batch from ``shard``: the unlabeled pool is sharded, the labeled set is not.
    """

    def __init__(self, labeled_images: torch.Tensor, labels: torch.Tensor, unlabeled_images: torch.Tensor,
                 batch_size: int, labeled_batch_size: int, seed: int, epoch: Callable[[], int],
                 augment_shift: int = 0, augment_flip: bool = False,
                 progress: Callable[[], tuple[int, int]] | None = None, shard: int = 0, num_shards: int = 1) -> None:
        self.labeled_images, self.labels, self.unlabeled_images = labeled_images, labels, unlabeled_images
        self.batch_size, self.labeled_batch_size = batch_size, labeled_batch_size
        self.seed, self.epoch = seed, epoch
        self.augment_shift, self.augment_flip = augment_shift, augment_flip
        self.progress = progress
        self.shard, self.num_shards = shard, num_shards
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches already trained) from a checkpoint

    def state_dict(self) -> dict[str, int]:
        """The epoch and how many of its batches were trained on (saved in checkpoints by Lightning)."""
        epoch, done = self.progress() if self.progress is not None else (self.epoch(), 0)
        return {"epoch": int(epoch), "batches_done": int(done)}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._resume_at = (int(state_dict.get("epoch", -1)), int(state_dict.get("batches_done", 0)))

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.augment_shift > 0:
            images = random_shift(images, self.augment_shift, generator)
        if self.augment_flip:
            images = random_flip(images, generator)
        return images

    def _total_batches(self) -> int:
        """Batches in one epoch over all shards together."""
        return max(self.num_shards, len(self.unlabeled_images) // self.batch_size)

    def __len__(self) -> int:
        return self._total_batches() // self.num_shards

    def __iter__(self) -> Iterator[TrainBatch]:
        epoch = self.epoch()
        skip = 0
        if self._resume_at is not None:
            if self._resume_at[0] == epoch:
                skip = self._resume_at[1]
            self._resume_at = None
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        num_batches = self._total_batches()
        unlabeled_order = _epoch_order(len(self.unlabeled_images), num_batches * self.batch_size, generator)
        labeled_order = _epoch_order(len(self.labeled_images), num_batches * self.labeled_batch_size, generator)
        batches = zip(unlabeled_order.split(self.batch_size), labeled_order.split(self.labeled_batch_size))
        augment = self.augment_shift > 0 or self.augment_flip
        for position, (unlabeled_idx, labeled_idx) in enumerate(batches):
            if position >= len(self) * self.num_shards:
                break
            mine = position % self.num_shards == self.shard
            local_index = position // self.num_shards
            if not augment and (not mine or local_index < skip):
                continue
            labeled, unlabeled = self.labeled_images[labeled_idx], self.unlabeled_images[unlabeled_idx]
            if augment:  # drawn for every batch, so that the augmentation stream does not depend on skipping
                labeled, unlabeled = self._augment(labeled, generator), self._augment(unlabeled, generator)
            if mine and local_index >= skip:
                yield labeled, self.labels[labeled_idx], unlabeled


class EvalBatches:
    """Sequential (images, labels) batches for validation and test (under DDP, rank ``shard``'s share)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shard: int = 0,
                 num_shards: int = 1) -> None:
        if num_shards > 1:  # every rank its own images; the metrics sync across ranks
            images, labels = images[shard::num_shards], labels[shard::num_shards]
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
        augment_shift: augments the training batches' real images with random translations of up to
            this many pixels (0: off).
        augment_flip: augments them with random left-right mirroring.
        synthetic_labeled_dir: a folder of ``<class name>/*.png`` images (e.g. written by
            ``ssgan sample``) added to the labeled training images with the folder's class.
    """

    name = "base"
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...] = ()
    labels_optional = False  # True: neither num_labeled nor label_fraction means "every labeled image"

    # ssgan.config.check_argument_types leaves these to check_label_request, whose messages say more
    checks_own_argument_types = frozenset({"num_labeled", "label_fraction"})

    def __init__(self, num_labeled: int | None = None, label_fraction: float | None = None, num_val: int = 100,
                 split_seed: int = 0, labeled_in_unlabeled: bool = True, batch_size: int = 100,
                 labeled_batch_size: int | None = None, eval_batch_size: int = 1000,
                 split_cache_dir: str | None = None, shuffle_seed: int | None = None,
                 augment_shift: int = 0, augment_flip: bool = False, synthetic_labeled_dir: str | None = None) -> None:
        super().__init__()
        # the init arguments, kept in checkpoints so that the tools rebuild the same data and split
        self.save_hyperparameters(logger=False)
        if augment_shift < 0:
            raise UserError(f"data.augment_shift={augment_shift} is negative; use 0 (off) or a number of pixels, e.g. "
                            "data.augment_shift=2")
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} is not a batch size; use 1 or more, e.g. data.batch_size=100")
        if labeled_batch_size is not None and labeled_batch_size < 1:
            raise UserError(f"data.labeled_batch_size={labeled_batch_size} is not a batch size; use 1 or more, or null "
                            "(the labeled batch is then as large as data.batch_size)")
        if eval_batch_size < 1:
            raise UserError(f"data.eval_batch_size={eval_batch_size} is not a batch size; use 1 or more, e.g. "
                            "data.eval_batch_size=1000")
        if split_seed < 0:
            raise UserError(f"data.split_seed={split_seed} is negative; use 0 or more, e.g. data.split_seed=0")
        if split_seed >= 2**63:  # the split cache records it as a 64-bit integer
            raise UserError(f"data.split_seed={split_seed} is too large; use a whole number below 2**63, "
                            "e.g. data.split_seed=0")
        if not (self.labels_optional and num_labeled is None and label_fraction is None):
            check_label_request(num_labeled, label_fraction)  # now, before any data is read
        self.num_labeled, self.label_fraction, self.num_val = num_labeled, label_fraction, num_val
        self.split_seed, self.labeled_in_unlabeled = split_seed, labeled_in_unlabeled
        self.batch_size, self.labeled_batch_size = batch_size, labeled_batch_size or batch_size
        self.eval_batch_size, self.split_cache_dir, self.shuffle_seed = eval_batch_size, split_cache_dir, shuffle_seed
        problem = unwritable_cache_reason(split_cache_dir, "data.split_cache_dir", "the split is drawn on every run")
        if problem:
            raise UserError(f"cannot write data.split_cache_dir={split_cache_dir}: {problem}; set SSGAN_CACHE_DIR to a "
                            "folder you can write to, or data.split_cache_dir=null to draw the split on every run")
        self.augment_shift, self.augment_flip = augment_shift, augment_flip
        self.synthetic_labeled_dir = synthetic_labeled_dir
        if synthetic_labeled_dir is not None and not Path(synthetic_labeled_dir).expanduser().is_dir():
            what = "is a file, not a folder" if Path(synthetic_labeled_dir).expanduser().exists() else "does not exist"
            raise UserError(f"data.synthetic_labeled_dir={synthetic_labeled_dir} {what}; "
                            "give the folder that `ssgan sample` wrote")
        self.synthetic_images = torch.empty(0, dtype=torch.uint8)
        self.synthetic_labels = torch.empty(0, dtype=torch.long)
        self.data: sources.ImageData | None = None
        self.split: Split | None = None
        # self-training's pseudo-labeled training images (indices into the training images) and labels
        self.pseudo_indices = torch.empty(0, dtype=torch.long)
        self.pseudo_labels = torch.empty(0, dtype=torch.long)
        self._train_batches: SemiSupervisedBatches | None = None

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
        root = getattr(self, "root", None)
        where = f" under {root}" if root is not None else ""
        shapes = [("training", data.image_shape)]
        if len(data.test_images):
            shapes.append(("test", tuple(data.test_images.shape[1:])))
        for part, shape in shapes:  # test images of another size would stop the run after training, or test it wrongly
            if shape != tuple(self.image_shape):
                raise UserError(f"the {self.name} {part} images{where} have shape {shape}, not {tuple(self.image_shape)}; "
                                f"point data.root at the {self.name} files")
        split = self.make_split(data)
        if len(split.unlabeled) == 0 and stage in (None, "fit"):
            raise UserError(f"{self.name} leaves no unlabeled images to train on (data.labeled_in_unlabeled=false, and "
                            f"every training image is labeled or kept for validation); set data.labeled_in_unlabeled=true"
                            f"{self.no_unlabeled_hint}")
        if len(split.unlabeled) < self.batch_size and stage in (None, "fit"):
            # an epoch is then one batch that repeats the pool (a step costs the batch size, whatever the pool's)
            log.warning("data.batch_size=%d is more than the %d unlabeled images, so each batch holds every one of them "
                        "about %.0f times; use at most data.batch_size=%d", self.batch_size, len(split.unlabeled),
                        self.batch_size / len(split.unlabeled), len(split.unlabeled))
        self.split = split
        if self.synthetic_labeled_dir is not None:
            self.synthetic_images, self.synthetic_labels = self._read_synthetic()
            counts = torch.bincount(self.synthetic_labels, minlength=len(self.classes)).tolist()
            log.info("%d synthetic labeled image(s) from %s join the labeled training set (%s)", len(self.synthetic_labels),
                     self.synthetic_labeled_dir, ", ".join(f"{name} {count}" for name, count in zip(self.classes, counts)))
        self.data = data

    no_unlabeled_hint = " or label fewer images"  # how else to give an empty unlabeled pool images

    def make_split(self, data: sources.ImageData) -> Split:
        """The class-balanced labeled/validation/unlabeled split of the training images (cached)."""
        labels = data.train_labels.numpy()
        counts = per_class_counts(labels, self.num_classes, self.num_labeled, self.label_fraction, self.num_val)
        return cached_split(self.split_cache_dir, self.name, labels, self.num_classes, counts,
                            self.num_val, self.split_seed, self.labeled_in_unlabeled)

    def _read_synthetic(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The images of ``synthetic_labeled_dir/<class name>/``, labeled by their folder's class."""
        from ssgan.data.images import class_folder_names, class_folders, list_images, read_images

        folder = Path(self.synthetic_labeled_dir).expanduser()
        # folder names are class names with "/" made "_" (e.g. Fashion-MNIST's "T-shirt/top"), as sample writes them
        label_of = {name: label for label, name in enumerate(class_folder_names(self.classes))}
        images, labels = [], []
        for class_dir in class_folders(folder):
            if class_dir.name not in label_of:
                raise UserError(f"{class_dir} is not a class of {self.name} ({', '.join(self.classes)}); "
                                "use samples of a model trained on this data set")
            decoded, _, _ = read_images(list_images(class_dir), self.image_shape)
            images.append(decoded)
            labels.append(torch.full((len(decoded),), label_of[class_dir.name], dtype=torch.long))
        if not images or sum(len(x) for x in images) == 0:
            raise UserError(f"data.synthetic_labeled_dir={folder} holds no images in class folders")
        return torch.cat(images), torch.cat(labels)

    @property
    def labeled_count(self) -> int:
        """The number of labeled training images (known after ``setup``)."""
        assert self.split is not None, "call setup() first"
        return len(self.split.labeled)

    @property
    def classes(self) -> tuple[str, ...]:
        """The K class names, known before the data are read."""
        return tuple(self.class_names) or tuple(str(k) for k in range(self.num_classes))

    @property
    def has_test_set(self) -> bool:
        """Whether there are test images (a folder without ``test/`` has none)."""
        assert self.data is not None, "call setup() first"
        return len(self.data.test_images) > 0

    def _subset(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.data is not None
        index = torch.from_numpy(indices)
        return self.data.train_images[index], self.data.train_labels[index]

    def labeled_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The labeled training images and labels: the split's, plus self-training's pseudo-labeled
        ones and the synthetic labeled images, if any."""
        assert self.split is not None and self.data is not None
        images, labels = self._subset(self.split.labeled)
        if len(self.pseudo_indices):
            images = torch.cat([images, self.data.train_images[self.pseudo_indices]])
            labels = torch.cat([labels, self.pseudo_labels])
        if len(self.synthetic_labels):
            images, labels = torch.cat([images, self.synthetic_images]), torch.cat([labels, self.synthetic_labels])
        return images, labels

    def pseudo_label_candidates(self, include_pseudo_labeled: bool = False) -> np.ndarray:
        """Indices of unlabeled-pool images that may get a pseudo-label: never a labeled, validation or test image."""
        assert self.split is not None
        candidates = np.setdiff1d(self.split.unlabeled, self.split.labeled)
        if not include_pseudo_labeled:
            candidates = np.setdiff1d(candidates, self.pseudo_indices.numpy())
        return candidates

    def set_pseudo_labels(self, indices: np.ndarray, labels: np.ndarray) -> None:
        """Replaces the pseudo-labeled set; the training batches use it from the next epoch on."""
        assert self.split is not None
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and not np.isin(indices, self.pseudo_label_candidates(include_pseudo_labeled=True)).all():
            raise ValueError("pseudo-labels must come from the unlabeled pool, outside the labeled and validation images")
        self.pseudo_indices = torch.from_numpy(indices.copy())
        self.pseudo_labels = torch.from_numpy(np.asarray(labels, dtype=np.int64).copy())
        if self._train_batches is not None:
            self._train_batches.labeled_images, self._train_batches.labels = self.labeled_set()

    # the init arguments that decide which images are labeled, validation and unlabeled
    SPLIT_SETTINGS = ("num_labeled", "label_fraction", "num_val", "split_seed", "labeled_in_unlabeled")

    def changed_split_settings(self, checkpoint: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """``(setting, the checkpoint's value, this datamodule's)`` for each split setting that differs:
        a resumed run trains on the checkpoint's split, so these would report a split it never trained on."""
        saved = checkpoint.get("datamodule_hyper_parameters") or {}
        return [(key, saved[key], self.hparams[key]) for key in self.SPLIT_SETTINGS
                if key in saved and key in self.hparams and saved[key] != self.hparams[key]]

    def data_fingerprint(self) -> str:
        """What the split's positions point into: the training labels, in order (the files, for a folder)."""
        assert self.data is not None, "setup() first"
        labels = np.ascontiguousarray(self.data.train_labels.numpy(), dtype=np.int64)
        return hashlib.sha1(labels.tobytes()).hexdigest()[:16]

    changed_data_hint = "resume with the data set the run started with"

    def changed_data(self, checkpoint: dict[str, Any]) -> bool:
        """Whether ``checkpoint``'s split was drawn from other training data than this datamodule holds (its
        positions would then name other images: validation images the run trained on, for one)."""
        return self._holds_other_data(checkpoint.get(type(self).__qualname__, {}).get("data_fingerprint"))

    def _holds_other_data(self, saved_fingerprint: str | None) -> bool:
        if saved_fingerprint is None:  # a checkpoint from before fingerprints, or of another datamodule class
            return False
        self.setup()
        return saved_fingerprint != self.data_fingerprint()

    def split_in(self, checkpoint: dict[str, Any]) -> dict[str, Any] | None:
        """The split (indices per part) that a checkpoint of a run on this datamodule's class holds, if any.

        Lightning stores ``state_dict()`` under the datamodule class's name.
        """
        return checkpoint.get(type(self).__qualname__, {}).get("split")

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the split and the pseudo-labels, so a resumed run trains on the same images."""
        state: dict[str, Any] = {"pseudo_indices": self.pseudo_indices.tolist(), "pseudo_labels": self.pseudo_labels.tolist()}
        if self.split is not None:
            state["split"] = {part: torch.from_numpy(indices.copy()) for part, indices in vars(self.split).items()}
            state["data_fingerprint"] = self.data_fingerprint()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.state.fn in ("test", "predict"):
            # the test images do not depend on the split: a folder whose training images changed since the
            # run still tests (its split would name other images, which test and predict never read)
            return
        indices = np.asarray(state_dict.get("pseudo_indices", []), dtype=np.int64)
        labels = np.asarray(state_dict.get("pseudo_labels", []), dtype=np.int64)
        if len(indices) != len(labels):
            raise UserError("the checkpoint's pseudo-labels are corrupt (indices and labels differ in number)")
        if self.split is None:
            self.setup()
        if self._holds_other_data(state_dict.get("data_fingerprint")):
            raise UserError(f"the checkpoint's split was drawn from other training images than {self.name} holds now; "
                            f"{self.changed_data_hint}")
        if "split" in state_dict:  # the checkpoint's split wins over the one drawn now (e.g. from a changed cache)
            self._restore_split(state_dict["split"])
        try:
            self.set_pseudo_labels(indices, labels)  # checks they lie in this split's unlabeled pool
        except ValueError:
            raise UserError("the checkpoint's pseudo-labels do not fit this split; resume with the data settings "
                            "(num_labeled, num_val, split_seed) the run started with") from None

    def _restore_split(self, saved: dict[str, torch.Tensor]) -> None:
        assert self.split is not None and self.data is not None
        split = Split(**{part: np.asarray(saved[part], dtype=np.int64) for part in vars(self.split)})
        if any(len(indices) and (indices.min() < 0 or indices.max() >= len(self.data.train_labels))
               for indices in vars(split).values()):
            raise UserError(f"the checkpoint's split does not fit the {len(self.data.train_labels)} training images of "
                            f"{self.name}; resume with the data set the run started with")
        if not all(np.array_equal(getattr(split, part), indices) for part, indices in vars(self.split).items()):
            # its validation images are those it never trained on, so validate and test use it too
            log.warning("the checkpoint's split differs from the one drawn now; the checkpoint's is used")
        self.split = split

    def train_dataloader(self) -> SemiSupervisedBatches:
        assert self.split is not None
        labeled_images, labels = self.labeled_set()
        unlabeled_images, _ = self._subset(self.split.unlabeled)  # the labels of the pool are never used
        seed = self.shuffle_seed if self.shuffle_seed is not None else torch.initial_seed() % (2**31)
        if self._num_shards() > 1:
            # the batch order must be the same on every rank: rank 0's seed (ranks may seed differently)
            seed = int(self.trainer.strategy.broadcast(seed, src=0))
        self._train_batches = SemiSupervisedBatches(labeled_images, labels, unlabeled_images, self.batch_size,
                                                    self.labeled_batch_size, seed, self._current_epoch,
                                                    self.augment_shift, self.augment_flip, self._training_progress,
                                                    *self._shard())
        return self._train_batches

    def _num_shards(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def _shard(self) -> tuple[int, int]:
        """(this rank, number of ranks): the unlabeled pool and the evaluation sets are sharded under DDP."""
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def _training_progress(self) -> tuple[int, int]:
        """(epoch, batches of it trained on), for a mid-epoch checkpoint."""
        if self.trainer is None:
            return 0, 0
        return self.trainer.current_epoch, self.trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def val_dataloader(self) -> EvalBatches | list:
        assert self.split is not None
        if len(self.split.val) == 0:
            return []
        return EvalBatches(*self._subset(self.split.val), self.eval_batch_size, *self._shard())

    def test_dataloader(self) -> EvalBatches | list:
        assert self.data is not None
        if not self.has_test_set:
            return []
        return EvalBatches(self.data.test_images, self.data.test_labels, self.eval_batch_size, *self._shard())

    def predict_dataloader(self) -> EvalBatches | list:
        """The test images (``ssgan-cli predict``; ``ssgan predict`` takes any files)."""
        return self.test_dataloader()

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0


class DigitsDataModule(SemiSupervisedDataModule):
    """scikit-learn's 8x8 digits (embedded; 1,350 training and 447 test images, a fixed stratified split)."""

    name = "digits"
    num_classes = 10
    image_shape = (1, 8, 8)
    class_names = sources.DIGIT_NAMES

    def load(self) -> sources.ImageData:
        return sources.load_digits_data()


class _DownloadableDataModule(SemiSupervisedDataModule):
    """A data set read from ``root``, downloaded through torchvision if missing and ``download``."""

    def __init__(self, root: str = "data", download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root, self.download = str(Path(root).expanduser()), download
        try:
            root_is_a_file = Path(self.root).is_file()
        except OSError as error:  # a folder above it that this user cannot read (Python 3.11 raises)
            raise UserError(f"cannot read data.root={root} ({error.strerror or error}); ask for read access to it, or "
                            "point data.root at a copy you can read") from None
        if root_is_a_file:  # e.g. one of the data set's files: "files not found under" it said
            raise UserError(f"data.root={root} is a file, not a folder; point it at the folder holding the data set's "
                            f"files, e.g. data.root={Path(self.root).parent}")


class MNISTDataModule(_DownloadableDataModule):
    """MNIST (28x28 grey): IDX files under ``root``, or downloaded there by torchvision."""

    name = "mnist"
    num_classes = 10
    image_shape = (1, 28, 28)
    class_names = sources.DIGIT_NAMES

    def load(self) -> sources.ImageData:
        return sources.load_mnist_data(self.root, self.download)


class FashionMNISTDataModule(_DownloadableDataModule):
    """Fashion-MNIST (28x28 grey): IDX files under ``root`` (e.g. /usr/share/datasets/fashion-mnist)."""

    name = "fashion_mnist"
    num_classes = 10
    image_shape = (1, 28, 28)
    class_names = sources.FASHION_NAMES

    def load(self) -> sources.ImageData:
        return sources.load_fashion_mnist_data(self.root, self.download)


class CIFAR10DataModule(_DownloadableDataModule):
    """CIFAR-10 (32x32 RGB): python pickle batches under ``root/cifar-10-batches-py``."""

    name = "cifar10"
    num_classes = 10
    image_shape = (3, 32, 32)
    class_names = sources.CIFAR10_NAMES

    def load(self) -> sources.ImageData:
        return sources.load_cifar10_data(self.root, self.download)


class SVHNDataModule(_DownloadableDataModule):
    """SVHN cropped digits (32x32 RGB): ``train_32x32.mat`` and ``test_32x32.mat`` under ``root``."""

    name = "svhn"
    num_classes = 10
    image_shape = (3, 32, 32)
    class_names = sources.DIGIT_NAMES

    def load(self) -> sources.ImageData:
        return sources.load_svhn_data(self.root, self.download)
