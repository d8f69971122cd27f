"""The labeled/validation/unlabeled split: balance, determinism, the cache and the rules on counts."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ssgan.data import DigitsDataModule, MNISTDataModule, cached_split, make_split, per_class_counts
from ssgan.errors import UserError

LABELS = np.repeat(np.arange(10), 30)[np.random.default_rng(0).permutation(300)]


def test_split_is_class_balanced_and_disjoint() -> None:
    counts = per_class_counts(LABELS, 10, num_labeled=50, label_fraction=None)
    split = make_split(LABELS, 10, counts, num_val=20, split_seed=3, labeled_in_unlabeled=False)
    assert np.bincount(LABELS[split.labeled], minlength=10).tolist() == [5] * 10
    assert np.bincount(LABELS[split.val], minlength=10).tolist() == [2] * 10
    assert not set(split.labeled) & set(split.val)
    assert not set(split.val) & set(split.unlabeled)
    assert not set(split.labeled) & set(split.unlabeled)
    assert len(split.labeled) + len(split.val) + len(split.unlabeled) == 300


def test_labeled_images_sit_in_the_unlabeled_pool_by_default_but_validation_never_does() -> None:
    counts = per_class_counts(LABELS, 10, 50, None)
    split = make_split(LABELS, 10, counts, num_val=20, split_seed=0)
    assert set(split.labeled) <= set(split.unlabeled)
    assert not set(split.val) & set(split.unlabeled)
    assert len(split.unlabeled) == 280


def test_split_depends_only_on_the_split_seed() -> None:
    counts = per_class_counts(LABELS, 10, 50, None)
    first, again, other = (make_split(LABELS, 10, counts, 20, seed) for seed in (7, 7, 8))
    assert np.array_equal(first.labeled, again.labeled) and np.array_equal(first.val, again.val)
    assert not np.array_equal(first.labeled, other.labeled)


# Six images in each of three classes, in no class order, and the split that seed 11 draws from them
# (2 labeled and 1 validation image a class). Pasted from a run: the README promises the same split
# in every run and on every machine, so these indices must never change.
GOLDEN_LABELS = np.array([2, 0, 1, 1, 2, 0, 0, 2, 1, 0, 2, 1, 1, 0, 2, 2, 0, 1])
GOLDEN_LABELED = [5, 7, 8, 9, 10, 17]
GOLDEN_VAL = [1, 2, 14]
GOLDEN_REST = [0, 3, 4, 6, 11, 12, 13, 15, 16]  # the unlabeled pool without the labeled images


def _golden_split(labeled_in_unlabeled: bool = True):
    counts = per_class_counts(GOLDEN_LABELS, 3, 6, None, 3)
    return make_split(GOLDEN_LABELS, 3, counts, 3, 11, labeled_in_unlabeled)


def test_the_split_of_a_seed_is_the_same_in_every_run() -> None:
    # a check within one process cannot see a split that drifts between runs (e.g. a seed offset)
    split = _golden_split()
    assert split.labeled.tolist() == GOLDEN_LABELED
    assert split.val.tolist() == GOLDEN_VAL
    assert split.unlabeled.tolist() == sorted(GOLDEN_REST + GOLDEN_LABELED)
    assert _golden_split(labeled_in_unlabeled=False).unlabeled.tolist() == GOLDEN_REST


def test_the_split_ignores_the_global_random_states_and_the_training_seed(tmp_path: Path, monkeypatch) -> None:
    # The training seed (pl.seed_everything) and any global NumPy / torch / random state must not
    # reach the split: runs of one split_seed with other training seeds compare the same labels.
    import random

    import pytorch_lightning as pl

    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # seed_everything sets them: undone after the test
        monkeypatch.setenv(name, os.environ.get(name, ""))
    numpy_state, torch_state, python_state = np.random.get_state(), torch.get_rng_state(), random.getstate()
    try:
        for seed in (0, 1, 7, 999, 12345, 2**31 - 1):
            np.random.seed(seed)
            torch.manual_seed(seed + 1)
            random.seed(seed + 2)
            np.random.random(seed % 5)  # and a state moved on from its seed
            assert _golden_split().labeled.tolist() == GOLDEN_LABELED, seed
            assert _golden_split().val.tolist() == GOLDEN_VAL, seed
            pl.seed_everything(seed, workers=True)
            split = _golden_split()
            assert split.labeled.tolist() == GOLDEN_LABELED and split.val.tolist() == GOLDEN_VAL, seed
            assert split.unlabeled.tolist() == sorted(GOLDEN_REST + GOLDEN_LABELED), seed
            cached = cached_split(tmp_path / str(seed), "toy", GOLDEN_LABELS, 3,
                                  per_class_counts(GOLDEN_LABELS, 3, 6, None, 3), 3, 11)
            assert cached.labeled.tolist() == GOLDEN_LABELED and cached.val.tolist() == GOLDEN_VAL, seed
    finally:  # later tests find the global states as they were
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        random.setstate(python_state)


def test_a_smaller_labeled_set_is_a_subset_of_a_larger_one() -> None:
    small = make_split(LABELS, 10, per_class_counts(LABELS, 10, 20, None), 0, 5)
    large = make_split(LABELS, 10, per_class_counts(LABELS, 10, 100, None), 0, 5)
    assert set(small.labeled) <= set(large.labeled)


def test_label_fraction_takes_that_fraction_of_every_class() -> None:
    labels = np.concatenate([np.zeros(100, int), np.ones(50, int)])
    assert per_class_counts(labels, 2, None, 0.1).tolist() == [10, 5]
    assert per_class_counts(labels, 2, None, 1.0).tolist() == [100, 50]


@pytest.mark.parametrize(("fraction", "per_class"), [(0.0003, 2), (0.0061, 30), (0.0215, 108), (0.0001, 0), (0.0005, 2)])
def test_a_label_fraction_rounds_exact_halves_to_even_as_written(fraction: float, per_class: int) -> None:
    # 5,000 images a class (CIFAR-10): 5000 * 0.0003 is 1.5 exactly, which floating point once rounded to 1
    # (and 30.5 to 31, 107.5 to 107)
    labels = np.repeat(np.arange(10), 5000)
    if per_class == 0:
        with pytest.raises(UserError, match=r"gives 0 labels for some class; use at least 0.00011$"):
            per_class_counts(labels, 10, None, fraction)
        return
    assert per_class_counts(labels, 10, None, fraction).tolist() == [per_class] * 10


def test_cache_is_written_once_and_reused(tmp_path: Path) -> None:
    counts = per_class_counts(LABELS, 10, 50, None)
    split = cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
    files = list((tmp_path / "toy").iterdir())
    assert [f.name for f in files] == ["labeled50_val20_seed4.npz"]
    # Tamper with the cached file: a second call must read it, not draw the split again.
    with np.load(files[0]) as cached:
        data = dict(cached)
    data["labeled"] = data["labeled"][::-1].copy()
    np.savez(files[0], **data)
    reused = cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
    assert np.array_equal(reused.labeled, split.labeled[::-1])
    assert not list(tmp_path.glob("toy/*.tmp*"))  # the atomic write leaves no temporary file


def test_cache_is_ignored_when_the_data_set_size_changed(tmp_path: Path) -> None:
    counts = per_class_counts(LABELS, 10, 50, None)
    cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
    bigger = np.concatenate([LABELS, LABELS])
    split = cached_split(tmp_path, "toy", bigger, 10, counts, 20, 4)
    assert split.unlabeled.max() >= 300


def test_cache_drawn_from_other_labels_of_the_same_size_is_drawn_again(tmp_path: Path) -> None:
    # e.g. data.root moved from MNIST to Kuzushiji-MNIST: the same file names, sizes and class counts
    counts = per_class_counts(LABELS, 10, 50, None)
    cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
    shuffled = np.random.default_rng(1).permutation(LABELS)
    split = cached_split(tmp_path, "toy", shuffled, 10, counts, 20, 4)
    assert np.array_equal(np.bincount(shuffled[split.labeled], minlength=10), counts)  # class-balanced for these labels
    assert np.array_equal(np.bincount(shuffled[split.val], minlength=10), np.full(10, 2))


def test_a_cache_file_of_another_split_copied_into_place_is_drawn_again(tmp_path: Path, caplog) -> None:
    # once used as it was: 7 validation images reported as data.num_val=20's, or split seed 5's labels as seed 4's
    counts = per_class_counts(LABELS, 10, 50, None)
    for num_val, seed in ((20, 4), (10, 4), (20, 5)):
        cached_split(tmp_path, "toy", LABELS, 10, counts, num_val, seed)
    wanted = tmp_path / "toy" / "labeled50_val20_seed4.npz"
    fresh = make_split(LABELS, 10, counts, 20, 4)
    for other in ("labeled50_val10_seed4.npz", "labeled50_val20_seed5.npz"):
        wanted.write_bytes((tmp_path / "toy" / other).read_bytes())
        with caplog.at_level("INFO", logger="ssgan.data.split"):
            split = cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
        assert np.array_equal(split.labeled, fresh.labeled) and np.array_equal(split.val, fresh.val), other
        assert "is not this split's" in caplog.text


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "empty"])
def test_a_damaged_cache_file_is_drawn_again(tmp_path: Path, damage: str) -> None:
    counts = per_class_counts(LABELS, 10, 50, None)
    split = cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
    path = next((tmp_path / "toy").iterdir())
    data = path.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped byte":
        data = data[:200] + bytes([data[200] ^ 0xFF]) + data[201:]
    else:
        data = b""
    path.write_bytes(data)
    again = cached_split(tmp_path, "toy", LABELS, 10, counts, 20, 4)
    assert all(np.array_equal(getattr(again, part), getattr(split, part)) for part in ("labeled", "val", "unlabeled"))
    with np.load(path) as rewritten:  # and the file is whole again
        assert np.array_equal(rewritten["labeled"], split.labeled)


def test_the_suggested_fixes_are_accepted_and_the_next_values_are_not() -> None:
    # LABELS: 30 images a class
    def suggestion(num_labeled, fraction, num_val=0) -> str:
        with pytest.raises(UserError) as error:
            per_class_counts(LABELS, 10, num_labeled, fraction, num_val)
        return str(error.value).rsplit(" ", 1)[1]

    assert suggestion(305, None) == "300"  # not "300 or 310": the data set holds 30 a class
    per_class_counts(LABELS, 10, 300, None)
    fraction = float(suggestion(None, 0.001))  # the smallest two-digit fraction that gives every class a label
    assert per_class_counts(LABELS, 10, None, fraction).min() == 1
    with pytest.raises(UserError, match="gives 0 labels"):
        per_class_counts(LABELS, 10, None, round(fraction - 0.001, 3))
    num_val = int(suggestion(50, None, 300).split("=")[1])
    per_class_counts(LABELS, 10, 50, None, num_val)  # room left for the 5 labels a class asked for
    with pytest.raises(UserError):
        per_class_counts(LABELS, 10, 50, None, num_val + 1)


def test_no_test_image_reaches_training_or_validation(idx_root: Path) -> None:
    # The fixture's images are random, so equal rows mean the same image.
    datamodule = MNISTDataModule(root=str(idx_root), download=False, num_labeled=30, num_val=20, split_cache_dir=None)
    datamodule.setup()
    test_rows = {row.tobytes() for row in datamodule.data.test_images.numpy()}
    served = [*datamodule.train_dataloader(), *datamodule.val_dataloader()]
    for batch in served:
        for images in (batch[0], batch[-1]):  # labeled and unlabeled images; validation images
            assert not test_rows & {row.tobytes() for row in images.numpy()}


def test_digits_test_split_is_fixed_and_stratified(tmp_path: Path) -> None:
    datamodule = DigitsDataModule(num_labeled=50, num_val=100, split_seed=1, split_cache_dir=str(tmp_path))
    datamodule.setup()
    data = datamodule.data
    assert len(data.train_images) == 1350 and len(data.test_images) == 447
    assert np.bincount(data.test_labels.numpy()).min() >= 43  # stratified
    again = DigitsDataModule(num_labeled=50, split_seed=2)
    again.setup()
    assert torch.equal(again.data.test_images, data.test_images)  # the test split does not move with split_seed


def test_validation_set_does_not_move_with_the_number_of_labels() -> None:
    small = make_split(LABELS, 10, per_class_counts(LABELS, 10, 20, None), 30, 5)
    large = make_split(LABELS, 10, per_class_counts(LABELS, 10, 100, None), 30, 5)
    assert np.array_equal(small.val, large.val)


def test_a_fraction_and_a_count_with_the_same_total_never_share_a_cache_file(tmp_path: Path) -> None:
    labels = np.concatenate([np.full(60, k) for k in range(5)] + [np.full(40, k) for k in range(5, 10)])
    from_fraction = per_class_counts(labels, 10, None, 0.2)  # 12 x 5 + 8 x 5 = 100, uneven
    from_count = per_class_counts(labels, 10, 100, None)  # 10 per class
    uneven = cached_split(tmp_path, "toy", labels, 10, from_fraction, 0, 0)
    even = cached_split(tmp_path, "toy", labels, 10, from_count, 0, 0)
    assert np.bincount(labels[even.labeled]).tolist() == [10] * 10
    assert np.bincount(labels[uneven.labeled]).tolist() == [12] * 5 + [8] * 5
    assert len(list((tmp_path / "toy").iterdir())) == 2


def test_cache_files_are_readable_by_others(tmp_path: Path) -> None:
    # A shared split cache is read by other users: the file gets a plain new file's mode under the
    # umask (group/other read under 022), not the owner-only mode of the temporary it was written as.
    # The umask is the process's: set it only here, and put it back for the tests after this one.
    counts = per_class_counts(LABELS, 10, 50, None)
    before = os.umask(0o022)
    try:
        for umask, expected in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
            os.umask(umask)
            cached_split(tmp_path / oct(umask), "toy", LABELS, 10, counts, 20, 4)
            mode = next((tmp_path / oct(umask) / "toy").iterdir()).stat().st_mode
            assert mode & 0o777 == expected, (oct(umask), oct(mode))
    finally:
        os.umask(before)


@pytest.mark.parametrize(
    ("num_labeled", "fraction", "message"),
    [
        (50, 0.1, "set only one of data.num_labeled and data.label_fraction"),
        (5, None, "below the number of classes (10); use at least 10"),
        (55, None, "not divisible by the 10 classes; use 50 or 60"),
        (400, None, "more than the data set holds"),
        (400, None, "more than the data set holds (300 training images, 30 in the smallest class, 0 kept for validation); use at most 300"),
        (None, 0.0, "outside (0, 1]"),
        (None, 1.5, "outside (0, 1]"),
        (None, 0.01, "gives 0 labels for some class"),
        (None, None, "set data.num_labeled"),
    ],
)
def test_bad_label_counts_are_refused_with_the_fix(num_labeled, fraction, message) -> None:
    with pytest.raises(UserError, match=None) as error:
        per_class_counts(LABELS, 10, num_labeled, fraction)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def _draw_repeatedly(cache_dir: str, rounds: int) -> list[bytes]:
    """Draws (and so reads or writes) the same cached split ``rounds`` times; returns each labeled set."""
    labels = np.repeat(np.arange(10), 200)
    counts = np.full(10, 5)
    path = Path(cache_dir) / "race" / "labeled50_val100_seed3.npz"
    seen = []
    for _ in range(rounds):
        split = cached_split(cache_dir, "race", labels, 10, counts, 100, split_seed=3)
        seen.append(split.labeled.tobytes())
        # read the file as it is now, while the other processes rewrite it: whole or absent, never torn
        # (cached_split itself would quietly redraw a torn file, so it cannot tell)
        try:
            with np.load(path) as cached:
                seen.append(cached["labeled"].tobytes())
        except FileNotFoundError:
            pass
        # force the next draw to write the file again (another process may be reading it now)
        path.unlink(missing_ok=True)
    return seen


def test_concurrent_runs_sharing_a_split_cache_never_see_a_broken_file(tmp_path: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(4) as pool:  # processes of their own, without importing torch anew
        results = pool.starmap(_draw_repeatedly, [(str(tmp_path), 25)] * 4)
    drawn = {labeled for run in results for labeled in run}
    assert len(drawn) == 1  # every process, every time: the same split, never a half-written one
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert not leftovers


def test_the_split_cache_appears_only_once_written_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "toy" / "labeled50_val100_seed0.npz"
    written: list[Path] = []
    savez = np.savez

    def spy(file, **arrays) -> None:
        written.append(Path(file))
        assert not path.exists()  # while the split is being written, readers find no cache file at all
        savez(file, **arrays)

    monkeypatch.setattr(np, "savez", spy)
    cached_split(tmp_path, "toy", np.repeat(np.arange(10), 200), 10, np.full(10, 5), 100, split_seed=0)
    assert len(written) == 1 and written[0] != path and written[0].parent == path.parent  # a temporary beside it
    assert path.is_file() and not written[0].exists()  # renamed into place


def test_a_split_seed_the_cache_cannot_record_is_refused() -> None:
    # it was accepted, and the cache, which could not record it, drew the split again on every run
    with pytest.raises(UserError, match=r"^data.split_seed=18446744073709551616 is too large; use a whole number below 2\*\*63"):
        DigitsDataModule(num_labeled=50, split_seed=2**64)
    DigitsDataModule(num_labeled=50, split_seed=2**63 - 1)


def test_a_read_only_split_cache_is_read_not_refused(tmp_path: Path, monkeypatch, caplog) -> None:
    # a shared cache that this user may read but not write: its splits serve, and what it lacks is drawn each run
    import logging

    import ssgan.atomic as atomic

    cache = tmp_path / "splits"
    first = DigitsDataModule(num_labeled=30, num_val=20, split_cache_dir=str(cache))
    first.setup()
    [cached_file] = (cache / "digits").iterdir()
    with np.load(cached_file) as cached:
        data = dict(cached)
    data["labeled"] = data["labeled"][::-1].copy()  # marked: a read of the file shows
    np.savez(cached_file, **data)

    def refused(path, write, keep_mode=True):
        raise PermissionError(13, "Permission denied")

    # as on a read-only disk (this test may run as root, whom permissions do not stop)
    monkeypatch.setattr(atomic, "unwritable_reason", lambda folder: f"{folder} is not writable (Read-only file system)")
    monkeypatch.setattr(atomic, "atomic_write", refused)
    with caplog.at_level(logging.WARNING, logger="ssgan.atomic"):
        reader = DigitsDataModule(num_labeled=30, num_val=20, split_cache_dir=str(cache))
        reader.setup()
        assert f"data.split_cache_dir={cache} cannot be written" in caplog.text
        assert np.array_equal(reader.split.labeled, first.split.labeled[::-1])
        drawn = DigitsDataModule(num_labeled=50, num_val=20, split_cache_dir=str(cache))  # a split it lacks
        drawn.setup()
        assert len(drawn.split.labeled) == 50 and "going on without caching it" in caplog.text
    assert [path.name for path in (cache / "digits").iterdir()] == [cached_file.name]
    # a cache folder that cannot be made at all is still refused, before any data is read
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(UserError, match="^cannot write data.split_cache_dir=.*notes.txt/splits: .*; set SSGAN_CACHE_DIR"):
        DigitsDataModule(num_labeled=30, num_val=20, split_cache_dir=str(tmp_path / "notes.txt" / "splits"))


@pytest.mark.parametrize(("given", "message"), [
    (50.0, "data.num_labeled=50.0 is a float, not a whole number; write it as one, e.g. data.num_labeled=50"),
    ("50", "data.num_labeled='50' is text, not a whole number; write it as one, e.g. data.num_labeled=50"),
    ("2O", "data.num_labeled=2O is not a whole number of images; use e.g. data.num_labeled=100"),
    (50.5, "data.num_labeled=50.5 is not a whole number of images; use e.g. data.num_labeled=100"),
])
def test_a_label_count_written_as_a_float_or_text_is_told_how_to_write_it(given, message) -> None:
    # 50.0 and '50' were once told they are "not a whole number of images"
    from ssgan.data.split import check_label_request

    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        check_label_request(given, None)
