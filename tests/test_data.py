"""Each data set's real on-disk format, read through the datamodules from tiny fixture files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ssgan.data import (CIFAR10DataModule, DigitsDataModule, FashionMNISTDataModule, MNISTDataModule,
                        SemiSupervisedBatches, SVHNDataModule)
from ssgan.data.sources import read_idx
from ssgan.errors import UserError

from conftest import write_idx

# Labels in no class order: a reader that sorted, shuffled or re-paired images and labels would show.
LABEL_ORDER = np.array([3, 0, 7, 1, 9, 2, 5, 8, 4, 6])


def _known_images(first: int, count: int, channels: int, size: int) -> np.ndarray:
    """``count`` (N, C, H, W) uint8 images whose every pixel says where it sits: image ``first + n``,
    channel, row and column each add a different step (11, 100, 5, 3), so a reader that swaps height
    and width, scrambles the channels or mixes up images reads values other than these."""
    n, c, h, w = np.meshgrid(np.arange(first, first + count), np.arange(channels), np.arange(size), np.arange(size),
                             indexing="ij")
    return ((11 * n + 100 * c + 5 * h + 3 * w) % 256).astype(np.uint8)


def test_idx_reader_round_trip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("module_class", [MNISTDataModule, FashionMNISTDataModule])
def test_idx_datamodules_read_flat_and_torchvision_layouts(tmp_path: Path, layout: str, module_class) -> None:
    # files of known content, so the test checks every pixel and label read, not only the shapes
    train_images, test_images = _known_images(0, 30, 1, 28), _known_images(30, 10, 1, 28)
    train_labels, test_labels = np.tile(LABEL_ORDER, 3), np.roll(LABEL_ORDER, 1)
    folder = tmp_path
    if layout == "torchvision":  # root/<Name>/raw/*.gz, as torchvision downloads them
        folder = tmp_path / ("MNIST" if module_class is MNISTDataModule else "FashionMNIST") / "raw"
        folder.mkdir(parents=True)
    for prefix, images, labels in (("train", train_images, train_labels), ("t10k", test_images, test_labels)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[:, 0])  # IDX images are (N, H, W)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    datamodule = module_class(root=str(tmp_path), download=False, num_labeled=20, num_val=10, split_cache_dir=None)
    datamodule.setup()
    data = datamodule.data
    assert data.train_images.dtype == data.test_images.dtype == torch.uint8
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert np.array_equal(data.train_images.numpy(), train_images)
    assert np.array_equal(data.test_images.numpy(), test_images)
    assert data.train_labels.tolist() == train_labels.tolist() and data.test_labels.tolist() == test_labels.tolist()
    assert len(datamodule.split.labeled) == 20 and len(datamodule.split.val) == 10


def test_cifar10_and_svhn_formats(tmp_path: Path) -> None:
    """Both files decode to the very (N, C, H, W) images written, each with its own label.

    The fixture files hold images of known content in the real layouts: CIFAR-10's pickled batches
    store each image as 3072 bytes, channel by channel (R, G, B planes of 32 rows); SVHN's .mat holds
    X as (32, 32, 3, N), height first, and y in 1..10 with 10 for the digit 0.
    """
    import pickle

    from scipy.io import savemat

    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [(f"data_batch_{i}", _known_images(10 * (i - 1), 10, 3, 32), np.roll(LABEL_ORDER, i))
               for i in range(1, 6)]
    batches.append(("test_batch", _known_images(50, 10, 3, 32), LABEL_ORDER[::-1]))
    for name, images, labels in batches:
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": images.reshape(len(images), -1), "labels": labels.tolist()}, handle)
    cifar = CIFAR10DataModule(root=str(tmp_path / "cifar"), download=False, num_labeled=10, num_val=0,
                              split_cache_dir=None)
    cifar.setup()
    assert cifar.data.train_images.dtype == torch.uint8
    assert np.array_equal(cifar.data.train_images.numpy(), np.concatenate([images for _, images, _ in batches[:5]]))
    assert cifar.data.train_labels.tolist() == np.concatenate([labels for _, _, labels in batches[:5]]).tolist()
    assert np.array_equal(cifar.data.test_images.numpy(), batches[5][1])
    assert cifar.data.test_labels.tolist() == batches[5][2].tolist()

    svhn_root = tmp_path / "svhn"
    svhn_root.mkdir()
    written = {"train": (_known_images(0, 20, 3, 32), np.tile(LABEL_ORDER, 2)),
               "test": (_known_images(20, 10, 3, 32), LABEL_ORDER[::-1])}
    for name, (images, digits) in written.items():
        stored_y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        savemat(svhn_root / f"{name}_32x32.mat", {"X": np.transpose(images, (2, 3, 1, 0)), "y": stored_y})  # X: (H, W, C, N)
    svhn = SVHNDataModule(root=str(svhn_root), download=False, num_labeled=10, num_val=0, split_cache_dir=None)
    svhn.setup()
    for name, images, labels in (("train", svhn.data.train_images, svhn.data.train_labels),
                                 ("test", svhn.data.test_images, svhn.data.test_labels)):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64, name
        assert np.array_equal(images.numpy(), written[name][0]), name
        assert labels.tolist() == written[name][1].tolist(), name
    # the image stored with y=10 is the digit 0; y=1 stays the digit 1
    assert svhn.data.train_labels[1] == 0 and svhn.data.train_labels[3] == 1


@pytest.mark.parametrize("module_class", [MNISTDataModule, CIFAR10DataModule, SVHNDataModule])
def test_missing_files_with_download_off_name_the_fix(tmp_path: Path, module_class) -> None:
    datamodule = module_class(root=str(tmp_path / "nowhere"), download=False, num_labeled=10, split_cache_dir=None)
    with pytest.raises(UserError, match="set data.download=true or point data.root at"):
        datamodule.setup()


@pytest.mark.parametrize("root_exists", [True, False])
def test_a_failed_download_removes_what_it_created(tmp_path: Path, monkeypatch, root_exists: bool) -> None:
    import torchvision.datasets

    def failing_download(root: str, train: bool, download: bool) -> None:  # as torchvision fails offline
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"cut short")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://example.org/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", failing_download)
    data = tmp_path / "data"
    if root_exists:
        data.mkdir()
        (data / "mine.txt").write_text("kept")
    root = data / "nested" if not root_exists else data
    datamodule = FashionMNISTDataModule(root=str(root), download=True, num_labeled=10, split_cache_dir=None)
    # the first line names the file, the last one the cause
    with pytest.raises(UserError, match=re.escape("(Error downloading train-images-idx3-ubyte.gz: <urlopen error [Errno -2] "
                                                  "Name or service not known>); download it by hand")):
        datamodule.setup()
    # nothing half-written is left: no empty folders, no partial file; what was there before stays
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data"] if root_exists else [])
    assert not root_exists or sorted(p.name for p in data.iterdir()) == ["mine.txt"]


def test_corrupt_idx_file_is_reported_by_path(idx_root: Path, tmp_path: Path) -> None:
    for f in idx_root.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    datamodule = MNISTDataModule(root=str(tmp_path), download=False, num_labeled=10, split_cache_dir=None)
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz is not a readable IDX file"):
        datamodule.setup()


def test_a_damaged_gzip_stream_is_reported_by_path_not_as_a_traceback(idx_root: Path, tmp_path: Path) -> None:
    for f in idx_root.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(labels.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the deflate stream: zlib's own error, not an OSError
    labels.write_bytes(bytes(data))
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz is not a readable IDX file"):
        MNISTDataModule(root=str(tmp_path), download=False, num_labeled=10, split_cache_dir=None).setup()


def test_mnist_format_files_come_from_the_data_sets_own_folder_first_and_all_from_one(idx_root: Path, tmp_path: Path) -> None:
    # MNIST and Fashion-MNIST share file names: flat files in data.root (another data set's) must not
    # win over torchvision's root/MNIST/raw, nor be mixed with it file by file
    own = tmp_path / "MNIST" / "raw"
    own.mkdir(parents=True)
    for f in idx_root.iterdir():
        (own / f.name).write_bytes(f.read_bytes())
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(150, 7, dtype=np.uint8))  # one stray flat file
    datamodule = MNISTDataModule(root=str(tmp_path), download=False, num_labeled=10, num_val=0, split_cache_dir=None)
    datamodule.setup()
    assert sorted(set(datamodule.data.train_labels.tolist())) == list(range(10))


def test_images_and_labels_that_do_not_pair_up_are_one_line(idx_root: Path, tmp_path: Path) -> None:
    for f in idx_root.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8))
    with pytest.raises(UserError, match=r"\S+ \(MNIST's train files\) holds \d+ images but 7 labels; delete the files"):
        MNISTDataModule(root=str(tmp_path), download=False, num_labeled=10, split_cache_dir=None).setup()
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(len(read_idx(idx_root / "train-labels-idx1-ubyte.gz")), 12,
                                                               dtype=np.uint8))
    with pytest.raises(UserError, match=r"holds labels from 12 to 12, but the data set has 10 classes \(0 to 9\)"):
        MNISTDataModule(root=str(tmp_path), download=False, num_labeled=10, split_cache_dir=None).setup()


def test_test_images_of_another_size_than_the_training_images_are_one_line(idx_root: Path, tmp_path: Path,
                                                                           svhn_root: Path) -> None:
    # IDX: once a traceback after training (mat1 and mat2 shapes cannot be multiplied) and a half-made run folder
    for f in idx_root.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    labels = read_idx(idx_root / "t10k-labels-idx1-ubyte.gz")
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((len(labels), 32, 32), dtype=np.uint8))
    with pytest.raises(UserError, match=rf"^the fashion_mnist test images under {tmp_path} have shape \(1, 32, 32\), not "
                                        r"\(1, 28, 28\); point data.root at the fashion_mnist files$"):
        FashionMNISTDataModule(root=str(tmp_path), download=False, num_labeled=10, split_cache_dir=None).setup()
    # SVHN: once tested on them without a word
    from scipy.io import loadmat, savemat

    svhn = tmp_path / "svhn"
    svhn.mkdir()
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (svhn / name).write_bytes((svhn_root / name).read_bytes())
    test = loadmat(svhn / "test_32x32.mat")
    savemat(svhn / "test_32x32.mat", {"X": test["X"][:28, :28], "y": test["y"]})
    with pytest.raises(UserError, match=r"the svhn test images under .* have shape \(3, 28, 28\), not \(3, 32, 32\)"):
        SVHNDataModule(root=str(svhn), download=False, num_labeled=10, num_val=10, split_cache_dir=None).setup()


@pytest.mark.parametrize("damage", ["empty", "cut short", "not a batch"])
def test_damaged_cifar_and_svhn_files_are_reported_by_path(cifar_root: Path, svhn_root: Path, tmp_path: Path,
                                                           damage: str) -> None:
    import pickle
    import shutil

    cifar, svhn = tmp_path / "cifar", tmp_path / "svhn"
    shutil.copytree(cifar_root, cifar)
    shutil.copytree(svhn_root, svhn)
    batch, mat = cifar / "cifar-10-batches-py" / "data_batch_1", svhn / "train_32x32.mat"
    if damage == "empty":
        batch.write_bytes(b"")
        mat.write_bytes(b"")
    elif damage == "cut short":
        batch.write_bytes(batch.read_bytes()[:100])
        mat.write_bytes(mat.read_bytes()[:100])  # an interrupted download
    else:
        batch.write_bytes(pickle.dumps([1, 2, 3]))
        mat.write_bytes(mat.read_bytes()[:127])
    with pytest.raises(UserError, match="data_batch_1 is not a readable CIFAR-10 batch"):
        CIFAR10DataModule(root=str(cifar), download=False, num_labeled=10, num_val=0, split_cache_dir=None).setup()
    with pytest.raises(UserError, match="train_32x32.mat is not a readable SVHN .mat file"):
        SVHNDataModule(root=str(svhn), download=False, num_labeled=10, num_val=0, split_cache_dir=None).setup()


def test_idx_files_are_read_gzipped_or_not_whatever_their_name(idx_root: Path, tmp_path: Path) -> None:
    import gzip

    expected = read_idx(idx_root / "train-images-idx3-ubyte.gz")
    # a .gz download saved without its suffix (it was "delete it and download again", for a whole file)
    (tmp_path / "train-images-idx3-ubyte").write_bytes((idx_root / "train-images-idx3-ubyte.gz").read_bytes())
    # a file gunzipped in place but still named .gz
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.decompress((idx_root / "t10k-images-idx3-ubyte.gz").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), expected)
    assert np.array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), read_idx(idx_root / "t10k-images-idx3-ubyte.gz"))


def _cifar_batch(folder: Path, name: str, data, labels) -> None:
    import pickle

    with open(folder / name, "wb") as handle:
        pickle.dump({"data": data, "labels": labels}, handle)


@pytest.mark.parametrize(("damage", "message"), [
    ("nhwc", r"data_batch_1 holds images of shape \(30, 32, 32, 3\), where a CIFAR-10 batch holds one row of 3072 "
             r"values per image \(N, 3072: the red, green and blue 32x32 planes\)"),
    ("float pixels", r"data_batch_1 holds pixels of type float32 from 0 to 1, where the format holds bytes 0 to 255"),
    ("wide pixels", r"data_batch_1 holds pixels of type int64 from 0 to 1020, where the format holds bytes 0 to 255"),
    ("labels (N, 1)", r"data_batch_1 holds labels of shape \(30, 1\), not one label per image \(N,\)"),
    ("text labels", r"data_batch_1 holds labels of type <U1, not whole numbers"),
    ("fraction labels", r"data_batch_1 holds labels of type float64, not whole numbers"),
])
def test_cifar_pixels_and_labels_that_the_format_does_not_hold_are_one_line(cifar_root: Path, tmp_path: Path,
                                                                             damage: str, message: str) -> None:
    """Each was cast without a word (pixels 0..1 became 0s, NHWC images were scrambled) or was a traceback."""
    import shutil

    shutil.copytree(cifar_root, tmp_path / "cifar")
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (30, 3, 32, 32)), np.arange(30) % 10
    data, stored = images.reshape(30, -1).astype(np.uint8), labels.tolist()
    if damage == "nhwc":
        data = images.transpose(0, 2, 3, 1).astype(np.uint8)
    elif damage == "float pixels":
        data = (data / 255).astype(np.float32)
    elif damage == "wide pixels":
        data = data.astype(np.int64) * 4
    elif damage == "labels (N, 1)":
        stored = labels.reshape(-1, 1)
    elif damage == "text labels":
        stored = np.array([str(label) for label in labels])
    else:
        stored = labels + 0.5
    _cifar_batch(folder, "data_batch_1", data, stored)
    with pytest.raises(UserError, match=message + "; delete"):
        CIFAR10DataModule(root=str(tmp_path / "cifar"), download=False, num_labeled=10, num_val=0, split_cache_dir=None).setup()


def test_pixels_and_labels_stored_as_other_numbers_of_the_same_values_are_read(cifar_root: Path, svhn_root: Path,
                                                                               idx_root: Path, tmp_path: Path) -> None:
    import shutil

    from scipy.io import loadmat, savemat

    shutil.copytree(cifar_root, tmp_path / "cifar")
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    images = np.random.default_rng(0).integers(0, 256, (30, 3 * 32 * 32))
    _cifar_batch(folder, "data_batch_1", images.astype(np.int64), np.arange(30) % 10)  # int64 bytes, a labels array
    data = CIFAR10DataModule(root=str(tmp_path / "cifar"), download=False, num_labeled=10, num_val=0,
                             split_cache_dir=None)
    loaded = data.load()
    assert torch.equal(loaded.train_images[:30].flatten(1), torch.from_numpy(images.astype(np.uint8)))
    # SVHN's y as MATLAB's default double: whole numbers, read as the labels they are
    shutil.copytree(svhn_root, tmp_path / "svhn")
    mat = loadmat(tmp_path / "svhn" / "train_32x32.mat")
    savemat(tmp_path / "svhn" / "train_32x32.mat", {"X": mat["X"], "y": mat["y"].astype(np.float64)})
    svhn = SVHNDataModule(root=str(tmp_path / "svhn"), download=False, num_labeled=10, num_val=0, split_cache_dir=None)
    expected = np.where(mat["y"].reshape(-1) == 10, 0, mat["y"].reshape(-1))
    assert torch.equal(svhn.load().train_labels, torch.from_numpy(expected.astype(np.int64)))
    # and its X as doubles of the same bytes
    savemat(tmp_path / "svhn" / "train_32x32.mat", {"X": mat["X"].astype(np.float64), "y": mat["y"]})
    assert torch.equal(svhn.load().train_images, torch.from_numpy(np.transpose(mat["X"], (3, 2, 0, 1)).copy()))
    # SVHN's X as doubles of 0..1 and MNIST's labels as (N, 1): one line each
    savemat(tmp_path / "svhn" / "train_32x32.mat", {"X": mat["X"] / 255.0, "y": mat["y"]})
    with pytest.raises(UserError, match=r"train_32x32.mat holds pixels of type float64 from 0 to 1, where"):
        svhn.load()
    shutil.copytree(idx_root, tmp_path / "idx")
    labels = read_idx(idx_root / "train-labels-idx1-ubyte.gz")
    write_idx(tmp_path / "idx" / "train-labels-idx1-ubyte.gz", labels.reshape(-1, 1))
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte.gz holds labels of shape \(\d+, 1\), not one label"):
        MNISTDataModule(root=str(tmp_path / "idx"), download=False, num_labeled=10, split_cache_dir=None).setup()


def test_missing_cifar_batches_are_named_and_an_archive_left_packed_is_pointed_at(cifar_root: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(cifar_root, tmp_path / "cifar")
    (tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_3").unlink()
    data = CIFAR10DataModule(root=str(tmp_path / "cifar"), download=False, num_labeled=10, num_val=0, split_cache_dir=None)
    with pytest.raises(UserError, match=r"cifar-10-batches-py \(missing data_batch_3\); set data.download=true or point"):
        data.setup()
    # the download's archive, never unpacked
    (tmp_path / "packed" / "cifar-10-python.tar.gz").parent.mkdir()
    (tmp_path / "packed" / "cifar-10-python.tar.gz").write_bytes(b"")
    packed = CIFAR10DataModule(root=str(tmp_path / "packed"), download=False, num_labeled=10, num_val=0, split_cache_dir=None)
    with pytest.raises(UserError, match=r"\(missing data_batch_1, .*, test_batch\); .*cifar-10-python.tar.gz is there but "
                                        r"not unpacked: unpack it with tar -xzf .*cifar-10-python.tar.gz -C .*packed, or "
                                        r"set data.download=true$"):
        packed.setup()


def test_training_batches_cover_the_unlabeled_pool_once_per_epoch() -> None:
    labeled = torch.arange(5).view(5, 1, 1, 1).to(torch.uint8)
    unlabeled = torch.arange(100, 200).view(100, 1, 1, 1).to(torch.uint8)
    epoch = [0]
    batches = SemiSupervisedBatches(labeled, torch.arange(5), unlabeled, batch_size=25, labeled_batch_size=8,
                                    seed=3, epoch=lambda: epoch[0])
    first = list(batches)
    assert len(batches) == len(first) == 4
    seen = torch.cat([u.flatten() for _, _, u in first])
    assert sorted(seen.tolist()) == list(range(100, 200))  # one pass over the pool
    for x, y, u in first:
        assert x.shape == (8, 1, 1, 1) and u.shape == (25, 1, 1, 1)
        assert torch.equal(x.flatten().long(), y)  # labels travel with their images
    assert all(torch.equal(a[2], b[2]) for a, b in zip(first, batches))  # same epoch, same order
    epoch[0] = 1
    assert not all(torch.equal(a[2], b[2]) for a, b in zip(first, batches))  # next epoch reshuffles


def test_an_epoch_drops_only_the_last_partial_batch() -> None:
    unlabeled = torch.arange(110).view(110, 1, 1, 1).to(torch.uint8)
    batches = SemiSupervisedBatches(unlabeled[:5], torch.zeros(5, dtype=torch.long), unlabeled, batch_size=25,
                                    labeled_batch_size=5, seed=0, epoch=lambda: 0)
    seen = torch.cat([u.flatten() for _, _, u in batches])
    assert len(batches) == 4 and len(seen) == 100 and len(set(seen.tolist())) == 100  # 10 left for next epoch's shuffle


def test_datamodule_serves_uint8_batches(tmp_path: Path) -> None:
    datamodule = DigitsDataModule(num_labeled=30, num_val=20, batch_size=64, split_cache_dir=str(tmp_path))
    datamodule.setup()
    labeled, labels, unlabeled = next(iter(datamodule.train_dataloader()))
    assert labeled.dtype == unlabeled.dtype == torch.uint8
    assert labeled.shape == (64, 1, 8, 8) and labels.shape == (64,)
    assert len(datamodule.train_dataloader()) == (1350 - 20) // 64
    assert sum(len(x) for x, _ in datamodule.val_dataloader()) == 20
    assert sum(len(x) for x, _ in datamodule.test_dataloader()) == 447


def test_checkpoint_state_carries_the_split(tmp_path: Path) -> None:
    trained = DigitsDataModule(num_labeled=30, num_val=20, split_seed=0, split_cache_dir=str(tmp_path))
    trained.setup()
    state = trained.state_dict()
    # a datamodule whose own split differs (another seed, as from a changed cache) resumes with the saved one
    resumed = DigitsDataModule(num_labeled=30, num_val=20, split_seed=1, split_cache_dir=str(tmp_path))
    resumed.setup()
    assert not np.array_equal(resumed.split.labeled, trained.split.labeled)
    resumed.load_state_dict(state)
    for part in ("labeled", "val", "unlabeled"):
        assert np.array_equal(getattr(resumed.split, part), getattr(trained.split, part)), part
    labeled, _ = resumed.labeled_set()
    assert torch.equal(labeled, trained.labeled_set()[0])
    state["split"]["labeled"][0] = 10**6  # a split of another data set is refused, not indexed
    with pytest.raises(UserError, match="the checkpoint's split does not fit the 1350 training images of digits"):
        DigitsDataModule(num_labeled=30, num_val=20, split_cache_dir=str(tmp_path)).load_state_dict(state)


def test_a_download_that_fails_inside_an_existing_raw_folder_or_by_ctrl_c_leaves_nothing(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    import torchvision.datasets

    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"an earlier, complete file")

    def cut_short(root: str, train: bool, download: bool) -> None:
        (Path(root) / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"cut short")
        raise failure

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", cut_short)
    for failure, raised in ((RuntimeError("Error downloading"), UserError), (KeyboardInterrupt(), KeyboardInterrupt)):
        datamodule = FashionMNISTDataModule(root=str(tmp_path / "data"), download=True, num_labeled=10, split_cache_dir=None)
        with pytest.raises(raised):
            datamodule.setup()
        assert [p.name for p in raw.iterdir()] == ["t10k-labels-idx1-ubyte.gz"]  # the partial file is gone, the old kept


def test_mnist_and_fashion_mnist_files_are_told_apart(tmp_path: Path) -> None:
    from ssgan.data.sources import FASHION_MNIST_TRAIN_COUNTS, MNIST_TRAIN_COUNTS

    # the training labels' counts are what tell the two apart (the files share their names)
    for counts, data_set, asked, message in (
            (FASHION_MNIST_TRAIN_COUNTS, "fashion", MNISTDataModule, "holds Fashion-MNIST's files, not MNIST's; point "
             "data.root at MNIST's, or use data=fashion_mnist"),
            (MNIST_TRAIN_COUNTS, "mnist", FashionMNISTDataModule, "holds MNIST's files, not Fashion-MNIST's; point "
             "data.root at Fashion-MNIST's, or use data=mnist")):
        root = tmp_path / data_set
        root.mkdir()
        labels = np.repeat(np.arange(10), counts)
        write_idx(root / "train-images-idx3-ubyte.gz", np.zeros((len(labels), 1, 1), dtype=np.uint8))
        write_idx(root / "train-labels-idx1-ubyte.gz", labels)
        write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((10, 1, 1), dtype=np.uint8))
        write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(10))
        with pytest.raises(UserError, match=message):
            asked(root=str(root), download=False, num_labeled=10, split_cache_dir=None).setup()


def test_a_class_without_training_images_is_one_line(tmp_path: Path) -> None:
    from ssgan.data.split import per_class_counts

    labels = np.repeat(np.arange(9), 50)  # class 9 is missing, as in cut-short or foreign files
    for request in ({"num_labeled": 100, "label_fraction": None}, {"num_labeled": None, "label_fraction": 0.1}):
        with pytest.raises(UserError, match="^class 9 has no training images; the data set's files are incomplete"):
            per_class_counts(labels, 10, **request)


def test_cifar10_downloads_beside_a_root_that_is_the_batches_folder(tmp_path: Path, monkeypatch, cifar_root: Path) -> None:
    import shutil

    import torchvision.datasets

    def fake_download(root: str, train: bool, download: bool) -> None:  # torchvision unpacks into root/cifar-10-batches-py
        shutil.copytree(cifar_root / "cifar-10-batches-py", Path(root) / "cifar-10-batches-py", dirs_exist_ok=True)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_download)
    folder = tmp_path / "cifar-10-batches-py"
    datamodule = CIFAR10DataModule(root=str(folder), download=True, num_labeled=10, split_cache_dir=None)
    datamodule.setup()
    assert datamodule.labeled_count == 10 and not (folder / "cifar-10-batches-py").exists()


def test_processes_that_download_into_one_folder_take_turns(tmp_path: Path, monkeypatch) -> None:
    # under torchrun or srun every process of a run finds the files missing at once
    import threading
    import time

    import torchvision.datasets

    from ssgan.data import sources

    inside, most = [0], [0]
    lock = threading.Lock()

    class SlowMNIST:
        def __init__(self, root, train=True, download=False):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.2)
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(torchvision.datasets, "MNIST", SlowMNIST)
    download = sources._torchvision_download("MNIST")
    processes = [threading.Thread(target=download, args=(str(tmp_path / "data"),)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    assert most[0] == 1


def _unreadable_under(monkeypatch, locked: Path) -> None:
    """Paths in ``locked`` raise as in a folder of another user's (Python 3.11's ``is_file``, and opening a
    file); the tests run as root, whom permissions do not stop."""
    import builtins
    import gzip

    def inside(path) -> bool:
        return str(path).startswith(str(locked) + "/") or str(path) == str(locked)

    real_is_file, real_gzip_open, real_open = Path.is_file, gzip.open, builtins.open

    def is_file(self, *args, **kwargs):
        if inside(self) and self != locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self, *args, **kwargs)

    def refusing(real):
        def opened(path, *args, **kwargs):
            if inside(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)
        return opened

    monkeypatch.setattr(Path, "is_file", is_file)
    monkeypatch.setattr(gzip, "open", refusing(real_gzip_open))
    monkeypatch.setattr(builtins, "open", refusing(real_open))


def test_an_unreadable_folder_beside_the_idx_files_is_passed_over(tmp_path: Path, idx_root: Path, monkeypatch) -> None:
    # another user's torchvision download (root/FashionMNIST/raw) beside the files: once a PermissionError traceback
    import shutil

    root = tmp_path / "shared"
    shutil.copytree(idx_root, root)
    (root / "FashionMNIST" / "raw").mkdir(parents=True)
    _unreadable_under(monkeypatch, root / "FashionMNIST")
    datamodule = FashionMNISTDataModule(root=str(root), download=False, num_labeled=20, num_val=10, split_cache_dir=None)
    datamodule.prepare_data()
    assert datamodule.num_classes == 10 and len(datamodule.split.labeled) == 20


def test_an_unreadable_data_root_or_file_is_one_line(tmp_path: Path, idx_root: Path, monkeypatch) -> None:
    import shutil

    shutil.copytree(idx_root, tmp_path / "locked" / "data")
    _unreadable_under(monkeypatch, tmp_path / "locked")
    with pytest.raises(UserError, match=r"^cannot read data.root=.*/locked/data \(Permission denied\); ask for read "
                                        r"access to it, or point data.root at a copy you can read$"):
        FashionMNISTDataModule(root=str(tmp_path / "locked" / "data"), download=False, num_labeled=20, num_val=10)
    monkeypatch.undo()
    # a file that cannot be read: not "delete it and download again"
    _unreadable_under(monkeypatch, tmp_path / "locked" / "data" / "train-images-idx3-ubyte.gz")
    with pytest.raises(UserError, match=r"^cannot read .*train-images-idx3-ubyte.gz \(permission denied\); ask for read "
                                        r"access to it"):
        read_idx(tmp_path / "locked" / "data" / "train-images-idx3-ubyte.gz")


def test_a_batch_larger_than_the_unlabeled_pool_is_warned_about(caplog) -> None:
    # an epoch is then one batch that repeats the pool: once a 57 s step of the digits pool 80 times over, in silence
    import logging

    from ssgan.data import DigitsDataModule

    with caplog.at_level(logging.WARNING, logger="ssgan.data.datamodule"):
        DigitsDataModule(num_labeled=20, batch_size=100, split_cache_dir=None).setup()
        assert not caplog.records
        datamodule = DigitsDataModule(num_labeled=20, batch_size=5000, split_cache_dir=None)
        datamodule.setup()
    pool = len(datamodule.split.unlabeled)
    assert [record.getMessage() for record in caplog.records] == [
        f"data.batch_size=5000 is more than the {pool} unlabeled images, so each batch holds every one of them about "
        f"{5000 / pool:.0f} times; use at most data.batch_size={pool}"]
