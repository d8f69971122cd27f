"""``data=folder``: the user's own images — layout, decoding once, skipped files and clear errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FOLDER_CLASSES, write_image_folder
from test_bad_input import CHANGED_FILES, message_pattern
from ssgan.data import FolderDataModule
from ssgan.data import images as image_io
from ssgan.errors import UserError


def _datamodule(root: Path, **kwargs) -> FolderDataModule:
    datamodule = FolderDataModule(root=str(root), **kwargs)
    datamodule.setup()
    return datamodule


def test_folder_layout_gives_classes_split_and_test_set(image_folder: Path) -> None:
    datamodule = _datamodule(image_folder, num_val=3)
    assert datamodule.classes == FOLDER_CLASSES and datamodule.num_classes == 3
    assert datamodule.image_shape == (1, 28, 28)
    split, data = datamodule.split, datamodule.data
    # 4 labeled per class: 1 of each class goes to validation, 3 stay labeled
    assert len(split.labeled) == 9 and len(split.val) == 3
    assert torch.bincount(data.train_labels[split.labeled], minlength=3).tolist() == [3, 3, 3]
    # the pool: every unlabeled/ image (label -1) plus the labeled ones; never a validation image
    pool_labels = data.train_labels[split.unlabeled]
    assert (pool_labels == -1).sum() == 24 and set(split.val).isdisjoint(split.unlabeled)
    assert data.test_images.shape == (9, 1, 28, 28) and data.test_labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    labeled_images, labels, unlabeled = next(iter(datamodule.train_dataloader()))
    assert labeled_images.dtype == torch.uint8 and unlabeled.shape[1:] == (1, 28, 28)


def test_num_labeled_takes_a_class_balanced_subset_and_the_rest_joins_the_pool(image_folder: Path) -> None:
    datamodule = _datamodule(image_folder, num_labeled=6, num_val=0)
    labels = datamodule.data.train_labels
    assert torch.bincount(labels[datamodule.split.labeled], minlength=3).tolist() == [2, 2, 2]
    assert len(datamodule.split.unlabeled) == 12 + 24  # all 12 labeled-folder images + 24 unlabeled


def test_images_are_resized_and_converted_to_rgb(image_folder: Path) -> None:
    datamodule = _datamodule(image_folder, image_size=[16, 20], channels=3)
    assert datamodule.data.train_images.shape[1:] == (3, 16, 20)
    assert datamodule.image_shape == (3, 16, 20)


def test_decoded_tensors_are_cached_so_a_second_run_reads_no_image(image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    first = _datamodule(image_folder, image_cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("*.pt"))) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("an image file was read although the cache holds the tensors")

    monkeypatch.setattr(image_io, "read_image", no_reading)
    second = _datamodule(image_folder, image_cache_dir=str(tmp_path))
    assert torch.equal(first.data.train_images, second.data.train_images)


def test_another_pillow_release_decodes_again(image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    import PIL

    _datamodule(image_folder, image_cache_dir=str(tmp_path))
    [first_cache] = tmp_path.glob("*.pt")
    monkeypatch.setattr(PIL, "__version__", "0.0.1")  # a release that may decode the same files differently
    _datamodule(image_folder, image_cache_dir=str(tmp_path))
    # one cache per decoder: the first one is not reused, and is kept for the environment of that release
    assert len(list(tmp_path.glob("*.pt"))) == 2 and first_cache.exists()


def test_a_newer_cache_of_a_folder_replaces_its_older_ones_only(image_folder: Path, tmp_path: Path) -> None:
    root, cache = tmp_path / "images", tmp_path / "cache"
    shutil.copytree(image_folder, root)
    _datamodule(image_folder, image_cache_dir=str(cache))  # another folder
    _datamodule(root, image_cache_dir=str(cache), image_size=[16, 16])  # this folder at another size
    _datamodule(root, image_cache_dir=str(cache))
    before = set(cache.glob("*.pt"))
    edited = root / "unlabeled" / "part0" / "image_0.png"
    shutil.copy(root / "unlabeled" / "part0" / "image_2.png", edited)  # the user edits an image: decode again
    _datamodule(root, image_cache_dir=str(cache))
    after = set(cache.glob("*.pt"))
    assert len(before) == len(after) == 3  # each (folder, size) keeps one cache, the newest
    assert len(before - after) == 1 and len(after - before) == 1


def test_an_outdated_cache_that_cannot_be_removed_costs_the_run_nothing(image_folder: Path, tmp_path: Path,
                                                                        monkeypatch) -> None:
    root, cache = tmp_path / "images", tmp_path / "cache"
    shutil.copytree(image_folder, root)
    _datamodule(root, image_cache_dir=str(cache))
    [outdated] = cache.glob("*.pt")
    shutil.copy(root / "unlabeled" / "part0" / "image_2.png", root / "unlabeled" / "part0" / "image_0.png")
    unlink = Path.unlink

    def refused(path: Path, missing_ok: bool = False) -> None:
        if path == outdated:  # another user's file in a shared cache folder
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refused)
    datamodule = _datamodule(root, image_cache_dir=str(cache))
    assert datamodule.data is not None and len(list(cache.glob("*.pt"))) == 2 and outdated.exists()


def test_corrupt_file_is_reported_by_path_skipped_and_counted(image_folder: Path, tmp_path: Path, caplog) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    broken = root / "unlabeled" / "part0" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "labeled" / "circle" / "truncated.jpg").write_bytes(b"\xff\xd8\xff")
    with caplog.at_level(logging.WARNING):
        datamodule = _datamodule(root)
    assert (datamodule.data.train_labels == -1).sum() == 24  # the broken unlabeled file is left out
    assert torch.bincount(datamodule.data.train_labels[datamodule.data.train_labels >= 0]).tolist() == [4, 4, 4]
    assert datamodule.classes == ("circle", "square", "stripes")
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert str(broken) in messages and "truncated.jpg" in messages
    assert "skipped 2 unreadable image(s) of" in messages


def test_a_cached_run_lists_the_unreadable_files_again(image_folder: Path, tmp_path: Path, caplog) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    broken = root / "unlabeled" / "part0" / "broken.png"
    broken.write_bytes(b"not an image")
    _datamodule(root, image_cache_dir=str(tmp_path / "cache"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _datamodule(root, image_cache_dir=str(tmp_path / "cache"))  # from the cache: no file is decoded
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith(f"skipped unreadable image {broken} (found when") for message in messages), messages
    assert any("skipped 1 unreadable image(s) of" in message for message in messages)


def test_16_bit_grey_images_are_scaled_and_exif_turns_are_applied(tmp_path: Path) -> None:
    from PIL import Image

    ramp = (np.arange(20 * 30).reshape(20, 30) * 109 % 65536).astype(np.uint16)  # (H, W), the full 16-bit range
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    decoded = image_io.read_image(tmp_path / "deep.png", (1, 20, 30))[0].numpy()  # (H, W)
    # 16 bits to 8 (value / 257): PIL's own convert("L") would clip everything above 255 to white
    assert np.abs(decoded.astype(float) - ramp / 257.0).max() <= 0.5
    # a phone photo stored sideways, with EXIF orientation 6 (turn 90 degrees clockwise to view)
    stored = np.zeros((20, 40), dtype=np.uint8)  # (H, W): a bright column at the left when stored
    stored[:, :4] = 255
    exif = Image.new("L", (1, 1)).getexif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "photo.png", exif=exif)
    upright = image_io.read_image(tmp_path / "photo.png", (1, 40, 20))[0].numpy()  # (H, W) as viewers show it
    assert upright[:4].mean() > 200 and upright[8:].mean() < 20  # the left column is now the top row


def test_float_tiffs_are_scaled_not_truncated_and_jfif_files_are_images(tmp_path: Path) -> None:
    from PIL import Image

    unit = (np.arange(16 * 16).reshape(16, 16) / 255.0).astype(np.float32)  # (H, W) in [0, 1]
    Image.fromarray(unit, "F").save(tmp_path / "unit.tif")
    decoded = image_io.read_image(tmp_path / "unit.tif", (1, 16, 16))[0].numpy()  # (H, W)
    # PIL's own convert("L") truncated every value below 1 to 0: a black image
    assert np.abs(decoded.astype(float) - unit * 255.0).max() <= 0.5 and decoded.max() == 255
    wide = np.full((16, 16), 300.0, dtype=np.float32)  # (H, W): an 8-bit range value and one beyond it
    wide[:, :8] = 100.0
    Image.fromarray(wide, "F").save(tmp_path / "wide.tif")
    decoded = image_io.read_image(tmp_path / "wide.tif", (1, 16, 16))[0].numpy()
    assert (decoded[:, :8] == 100).all() and (decoded[:, 8:] == 255).all()
    # 32-bit integer TIFFs (mode I): 8-bit values are kept (at / 257 they were an almost black image), 16-bit ones scaled
    eight_bit = (np.arange(16 * 16).reshape(16, 16) % 256).astype(np.int32)  # (H, W) in 0..255
    Image.fromarray(eight_bit).save(tmp_path / "int32.tif")
    assert Image.open(tmp_path / "int32.tif").mode == "I"
    assert (image_io.read_image(tmp_path / "int32.tif", (1, 16, 16))[0].numpy() == eight_bit).all()
    sixteen_bit = eight_bit * 257  # the same picture in 0..65535
    Image.fromarray(sixteen_bit).save(tmp_path / "int32.tif")
    assert (image_io.read_image(tmp_path / "int32.tif", (1, 16, 16))[0].numpy() == eight_bit).all()
    (tmp_path / "int32.tif").unlink()
    # a dark 16-bit image stays dark: its values are 16-bit ones, however small
    Image.fromarray(eight_bit.astype(np.uint16)).save(tmp_path / "dark.tif")
    assert image_io.read_image(tmp_path / "dark.tif", (1, 16, 16))[0].numpy().max() == 1
    (tmp_path / "dark.tif").unlink()
    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(tmp_path / "camera.jfif", format="JPEG")
    assert [path.name for path in image_io.list_images(tmp_path)] == ["camera.jfif", "unit.tif", "wide.tif"]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_images_are_shown_on_white(tmp_path: Path, mode: str) -> None:
    # an icon: a black square on a transparent background whose stored colour is black too
    from PIL import Image

    rgba = np.zeros((16, 16, 4), dtype=np.uint8)  # (H, W, RGBA)
    rgba[4:12, 4:12, 3] = 255  # the square is opaque; the rest is transparent black
    image = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":  # a palette PNG with a transparent colour
        image = Image.fromarray(np.where(rgba[..., 3] > 0, 1, 0).astype(np.uint8), "P")
        image.putpalette([0, 0, 0, 0, 0, 0])
        image.info["transparency"] = 0
    image.save(tmp_path / "icon.png", **({"transparency": 0} if mode == "P" else {}))
    for channels in (1, 3):
        decoded = image_io.read_image(tmp_path / "icon.png", (channels, 16, 16)).numpy()  # (C, H, W)
        assert (decoded[:, 4:12, 4:12] == 0).all() and (decoded[:, :4] == 255).all()


def test_an_image_too_large_to_decode_safely_is_skipped(tmp_path: Path, monkeypatch, caplog) -> None:
    from PIL import Image

    for name, size in (("small.png", 8), ("huge.png", 40)):
        Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(tmp_path / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # PIL refuses images over twice this: 40x40 is a "bomb" here
    with caplog.at_level(logging.WARNING):
        images, kept, skipped = image_io.read_images([tmp_path / "small.png", tmp_path / "huge.png"], (1, 8, 8))
    assert images.shape == (1, 1, 8, 8) and kept == [0] and skipped == [tmp_path / "huge.png"]
    assert any("huge.png" in record.getMessage() and "exceeds limit" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("damage, message", [
    (lambda root: shutil.rmtree(root / "labeled" / "square") or (root / "labeled" / "square").mkdir(),
     "class folder .*square holds no images"),
    (lambda root: (root / "test" / "triangle").mkdir(), "class 'triangle' of .*test is not in .*labeled"),
    (lambda root: shutil.rmtree(root / "labeled"), "has no labeled/ folder"),
    (lambda root: [shutil.rmtree(p) for p in (root / "unlabeled").iterdir()], "unlabeled holds no images"),
])
def test_bad_folders_get_a_one_line_error(image_folder: Path, tmp_path: Path, damage, message: str) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    damage(root)
    with pytest.raises(UserError, match=message) as raised:
        FolderDataModule(root=str(root))
    assert "\n" not in str(raised.value)


def test_missing_root_and_empty_folder_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist; point it at a folder"):
        FolderDataModule(root=str(tmp_path / "nowhere"))
    (tmp_path / "labeled").mkdir()
    with pytest.raises(UserError, match="holds no class folders"):
        FolderDataModule(root=str(tmp_path))


def test_validation_that_leaves_a_class_without_labels_is_refused(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", labeled_per_class=1, unlabeled=3, test_per_class=0)
    with pytest.raises(UserError, match="leaves no labeled training image of class"):
        _datamodule(root, num_val=3)


def test_folder_run_keeps_class_names_and_data_in_the_checkpoint(folder_checkpoint: Path) -> None:
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["hyper_parameters"]["class_names"] == list(FOLDER_CLASSES)
    assert checkpoint["ssgan_datamodule"]["class_path"] == "ssgan.data.folder.FolderDataModule"
    assert checkpoint["ssgan_module"] == "ssgan.module.SSGAN"
    run = folder_checkpoint.parent.parent
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "folder" and metrics["num_labeled"] == 9
    # the test report beyond accuracy, and the figures written beside the run
    for key in ("test/f1_macro", "test/ece", *(f"test/acc_class/{name}" for name in FOLDER_CLASSES)):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert (run / "confusion_matrix.png").stat().st_size > 1000
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["epoch_0001.png"]


def test_run_without_test_folder_reports_no_test_metrics(tmp_path: Path, compose_cfg) -> None:
    from ssgan.train import summary_line, train

    root = write_image_folder(tmp_path / "images", test_per_class=0)
    cfg = compose_cfg("data=folder", f"data.root={root}", "trainer.fast_dev_run=true", "trainer.enable_progress_bar=false")
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["test/acc"] is None
    assert "no test set" in summary_line(metrics)


def test_synthetic_labeled_images_join_the_labeled_set(image_folder: Path, tmp_path: Path, caplog) -> None:
    synthetic = tmp_path / "samples"
    shutil.copytree(image_folder / "test", synthetic)  # any <class>/*.png folder
    plain = _datamodule(image_folder)
    with caplog.at_level(logging.INFO):
        mixed = _datamodule(image_folder, synthetic_labeled_dir=str(synthetic))
    assert len(mixed.labeled_set()[1]) == len(plain.labeled_set()[1]) + 9
    assert any(record.getMessage().startswith(f"9 synthetic labeled image(s) from {synthetic} join the labeled training set")
               for record in caplog.records)  # once they were in no log line
    (synthetic / "unicorn").mkdir()
    shutil.copy(next((image_folder / "test" / "circle").iterdir()), synthetic / "unicorn" / "x.png")
    with pytest.raises(UserError, match="unicorn is not a class"):
        _datamodule(image_folder, synthetic_labeled_dir=str(synthetic))


def test_class_subfolders_count_loose_labeled_images_are_reported_and_a_labeled_root_is_pointed_up(
        image_folder: Path, tmp_path: Path, caplog) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    circle = root / "labeled" / "circle"
    (circle / "batch1").mkdir()
    for path in sorted(circle.glob("*.png"))[:2]:  # two of the class's four images, one folder down
        path.rename(circle / "batch1" / path.name)
    shutil.copy(next((root / "test" / "square").iterdir()), root / "labeled" / "loose.png")
    shutil.copy(next((root / "test" / "square").iterdir()), root / "test" / "stray.png")
    for hidden in (".ipynb_checkpoints", "@eaDir"):  # a notebook's copies, a NAS's thumbnails: not class images
        (circle / hidden).mkdir()
        shutil.copy(next((root / "test" / "square").iterdir()), circle / hidden / "thumb.png")
    for parent in ("labeled", "test"):  # ...nor classes, next to the class folders
        (root / parent / "@eaDir" / "circle_0.png").mkdir(parents=True)
        shutil.copy(next((root / "test" / "square").iterdir()), root / parent / "@eaDir" / "circle_0.png" / "thumb.jpg.png")
    with caplog.at_level(logging.WARNING):
        datamodule = _datamodule(root)
    assert torch.bincount(datamodule.data.train_labels[datamodule.data.train_labels >= 0]).tolist() == [4, 4, 4]
    warnings = [record.getMessage() for record in caplog.records]
    assert any(line.startswith(f"ignored 1 image(s) directly in {root / 'labeled'} (e.g. loose.png): a labeled image")
               for line in warnings)
    # a test image outside a class folder is not tested on, and once went without a word
    assert any(line.startswith(f"ignored 1 image(s) directly in {root / 'test'} (e.g. stray.png): a test image")
               for line in warnings)
    with pytest.raises(UserError, match=f"data.root={root / 'labeled'} is the labeled/ folder itself; point data.root "
                                        f"at the folder above it \\({root}\\)"):
        _datamodule(root / "labeled")


def test_a_run_without_validation_keeps_no_best_checkpoint_and_tests_the_last_weights(image_folder: Path, tmp_path: Path,
                                                                                      compose_cfg) -> None:
    import warnings

    from ssgan.train import train

    cfg = compose_cfg("data=folder", f"data.root={image_folder}", "data.batch_size=10", "trainer.max_epochs=1",
                      "trainer.enable_progress_bar=false", "test_ckpt=best")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train(cfg)
    # it once warned that val/acc could not be found, at every epoch, and the README promised a best.ckpt
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]
    assert metrics["num_val"] == 0 and metrics["tested"] == "last" and metrics["val/best_acc"] is None


def test_a_16_bit_grey_image_with_a_transparent_value_is_shown_on_white(tmp_path: Path) -> None:
    from PIL import Image

    deep = np.full((8, 8), 1000, dtype=np.uint16)  # (H, W): transparent background value 1000
    deep[2:6, 2:6] = 0  # an opaque black square
    Image.fromarray(deep).save(tmp_path / "deep.png", transparency=1000)
    decoded = image_io.read_image(tmp_path / "deep.png", (1, 8, 8))[0].numpy()  # (H, W)
    assert (decoded[2:6, 2:6] == 0).all() and decoded[0, 0] == 255


def test_symlinked_subfolders_are_followed_once(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for name in ("a.png", "b.png"):
        (outside / name).write_bytes(b"")
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "0.png").write_bytes(b"")
    (folder / "more").symlink_to(outside, target_is_directory=True)
    (outside / "loop").symlink_to(folder, target_is_directory=True)  # back up the tree: must end
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "c.png").write_bytes(b"")
    found = [p.relative_to(folder).as_posix() for p in image_io.list_images(folder, recursive=True)]
    assert found == ["0.png", "more/a.png", "more/b.png"]


def test_file_names_that_are_not_utf8_are_read_and_cached(image_folder: Path, tmp_path: Path) -> None:
    import os

    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    circle = root / "labeled" / "circle"
    shutil.copy(next(circle.iterdir()), circle / os.fsdecode(b"caf\xe9.png"))  # e.g. from an old zip archive
    datamodule = _datamodule(root, image_cache_dir=str(tmp_path / "cache"), split_cache_dir=str(tmp_path / "splits"))
    assert datamodule.labeled_count > 0 and len(list((tmp_path / "cache").glob("*.pt"))) == 1
    assert len(datamodule.data_fingerprint()) == 16


@pytest.mark.parametrize("setting, message", [
    ({"image_size": 32.5}, "data.image_size=32.5 is not a size"),
    ({"image_size": [28.7, 28]}, r"data.image_size=\[28.7, 28\] is not a size"),
    ({"image_cache_dir": "FILE/cache"}, "cannot write data.image_cache_dir=.*FILE/cache: .*FILE is a file, not a folder; "
                                        "set SSGAN_CACHE_DIR"),
    ({"split_cache_dir": "FILE/splits"}, "cannot write data.split_cache_dir=.*FILE/splits: .*is a file"),
])
def test_bad_sizes_and_unwritable_caches_are_refused_before_any_image_is_read(image_folder: Path, tmp_path: Path, monkeypatch,
                                                                             setting: dict, message: str) -> None:
    (tmp_path / "FILE").write_text("")
    setting = {key: value.replace("FILE", str(tmp_path / "FILE")) if isinstance(value, str) else value
               for key, value in setting.items()}
    monkeypatch.setattr(image_io, "read_image", lambda *args: pytest.fail("an image was read"))
    with pytest.raises(UserError, match=message) as raised:
        FolderDataModule(root=str(image_folder), **setting).setup()
    assert "\n" not in str(raised.value)


def test_resuming_after_the_files_changed_is_refused(image_folder: Path, tmp_path: Path, train_in_process) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    run_dir = tmp_path / "run"
    settings = ("data=folder", f"data.root={root}", "data.num_val=3", "trainer.max_epochs=2", "trainer.limit_train_batches=1",
                "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", f"hydra.run.dir={run_dir}")
    code, stderr = train_in_process(*settings, "trainer.max_epochs=1", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    circle = root / "labeled" / "circle"
    shutil.copy(next(circle.iterdir()), circle / "0000_new.png")  # sorts first: every later position moves
    code, stderr = train_in_process(*settings, "ckpt_path=last", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert stderr.strip().startswith("error: ") and len(stderr.strip().splitlines()) == 1
    assert message_pattern(CHANGED_FILES.replace("ROOT", str(root))).fullmatch(stderr.strip()[len("error: "):]), stderr


def test_tiff_and_gif_files_are_images_too(tmp_path: Path) -> None:
    from PIL import Image

    square = np.zeros((8, 8), dtype=np.uint8)  # (H, W)
    square[2:6, 2:6] = 255
    Image.fromarray(square).save(tmp_path / "scan.tif")
    Image.fromarray(square).convert("P").save(tmp_path / "icon.GIF")
    (tmp_path / "notes.txt").write_text("not an image")
    found = image_io.list_images(tmp_path)
    assert [p.name for p in found] == ["icon.GIF", "scan.tif"]
    for path in found:
        assert torch.equal(image_io.read_image(path, (1, 8, 8))[0], torch.from_numpy(square))


def test_awkward_names_train_test_and_log_whole(tmp_path: Path, train_in_process) -> None:
    """A class folder whose name is not UTF-8, two names one metric key apart ("a b", "a_b"), an unreadable file
    whose name is not UTF-8 and a link whose target is gone: the run finishes and says what it skipped."""
    import os
    import shutil

    root = write_image_folder(tmp_path / "images")
    for part in ("labeled", "test"):  # circle -> a b, square -> a_b, stripes -> a folder named with a Latin-1 byte
        os.rename(root / part / "circle", root / part / "a b")
        os.rename(root / part / "square", root / part / "a_b")
        os.rename(os.fsencode(root / part / "stripes"), os.fsencode(root / part) + b"/cls_\xe9")
    garbage = os.fsencode(root / "labeled" / "a b") + b"/bad_\xfe.png"
    with open(garbage, "wb") as handle:
        handle.write(b"not a png")
    (root / "labeled" / "a_b" / "gone.png").symlink_to(root / "nowhere.png")
    run = tmp_path / "run"
    code, stderr = train_in_process("data=folder", f"data.root={root}", "data.batch_size=10", "trainer.max_epochs=1",
                                    "trainer.enable_progress_bar=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert code == 0, stderr
    assert "Logging error" not in stderr and "Traceback" not in stderr
    metrics = json.loads((run / "metrics.json").read_text())
    # once the confusion-matrix plot stopped the run with a TypeError after it had trained
    assert (run / "confusion_matrix.png").stat().st_size > 1000
    # once "a b" and "a_b" both wrote test/acc_class/a_b, and one class's figure was lost
    assert sorted(key for key in metrics if key.startswith("test/acc_class/")) == [
        "test/acc_class/a_b_0", "test/acc_class/a_b_1", "test/acc_class/cls__"]
    log_text = (run / "train.log").read_text()
    assert "bad_\\xfe.png" in log_text  # once a logging error, and the line was lost
    assert "gone.png" in log_text and "skipped 2 unreadable image(s)" in log_text  # once dropped without a word
    shutil.rmtree(root)


def test_a_folder_reached_through_a_link_is_listed_the_same_whatever_the_listing_order(tmp_path: Path, monkeypatch) -> None:
    import os

    cat = tmp_path / "cat"
    for name in ("m_2019", "z_2020"):
        (cat / name).mkdir(parents=True)
        for number in range(2):
            (cat / name / f"{number:03d}.png").write_bytes(b"")
    (cat / "a_best").symlink_to(cat / "z_2020")  # the same folder under a name that sorts first
    real_walk = os.walk
    listed = []
    for order in (lambda names: names, lambda names: names[::-1]):  # the file system's order differs between disks

        def walk(top, *args, _order=order, **kwargs):
            for folder, subfolders, names in real_walk(top, *args, **kwargs):
                subfolders[:] = _order(subfolders)
                yield folder, subfolders, names

        monkeypatch.setattr(image_io.os, "walk", walk)
        listed.append([path.relative_to(cat).as_posix() for path in image_io.list_images(cat, recursive=True)])
    assert listed[0] == listed[1] == ["a_best/000.png", "a_best/001.png", "m_2019/000.png", "m_2019/001.png"]


def test_a_subfolder_that_cannot_be_listed_is_reported(tmp_path: Path, monkeypatch, caplog) -> None:
    import os

    (tmp_path / "unlabeled" / "batch2").mkdir(parents=True)
    real_scandir = os.scandir

    def scandir(path="."):  # as a folder without read permission (tests run as root, who may read anything)
        if str(path).endswith("batch2"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING):
        assert image_io.list_images(tmp_path / "unlabeled", recursive=True) == []
    assert f"could not list {tmp_path / 'unlabeled' / 'batch2'} (Permission denied): its images are left out" in caplog.text


def test_a_file_the_file_system_refused_is_read_again_by_the_next_run(image_folder: Path, tmp_path: Path, monkeypatch,
                                                                       caplog) -> None:
    # chmod changes neither size nor mtime: a cache would keep the file skipped after the fix
    real_read = image_io.read_image
    refused = sorted((image_folder / "labeled" / FOLDER_CLASSES[0]).iterdir())[0]

    def read_image(path, image_shape):
        if path == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path, image_shape)

    monkeypatch.setattr(image_io, "read_image", read_image)
    with caplog.at_level(logging.WARNING):
        first = _datamodule(image_folder, image_cache_dir=str(tmp_path))
    assert "the image cache is not written this time: 1 file(s) could not be opened" in caplog.text
    assert not list(tmp_path.glob("*.pt"))
    monkeypatch.setattr(image_io, "read_image", real_read)
    second = _datamodule(image_folder, image_cache_dir=str(tmp_path))
    assert len(second.data.train_images) == len(first.data.train_images) + 1
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_a_change_to_the_decoder_raises_its_version_so_that_old_image_caches_are_not_reused() -> None:
    # the 32-bit TIFF change once kept DECODER_VERSION: runs went on training on the near-black images of their cache
    import hashlib
    import inspect

    from ssgan.data.folder import DECODER_VERSION

    source = inspect.getsource(image_io.read_image) + inspect.getsource(image_io.upright)
    decoders = {5: "8f008a677fb3"}  # version -> the decoder's source hash; a new decoder adds a line
    assert hashlib.sha1(source.encode()).hexdigest()[:12] == decoders.get(DECODER_VERSION), (
        "read_image or upright changed: raise DECODER_VERSION in ssgan/data/folder.py and record the new hash here")


def test_more_formats_are_read_and_those_that_are_not_are_counted_not_passed_over_silently(tmp_path: Path,
                                                                                        caplog) -> None:
    # a phone's HEIC photos among its JPEGs, or a data set's PGM files, disappeared without a word
    from PIL import Image

    folder = tmp_path / "mixed"
    (folder / "deeper").mkdir(parents=True)
    picture = Image.fromarray(np.full((8, 8), 90, dtype=np.uint8))
    for name in ("a.png", "b.pgm", "c.ppm", "d.tga", "e.pcx", "deeper/f.pnm"):
        picture.save(folder / name)
    for name in ("g.heic", "deeper/h.HEIC", "i.jxl", "notes.txt", ".hidden.heic"):
        (folder / name).write_bytes(b"not decoded")
    with caplog.at_level(logging.WARNING):
        found = image_io.list_images(folder, recursive=True)
    assert [path.relative_to(folder).as_posix() for path in found] == ["a.png", "b.pgm", "c.ppm", "d.tga",
                                                                       "deeper/f.pnm", "e.pcx"]
    assert all((image_io.read_image(path, (1, 8, 8)) == 90).all() for path in found)
    assert [record.getMessage() for record in caplog.records] == [
        f"passed over 3 image(s) under {folder} in formats ssgan does not read (2 .heic, 1 .jxl); convert them to PNG "
        "or JPEG to use them"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(image_io.list_images(folder)) == 5  # not recursive: one .heic and one .jxl here
    assert "passed over 2 image(s)" in caplog.text


def test_a_labeled_image_linked_into_unlabeled_is_used_as_labeled_only(image_folder: Path, tmp_path: Path, caplog) -> None:
    # it sat in the unlabeled pool a second time, where pseudo-labelling could pick it: never a labeled image
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    plain = _datamodule(root, num_val=3, labeled_in_unlabeled=False)
    (root / "unlabeled" / "part1" / "again.png").symlink_to(root / "labeled" / "square" / "square_0.png")
    with caplog.at_level(logging.WARNING):
        linked = _datamodule(root, num_val=3, labeled_in_unlabeled=False)
    assert "1 image(s) under unlabeled/ (e.g. " in caplog.text and "again.png" in caplog.text
    assert torch.equal(linked.data.train_images, plain.data.train_images)  # the same images, the link's not again
    assert len(linked.pseudo_label_candidates()) == len(plain.pseudo_label_candidates())


def test_a_link_whose_target_is_gone_does_not_keep_the_image_cache_from_being_written(image_folder: Path,
                                                                                      tmp_path: Path, caplog) -> None:
    # its absence lasts: a cache may record it, where a file the file system refused is read again next time
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    (root / "unlabeled" / "part0" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with caplog.at_level(logging.WARNING):
        first = _datamodule(root, image_cache_dir=str(tmp_path / "cache"))
    assert "gone.png" in caplog.text and "the image cache is not written" not in caplog.text
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = _datamodule(root, image_cache_dir=str(tmp_path / "cache"))  # from the cache, the link listed again
    assert torch.equal(second.data.train_images, first.data.train_images)
    assert any(r.getMessage().startswith(f"skipped unreadable image {root / 'unlabeled' / 'part0' / 'gone.png'} (found when")
               for r in caplog.records)


def _tiff_with_a_damaged_header(path: Path) -> None:
    # a TIFF whose StripOffsets tag (273) says UNDEFINED bytes instead of LONG: Pillow raises TypeError, not OSError
    import io
    import struct

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.random.RandomState(0).rand(20, 24) * 255).astype(np.uint8)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for entry in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        at = ifd + 2 + 12 * entry
        if struct.unpack("<H", data[at:at + 2])[0] == 273:
            data[at + 2:at + 4] = struct.pack("<H", 7)
    path.write_bytes(bytes(data))


def _jpeg_with_a_foreign_exif_tag(path: Path) -> None:
    # a good JPEG stored sideways (orientation 6) whose EXIF also holds tag 0x0154 as text, which Pillow cannot
    # write back: ImageOps.exif_transpose raises struct.error on it
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "desc"
    raw = exif.tobytes().replace(b"\x01\x0e\x00\x02", b"\x01\x54\x00\x02")
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # (H, W, 3): a bright column at the left when stored
    stored[:, :4] = 255
    Image.fromarray(stored).save(path, "JPEG", exif=raw, quality=95)


def test_damaged_headers_are_skipped_and_a_foreign_exif_tag_keeps_the_picture(image_folder: Path, tmp_path: Path,
                                                                             caplog) -> None:
    _jpeg_with_a_foreign_exif_tag(tmp_path / "photo.jpg")
    upright = image_io.read_image(tmp_path / "photo.jpg", (1, 40, 20))[0].numpy()  # (H, W) as viewers show it
    assert upright[:4].mean() > 200 and upright[8:].mean() < 20  # turned: the left column is now the top row
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    _tiff_with_a_damaged_header(root / "unlabeled" / "part0" / "scan.tif")
    _jpeg_with_a_foreign_exif_tag(root / "labeled" / FOLDER_CLASSES[0] / "photo.jpg")
    with caplog.at_level(logging.WARNING):
        datamodule = _datamodule(root)
    assert f"skipped unreadable image {root / 'unlabeled' / 'part0' / 'scan.tif'} (" in caplog.text
    assert "photo.jpg" not in caplog.text
    assert torch.bincount(datamodule.data.train_labels[datamodule.data.train_labels >= 0]).tolist() == [5, 4, 4]


def test_a_cielab_tiff_is_read_as_grey_too(tmp_path: Path) -> None:
    # Pillow converts CIELab to RGB but not straight to grey: the grey reading goes through RGB
    from PIL import Image

    rgb = (np.random.RandomState(0).rand(10, 12, 3) * 255).astype(np.uint8)  # (H, W, 3)
    Image.fromarray(rgb).convert("LAB").save(tmp_path / "scan.tif")
    grey = image_io.read_image(tmp_path / "scan.tif", (1, 10, 12))[0].numpy().astype(float)  # (H, W)
    expected = np.asarray(Image.fromarray(rgb).convert("L"), dtype=float)
    assert np.abs(grey - expected).mean() < 3  # CIELab's round trip through RGB loses a little


def test_the_memory_limit_is_the_cgroups_where_lower_and_none_where_the_system_does_not_say(monkeypatch) -> None:
    import os
    from pathlib import Path as RealPath

    import ssgan.data.folder as folder

    machine = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    read_text = RealPath.read_text
    cgroup = {"/sys/fs/cgroup/memory.max": "max\n"}  # cgroup v2 without a limit

    def cgroup_files(path, *args, **kwargs):
        if str(path) in cgroup:
            return cgroup[str(path)]
        if str(path).startswith("/sys/fs/cgroup"):
            raise FileNotFoundError(path)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(RealPath, "read_text", cgroup_files)
    assert folder.memory_limit() == machine
    cgroup["/sys/fs/cgroup/memory.max"] = f"{2**30}\n"  # a SLURM job's 1 GiB, say
    assert folder.memory_limit() == min(machine, 2**30)
    del cgroup["/sys/fs/cgroup/memory.max"]
    cgroup["/sys/fs/cgroup/memory/memory.limit_in_bytes"] = f"{2**31}\n"  # cgroup v1
    assert folder.memory_limit() == min(machine, 2**31)
    monkeypatch.delattr(os, "sysconf")  # as on Windows: no check rather than a traceback
    assert folder.memory_limit() is None


def test_a_large_photo_is_read_without_pillows_two_line_warning_and_a_huge_one_stays_refused(tmp_path: Path,
                                                                                           monkeypatch) -> None:
    import warnings

    from PIL import Image

    Image.fromarray(np.full((12, 12), 50, dtype=np.uint8)).save(tmp_path / "large.png")  # 144 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above 100 pixels, refuses above 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning printed two lines on stderr
        assert (image_io.read_image(tmp_path / "large.png", (1, 8, 8)) == 50).all()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 70)
    with pytest.raises(Image.DecompressionBombError):  # beyond twice the limit: unreadable, as before
        image_io.read_image(tmp_path / "large.png", (1, 8, 8))
