"""``ssgan predict|extract|sample|export`` on a tiny checkpoint and their ``--help`` (their errors: test_bad_input.py)."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FOLDER_CLASSES
from ssgan.data.images import list_images, read_images
from ssgan.errors import UserError
from ssgan.tools import load_module, main


def run_tool(*args: str) -> None:
    main([str(a) for a in args])


@pytest.mark.parametrize("command", ["predict", "extract", "sample", "export"])
def test_every_subcommand_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run_tool(command, "--help")
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: ssgan {command}" in text and "CKPT" in text and len(text) > 300


@pytest.mark.parametrize(("args", "expected"), [
    (["predict"], "error: ssgan predict: the following arguments are required: CKPT, PATH; see ssgan predict --help"),
    (["frob"], "error: ssgan: argument {predict,extract,sample,export}: invalid choice: 'frob' (choose from "
               "'predict', 'extract', 'sample', 'export'); see ssgan --help"),
    (["sample", "x.ckpt", "--out", "d", "--n", "abc"],
     "error: ssgan sample: argument --n: invalid int value: 'abc'; see ssgan sample --help"),
    (["export", "x.ckpt", "--format", "onnx", "--bogus", "1"],
     "error: ssgan export: unrecognized arguments: --bogus 1; see ssgan export --help"),
])
def test_a_usage_error_is_one_line_naming_help(args: list[str], expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run_tool(*args)
    assert exited.value.code == 2
    assert capsys.readouterr().err == expected + "\n"


def test_predict_writes_class_and_confidence_per_file(folder_checkpoint: Path, image_folder: Path, tmp_path: Path, capsys) -> None:
    images = tmp_path / "new"
    shutil.copytree(image_folder / "test", images)
    (images / "square" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "preds.csv"
    run_tool("predict", folder_checkpoint, images, "--out", out, "--probabilities", "--batch-size", "4")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 9 and {row["class"] for row in rows} <= set(FOLDER_CLASSES)
    assert set(rows[0]) == {"file", "class", "confidence", *(f"p_{name}" for name in FOLDER_CLASSES)}
    for row in rows:  # the confidence is the largest class probability, and they sum to 1
        probabilities = [float(row[f"p_{name}"]) for name in FOLDER_CLASSES]
        assert abs(sum(probabilities) - 1) < 1e-4 and float(row["confidence"]) == pytest.approx(max(probabilities), abs=1e-6)
        assert row["class"] == FOLDER_CLASSES[int(np.argmax(probabilities))]
    assert "1 unreadable file(s) skipped" in capsys.readouterr().out
    # the same predictions as the module itself on the decoded images
    module = load_module(folder_checkpoint)
    files = list_images(images / "circle")
    decoded, _, _ = read_images(files, module.image_shape)
    expected = torch.softmax(module(decoded), dim=1).max(dim=1).values
    got = {row["file"]: float(row["confidence"]) for row in rows}
    assert [got[f"circle/{f.name}"] for f in files] == pytest.approx(expected.tolist(), abs=1e-5)


def test_predict_on_one_file(folder_checkpoint: Path, image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.csv"
    run_tool("predict", folder_checkpoint, next((image_folder / "test" / "stripes").iterdir()), "--out", out)
    assert len(list(csv.DictReader(out.open()))) == 1


def test_predict_on_several_paths_names_each_file_as_given_and_classifies_it_once(folder_checkpoint: Path,
                                                                                  image_folder: Path, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    # a shell glob (ssgan predict CKPT *.png) was "unrecognized arguments" listing every file
    monkeypatch.chdir(image_folder / "test")
    one = sorted(Path("stripes").iterdir())[0]
    out = tmp_path / "several.csv"
    run_tool("predict", folder_checkpoint, one, "stripes", "circle", "--out", out)  # `one` twice: once in the CSV
    rows = list(csv.DictReader(out.open()))
    expected = [str(path) for folder in ("stripes", "circle") for path in sorted(Path(folder).iterdir())]  # as given
    assert [row["file"] for row in rows] == [str(one)] + [name for name in expected if name != str(one)]
    single = tmp_path / "single.csv"
    run_tool("predict", folder_checkpoint, "stripes", "--out", single)  # one folder: names relative to it, as before
    assert {row["file"]: row["confidence"] for row in csv.DictReader(single.open())} == {
        str(Path(row["file"]).relative_to("stripes")): row["confidence"] for row in rows if row["file"].startswith("stripes")}


def test_extract_writes_features_labels_and_a_linear_probe(folder_checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "features.npz"
    run_tool("extract", folder_checkpoint, "--out", out)
    with np.load(out) as arrays:
        assert arrays["labeled_features"].shape == (9, 250) and arrays["test_features"].shape == (9, 250)
        assert arrays["unlabeled_labels"].min() == -1  # unknown labels of unlabeled/ images
        assert list(arrays["class_names"]) == list(FOLDER_CLASSES)
        probe = float(arrays["probe_test_acc"])
    saved = json.loads(out.with_suffix(".probe.json").read_text())
    assert 0 <= probe <= 1 and saved["test_acc"] == pytest.approx(probe)
    assert "linear probe" in capsys.readouterr().out


def test_folder_images_of_another_shape_than_the_checkpoints_are_told_how_to_fit(folder_checkpoint: Path,
                                                                                   image_folder: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run_tool("extract", folder_checkpoint, "--data", "folder", "--set", f"root={image_folder}", "--set", "channels=3")
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "do not fit the checkpoint (3 classes of (1, 28, 28)); read its images as the checkpoint's with --set channels=1 "
        "--set image_size=[28,28]")


def test_recorded_data_that_lost_a_class_since_training_are_named_as_changed(folder_checkpoint: Path, image_folder: Path,
                                                                             tmp_path: Path, monkeypatch, capsys) -> None:
    # without --data, the error once said "give the data it was trained on (without --data: ...)"
    changed = tmp_path / "images"
    shutil.copytree(image_folder, changed)
    for part in ("labeled", "test"):
        shutil.rmtree(changed / part / FOLDER_CLASSES[-1])
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["ssgan_datamodule"]["init_args"]["root"] = str(changed)
    torch.save(checkpoint, tmp_path / "moved.ckpt")
    monkeypatch.setenv("SSGAN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exited:
        run_tool("extract", tmp_path / "moved.ckpt", "--out", tmp_path / "features.npz")
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "do not fit the checkpoint (3 classes of (1, 28, 28)); the data the checkpoint records have changed since it was "
        "trained (a class folder added or removed?); put them back as they were, or name other data with --data and --set")


def test_a_checkpoint_from_another_machine_caches_in_this_machines_cache(folder_checkpoint: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=True)
    blocked = tmp_path / "a_file"
    blocked.write_text("")  # the training machine's cache folders: here, paths no one can make
    checkpoint["ssgan_datamodule"]["init_args"].update(split_cache_dir=str(blocked / "splits"),
                                                       image_cache_dir=str(blocked / "images"))
    moved = tmp_path / "moved.ckpt"
    torch.save(checkpoint, moved)
    monkeypatch.setenv("SSGAN_CACHE_DIR", str(tmp_path / "cache"))
    # it once said to set SSGAN_CACHE_DIR, which changed nothing
    run_tool("extract", moved, "--out", tmp_path / "features.npz")
    assert list((tmp_path / "cache" / "splits").iterdir()) and list((tmp_path / "cache" / "images").iterdir())


def test_extract_reads_set_values_as_given_names_and_names_each_probe_after_its_out(
        folder_checkpoint: Path, image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    # folder names that YAML reads otherwise: a number, a truth value, a comment, text it cannot parse
    # (they once gave a type error, a parser traceback, or silently the folder "imgs")
    for number, name in enumerate(["2024", "yes", "imgs #1", "@imgs"]):
        shutil.copytree(image_folder, tmp_path / name)
        out = tmp_path / f"run.2024-01-0{number}"  # a dot in the name that names no format
        run_tool("extract", folder_checkpoint, "--set", f"root={name}", "--out", out)
        with np.load(out) as arrays:
            assert len(arrays["test_labels"]) == 9
        assert json.loads((tmp_path / f"run.2024-01-0{number}.probe.json").read_text())["train_images"] == 9
    assert not (tmp_path / "run.probe.json").exists()  # each --out has its own probe file


def test_sample_writes_a_grid_and_class_folders_above_the_floor(folder_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    old_umask = os.umask(0o022)
    try:
        run_tool("sample", folder_checkpoint, "--n", "30", "--out", out, "--floor", "0.0")
    finally:
        os.umask(old_umask)
    assert (out / "grid.png").stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # an ordinary folder, not mkdtemp's owner-only one
    rows = list(csv.DictReader((out / "samples.csv").open()))
    assert len(rows) == 30 and all((out / row["file"]).is_file() for row in rows)
    assert {p.name for p in out.iterdir() if p.is_dir()} <= set(FOLDER_CLASSES)
    # each file sits in the folder of the class the discriminator gives its pixels, with that confidence
    module = load_module(folder_checkpoint)
    decoded, kept, _ = read_images([out / row["file"] for row in rows], module.image_shape)
    assert kept == list(range(30))
    with torch.no_grad():
        confidence, predicted = torch.softmax(module(decoded), dim=1).max(dim=1)
    assert [row["class"] for row in rows] == [FOLDER_CLASSES[int(i)] for i in predicted]
    assert [row["file"].split("/")[0] for row in rows] == [row["class"] for row in rows]
    assert [float(row["confidence"]) for row in rows] == pytest.approx(confidence.tolist(), abs=1e-5)
    # a floor keeps exactly the samples at or above it (the same seed draws the same samples)
    floor = float(np.median([float(row["confidence"]) for row in rows]))
    with pytest.raises(SystemExit):  # an existing folder is not overwritten without --overwrite
        run_tool("sample", folder_checkpoint, "--n", "30", "--out", out, "--floor", str(floor))
    run_tool("sample", folder_checkpoint, "--n", "30", "--out", out, "--floor", str(floor), "--overwrite")
    above = list(csv.DictReader((out / "samples.csv").open()))
    assert 0 < len(above) < 30 and all(float(row["confidence"]) >= floor - 1e-6 for row in above)
    assert {row["file"] for row in above} == {row["file"] for row in rows if float(row["confidence"]) >= floor}
    assert sum(1 for _ in out.rglob("sample_*.png")) == len(above)


@pytest.mark.parametrize("export_format", ["torchscript", "onnx"])
def test_export_gives_the_module_outputs(folder_checkpoint: Path, image_folder: Path, tmp_path: Path, export_format: str) -> None:
    import warnings

    out = tmp_path / ("model.onnx" if export_format == "onnx" else "model.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_tool("export", folder_checkpoint, "--format", export_format, "--out", out)
    assert not [w for w in caught if "torch.jit" in str(w.message)]  # torch's deprecation of TorchScript, 3 times
    module = load_module(folder_checkpoint)
    images, _, _ = read_images(list_images(image_folder / "test" / "square"), module.image_shape)
    batch = images.float() / 255  # the exported net takes floats in [0, 1]
    with torch.no_grad():
        expected = module(images)  # (B, K) from uint8, through the module's own path
    if export_format == "torchscript":
        got = torch.jit.load(str(out))(batch)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": batch.numpy()})[0])
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
    # the file says which logit is which class, and what it takes (it once held the weights alone)
    if export_format == "torchscript":
        metadata = {"class_names": "", "input": ""}
        torch.jit.load(str(out), _extra_files=metadata)
        metadata = {key: value.decode() for key, value in metadata.items()}  # torch reads them back as bytes
    else:
        metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["class_names"]) == list(FOLDER_CLASSES) == module.class_names
    assert metadata["input"] == "float images (B, 1, 28, 28) in [0, 1]"


@pytest.fixture
def conv_checkpoint(folder_checkpoint: Path, tmp_path: Path) -> Path:
    """The folder checkpoint turned into an untrained conv-net SSGAN for 16x16 RGB images."""
    from ssgan.module import SSGAN

    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"].update(image_shape=(3, 16, 16), arch="conv", data_init=False)
    checkpoint["state_dict"] = SSGAN(**checkpoint["hyper_parameters"]).state_dict()
    path = tmp_path / "conv.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("export_format", ["torchscript", "onnx"])
def test_export_of_a_conv_net_takes_pixels_in_0_1_and_maps_them_to_its_range(conv_checkpoint: Path, tmp_path: Path,
                                                                             export_format: str) -> None:
    # the conv net's input range is [-1, 1]; the exported model takes [0, 1] like the MLP's
    out = tmp_path / ("model.onnx" if export_format == "onnx" else "model.pt")
    run_tool("export", conv_checkpoint, "--format", export_format, "--out", out)
    module = load_module(conv_checkpoint)
    assert module.arch == "conv"
    pixels = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(pixels)  # (5, K)
    batch = pixels.float() / 255
    if export_format == "torchscript":
        got = torch.jit.load(str(out))(batch)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": batch.numpy()})[0])
    assert torch.allclose(got, expected, atol=1e-4)


def test_samples_train_as_synthetic_labeled_images(folder_checkpoint: Path, image_folder: Path, tmp_path: Path) -> None:
    from ssgan.data import FolderDataModule

    out = tmp_path / "samples"
    run_tool("sample", folder_checkpoint, "--n", "12", "--out", out, "--floor", "0.0")
    plain = FolderDataModule(root=str(image_folder))
    mixed = FolderDataModule(root=str(image_folder), synthetic_labeled_dir=str(out))
    plain.setup()
    mixed.setup()
    rows = list(csv.DictReader((out / "samples.csv").open()))
    _, mixed_labels = mixed.labeled_set()
    assert len(mixed_labels) == len(plain.labeled_set()[1]) + 12
    assert sorted(mixed_labels[-12:].tolist()) == sorted(FOLDER_CLASSES.index(row["class"]) for row in rows)


def test_extract_needs_no_synthetic_folder_that_the_run_trained_with(folder_checkpoint: Path, tmp_path: Path) -> None:
    # its features are of the data set's images; a run's samples folder moved since was "does not exist"
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    checkpoint["ssgan_datamodule"]["init_args"]["synthetic_labeled_dir"] = str(tmp_path / "moved_samples")
    torch.save(checkpoint, tmp_path / "with_samples.ckpt")
    run_tool("extract", tmp_path / "with_samples.ckpt", "--out", tmp_path / "with.npz")
    run_tool("extract", folder_checkpoint, "--out", tmp_path / "without.npz")
    with np.load(tmp_path / "with.npz") as given, np.load(tmp_path / "without.npz") as plain:
        assert np.array_equal(given["labeled_features"], plain["labeled_features"])


def test_synthetic_folder_names_map_class_names_with_a_slash(idx_root: Path, tmp_path: Path) -> None:
    from PIL import Image

    from ssgan.data import FashionMNISTDataModule

    folder = tmp_path / "samples" / "T-shirt_top"  # how `ssgan sample` names Fashion-MNIST's "T-shirt/top"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(folder / "sample_000001.png")
    datamodule = FashionMNISTDataModule(root=str(idx_root), download=False, num_labeled=20, num_val=10,
                                        synthetic_labeled_dir=str(tmp_path / "samples"))
    datamodule.setup()
    assert datamodule.labeled_set()[1][-1].item() == 0  # class 0 is T-shirt/top


def test_sample_overwrite_replaces_only_a_folder_that_sample_wrote(folder_checkpoint: Path, tmp_path: Path,
                                                                  monkeypatch, capsys) -> None:
    def refused(out: Path | str, *extra: str) -> str:
        with pytest.raises(SystemExit) as exited:
            run_tool("sample", folder_checkpoint, "--n", "5", "--out", out, *extra)
        assert exited.value.code == 2
        return capsys.readouterr().err

    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("precious")
    monkeypatch.chdir(work)
    # the working folder and the folders above it are never replaced (it once deleted keep.txt and sub/)
    assert "is the working folder" in refused(".", "--overwrite") and "is the working folder" in refused("..", "--overwrite")
    # two levels up is refused as well, and the message says so ("one above it" once read as only the parent)
    assert "is the working folder, a folder above it or the home folder" in refused(str(tmp_path.parent), "--overwrite")
    assert (work / "keep.txt").read_text() == "precious" and (work / "sub").is_dir()
    # a folder holding anything but an earlier sample's files is refused, and left as it was
    mixed = tmp_path / "mixed"
    run_tool("sample", folder_checkpoint, "--n", "5", "--out", mixed, "--floor", "0.0")
    (mixed / "notes.txt").write_text("mine")
    assert "holds notes.txt; choose a new --out folder" in refused(mixed, "--overwrite")
    assert (mixed / "notes.txt").read_text() == "mine" and (mixed / "grid.png").is_file()
    # a file is not a folder; missing parent folders are made
    assert "is a file; give a folder" in refused(work / "keep.txt")
    deep = tmp_path / "new" / "deeper" / "samples"
    run_tool("sample", folder_checkpoint, "--n", "5", "--out", deep, "--floor", "0.0")
    assert (deep / "grid.png").is_file() and (deep / "samples.csv").is_file()


def test_sample_removes_the_staging_folder_a_killed_sample_left_and_keeps_a_running_ones(folder_checkpoint: Path,
                                                                                         tmp_path: Path) -> None:
    # a sample killed outright (SIGKILL, the out-of-memory killer) left its half-written hidden folder for good
    from ssgan.tools import _replaced_folder, _staging_prefix

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ours = _staging_prefix(tmp_path / "samples")  # .samples.staging-<this machine>-<this pid>-
    killed = tmp_path / (ours.replace(f"-{os.getpid()}-", f"-{int(gone.stdout)}-") + "x1y2")
    running = tmp_path / f"{ours}a3b4"
    elsewhere = tmp_path / f".samples.staging-0badc0de-{int(gone.stdout)}-c5d6"  # another machine's, on a shared disk
    # and the samples a stopped --overwrite had set aside, but not yet removed, once the new ones were in place
    replaced = tmp_path / _replaced_folder(tmp_path / "samples").name.replace(f"-{os.getpid()}", f"-{int(gone.stdout)}")
    for staging in (killed, running, elsewhere, replaced):
        (staging / "circle").mkdir(parents=True)
        (staging / "circle" / "sample_000001.png").write_bytes(b"half")
    (tmp_path / "samples").mkdir()
    run_tool("sample", folder_checkpoint, "--n", "5", "--out", tmp_path / "samples", "--floor", "0.0")
    assert not killed.exists() and not replaced.exists() and running.is_dir() and elsewhere.is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([running.name, elsewhere.name, "samples"])


def test_sample_puts_back_the_samples_a_run_killed_between_its_renames_had_set_aside(folder_checkpoint: Path,
                                                                                   tmp_path: Path, capsys) -> None:
    # killed after the earlier folder was set aside and before the new one took its place: --out was gone
    from ssgan.tools import _replaced_folder

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "samples"
    run_tool("sample", folder_checkpoint, "--n", "5", "--out", out, "--floor", "0.0")
    before = sorted(path.relative_to(out) for path in out.rglob("*"))
    out.rename(tmp_path / _replaced_folder(out).name.replace(f"-{os.getpid()}", f"-{int(gone.stdout)}"))
    with pytest.raises(SystemExit) as exited:  # put back, so a new run without --overwrite does not replace them
        run_tool("sample", folder_checkpoint, "--n", "5", "--out", out, "--floor", "0.0")
    assert exited.value.code == 2 and "is not empty; choose a new --out folder or add --overwrite" in capsys.readouterr().err
    assert sorted(path.relative_to(out) for path in out.rglob("*")) == before
    assert [path.name for path in tmp_path.iterdir()] == ["samples"]


@pytest.mark.parametrize("stop", ["between the renames", "while the replaced samples are removed"])
def test_sample_overwrite_stopped_by_ctrl_c_keeps_one_whole_folder_and_no_hidden_one(
        stop: str, folder_checkpoint: Path, tmp_path: Path, monkeypatch, capsys, caplog) -> None:
    # a Ctrl-C there once left the earlier samples in a hidden .replaced folder that no later run removed

    out = tmp_path / "samples"
    run_tool("sample", folder_checkpoint, "--n", "5", "--out", out, "--floor", "0.0")
    before = sorted(path.relative_to(out) for path in out.rglob("*"))
    original_rename, original_rmtree = Path.rename, shutil.rmtree

    def rename(self: Path, target):
        if stop == "between the renames" and Path(target) == out and ".staging-" in self.name:
            raise KeyboardInterrupt
        return original_rename(self, target)

    def rmtree(path, *args, **kwargs):
        if stop != "between the renames" and ".removing-" in Path(path).name:
            (Path(path) / "grid.png").unlink()  # part of it removed, then the stop
            raise KeyboardInterrupt
        return original_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with pytest.raises(SystemExit) as exited, caplog.at_level(logging.WARNING):
        run_tool("sample", folder_checkpoint, "--n", "7", "--out", out, "--floor", "0.0", "--overwrite", "--seed", "1")
    err = capsys.readouterr().err
    assert exited.value.code == 130 and err.endswith("error: stopped by Ctrl-C (each output is written whole or not at all)\n")
    monkeypatch.undo()
    if stop == "between the renames":  # the earlier samples, as they were
        assert sorted(path.relative_to(out) for path in out.rglob("*")) == before
        assert [path.name for path in tmp_path.iterdir()] == ["samples"]
    else:  # the new samples; the set-aside folder is named, and the next run into --out removes it
        assert any("the next ssgan sample --out" in record.getMessage() for record in caplog.records)
        assert len((out / "samples.csv").read_text().splitlines()) == 8
        [left] = [path for path in tmp_path.iterdir() if ".removing-" in path.name]  # never put back: part of it is gone
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        left.rename(left.with_name(left.name.replace(f"-{os.getpid()}", f"-{int(gone.stdout)}")))  # a later process's view
        shutil.rmtree(out)  # even with no --out in its place
        run_tool("sample", folder_checkpoint, "--n", "5", "--out", out, "--floor", "0.0")
        assert len((out / "samples.csv").read_text().splitlines()) == 6
        assert [path.name for path in tmp_path.iterdir()] == ["samples"]


def test_sample_writes_class_folders_whose_names_are_not_utf8_and_keeps_an_earlier_folder_it_could_not_replace(
        folder_checkpoint: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=True)
    names = [os.fsdecode(b"cls_\xe9" + str(k).encode()) for k in range(len(FOLDER_CLASSES))]  # Latin-1 folder names
    checkpoint["hyper_parameters"]["class_names"] = names
    latin = tmp_path / "latin.ckpt"
    torch.save(checkpoint, latin)
    out = tmp_path / "samples"
    # it once stopped with a traceback from torchvision's PNG writer (and then from the CSV writer)
    run_tool("sample", latin, "--n", "10", "--out", out, "--floor", "0.0")
    rows = (out / "samples.csv").read_bytes().splitlines()[1:]
    assert len(rows) == 10 and all(row.split(b"/")[0].startswith(b"cls_\xe9") for row in rows)
    written = [path for path in out.iterdir() if path.is_dir()]
    assert {os.fsencode(path.name)[:5] for path in written} == {b"cls_\xe9"}
    assert sum(len(list(path.glob("sample_*.png"))) for path in written) == 10
    # --overwrite whose final rename fails: the earlier samples stay (they were once deleted first)
    before = sorted(path.relative_to(out) for path in out.rglob("*"))
    original = Path.rename

    def failing_rename(self: Path, target):
        if Path(target) == out and self.name.startswith(".samples.") and "replaced" not in self.name:  # the staging folder
            raise OSError(28, "No space left on device")
        return original(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(SystemExit) as exited:  # a one-line error
        run_tool("sample", latin, "--n", "5", "--out", out, "--floor", "0.0", "--overwrite")
    assert exited.value.code == 1 and "No space left on device" in capsys.readouterr().err
    assert sorted(path.relative_to(out) for path in out.rglob("*")) == before
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no staging or set-aside folder


@pytest.mark.parametrize(("code", "fix"), [(28, "; free some space, or give --out on another disk"),
                                          (27, "; give --out on a disk that takes larger files, or raise the shell's "
                                               "file size limit (ulimit -f)")])
def test_a_write_that_does_not_fit_names_the_out_file_and_the_fix(code: int, fix: str, folder_checkpoint: Path,
                                                                   image_folder: Path, tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    # a full disk or a file size limit names no file: the line was only "error: File too large"
    import ssgan.tools

    def no_room(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(ssgan.tools.csv, "writer", no_room)
    out = tmp_path / "preds.csv"
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", folder_checkpoint, image_folder, "--out", out)
    assert exited.value.code == 1 and capsys.readouterr().err == f"error: {os.strerror(code)}: {out}{fix}\n"
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("command", "example"), [("predict", "--out preds.csv"), ("extract", "--out features.npz"),
                                                  ("export", "--out model.pt"), ("sample", "a new folder, e.g. --out samples")])
def test_an_empty_out_is_a_one_line_error_not_the_working_folder(command: str, example: str, folder_checkpoint: Path,
                                                                  image_folder: Path, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    # Path("") is "."; export's --out= once fell back to its default name beside the checkpoint
    monkeypatch.chdir(tmp_path)
    extra = {"predict": [image_folder / "test"], "export": ["--format", "torchscript"]}.get(command, [])
    with pytest.raises(SystemExit) as exited:
        run_tool(command, folder_checkpoint, *extra, "--out=")
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"--out is empty; give {'' if command == 'sample' else 'a file name, e.g. '}"
                                            f"{example}\n")
    assert list(tmp_path.iterdir()) == [] and not folder_checkpoint.with_suffix(".pt").exists()


def test_weights_of_another_shape_are_named_in_the_one_line_error(folder_checkpoint: Path, tmp_path: Path, capsys) -> None:
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    name = next(key for key in checkpoint["state_dict"] if key.endswith("weight"))
    checkpoint["state_dict"][name] = checkpoint["state_dict"][name][:1]  # a damaged file: one row of a weight
    torch.save(checkpoint, tmp_path / "damaged.ckpt")
    with pytest.raises(SystemExit):
        run_tool("predict", tmp_path / "damaged.ckpt", tmp_path)
    err = capsys.readouterr().err
    # torch's message opens with "Error(s) in loading state_dict for SSGAN:" and names the mismatch on its next line
    assert f"does not match the net its hyperparameters describe (size mismatch for {name}: " in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["predict", "extract", "export"])
def test_an_out_folder_for_a_file_is_a_one_line_error(command: str, folder_checkpoint: Path, image_folder: Path,
                                                      tmp_path: Path, capsys) -> None:
    folder = tmp_path / "existing"
    folder.mkdir()
    extra = {"predict": [image_folder / "test"], "extract": [], "export": ["--format", "torchscript"]}[command]
    with pytest.raises(SystemExit) as exited:
        run_tool(command, folder_checkpoint, *extra, "--out", folder)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {folder} is a folder; give a file name") and err.count("\n") == 1
    assert not any(folder.iterdir())
    # a folder not made yet, named with a trailing slash: not a file of that name
    with pytest.raises(SystemExit):
        run_tool(command, folder_checkpoint, *extra, "--out", f"{tmp_path / 'new'}/")
    assert capsys.readouterr().err.startswith(f"error: --out {tmp_path / 'new'}/ is a folder; give a file name")
    assert not (tmp_path / "new").exists()
    # an existing file's path with a slash typed after it: that file, replaced as without the slash
    (tmp_path / "earlier").write_text("old")
    run_tool(command, folder_checkpoint, *extra, "--out", f"{tmp_path / 'earlier'}/")
    assert (tmp_path / "earlier").read_bytes() != b"old"


@pytest.mark.parametrize("command", ["predict", "extract", "export"])
def test_an_out_file_that_is_the_checkpoint_is_refused_and_kept(command: str, folder_checkpoint: Path,
                                                                image_folder: Path, tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "model.ckpt"
    shutil.copyfile(folder_checkpoint, checkpoint)
    before = checkpoint.read_bytes()
    extra = {"predict": [image_folder / "test"], "extract": [], "export": ["--format", "torchscript"]}[command]
    with pytest.raises(SystemExit) as exited:
        run_tool(command, checkpoint, *extra, "--out", checkpoint)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {checkpoint} is an input of this command") and err.count("\n") == 1
    assert checkpoint.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


@pytest.mark.parametrize(("command", "out", "message"), [
    (["extract"], "features.probe.json", "error: --out OUT is named as a .json file, but this writes a NumPy .npz "
                                          "archive; give a name ending in .npz, e.g. --out DIR/features.npz"),
    (["export", "--format", "torchscript"], "model.onnx",
     "error: --out OUT is named as a .onnx file, but this writes a TorchScript model; give a name ending in .pt, e.g. "
     "--out DIR/model.pt, or use --format onnx"),
    (["export", "--format", "onnx"], "model.pt", "error: --out OUT is named as a .pt file, but this writes an ONNX model; "
                                                 "give a name ending in .onnx, e.g. --out DIR/model.onnx, or use --format "
                                                 "torchscript"),
])
def test_an_out_file_named_for_another_format_is_refused(command: list[str], out: str, message: str,
                                                         folder_checkpoint: Path, tmp_path: Path, capsys) -> None:
    # extract wrote its archive into the .json and its probe beside it as .probe.probe.json; export wrote
    # TorchScript into model.onnx
    (tmp_path / out).write_text("kept")
    with pytest.raises(SystemExit) as exited:
        run_tool(command[0], folder_checkpoint, *command[1:], "--out", tmp_path / out)
    assert exited.value.code == 2
    expected = message.replace("OUT", str(tmp_path / out)).replace("DIR", str(tmp_path))
    assert capsys.readouterr().err == expected + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out] and (tmp_path / out).read_text() == "kept"


@pytest.mark.parametrize(("command", "out"), [
    (["extract"], "features_lr0.1"), (["extract"], "run.2024-01-01"), (["extract"], "features"),
    (["export", "--format", "torchscript"], "model.pth"), (["export", "--format", "torchscript"], "model.v2"),
])
def test_an_out_file_with_a_dot_that_names_no_format_is_written(command: list[str], out: str, folder_checkpoint: Path,
                                                               tmp_path: Path) -> None:
    run_tool(command[0], folder_checkpoint, *command[1:], "--out", tmp_path / out)
    assert (tmp_path / out).is_file()


def test_how_the_tools_spell_a_datamodules_settings() -> None:
    from ssgan.tools import _how_to_set_here

    # the value the message opens with was given (wrong); later ones are the fix; a list stays whole
    assert _how_to_set_here("data.image_size=32.5 is not a size; use e.g. data.image_size=[64,48]") == (
        "here: --set image_size=[64,48]")
    # a setting named in passing, with no value, after the one at fault: not a setting to give
    assert _how_to_set_here("data.labeled_batch_size=-1 is not a batch size; use 1 or more, or null (the labeled "
                            "batch is then as large as data.batch_size)") == "here: --set labeled_batch_size=VALUE"
    assert _how_to_set_here("files not found; set data.download=true or point data.root at them") == (
        "here: --set download=true, --set root=VALUE")
    # a folder's layout error names no setting: no hint (it once added "here: --set KEY=VALUE, e.g. --set root=PATH")
    assert _how_to_set_here("class folder /x/labeled/zz holds no images (.png); add images or remove the folder") == ""


def test_predict_with_its_arguments_swapped_says_so(folder_checkpoint: Path, image_folder: Path, tmp_path: Path,
                                                    capsys) -> None:
    images = image_folder / "test"
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", images, folder_checkpoint, "--out", tmp_path / "preds.csv")
    assert exited.value.code == 2
    assert capsys.readouterr().err == (f"error: {folder_checkpoint} is the checkpoint: it comes first, then the images; "
                                       f"ssgan predict {folder_checkpoint} {images}\n")
    assert not (tmp_path / "preds.csv").exists()
    # one image and the checkpoint, swapped
    image = sorted(images.rglob("*.png"))[0]
    with pytest.raises(SystemExit):
        run_tool("predict", image, folder_checkpoint, "--out", tmp_path / "preds.csv")
    assert capsys.readouterr().err == (f"error: {folder_checkpoint} is the checkpoint: it comes first, then the images; "
                                       f"ssgan predict {folder_checkpoint} {image}\n")


def test_predict_errors_name_the_fix_and_a_hidden_image_given_by_name_is_read(folder_checkpoint: Path, tmp_path: Path,
                                                                              capsys) -> None:
    from PIL import Image

    empty = tmp_path / "empty"
    empty.mkdir()
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"not a png")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    for path, line in ((empty, f"error: {empty} holds no images (.png .jpg .jpeg .jfif .jpe .bmp .webp .tif .tiff .gif .avif .pgm .ppm .pbm .pnm .tga .pcx, in it or "
                                "in its subfolders but hidden ones); give a folder that holds images, or an image file"),
                       (notes, f"error: {notes} is not an image file; give a file ending in one of .png .jpg .jpeg .jfif "
                               ".jpe .bmp .webp .tif .tiff .gif .avif .pgm .ppm .pbm .pnm .tga .pcx (convert it first), or a folder of images"),
                       (damaged, f"error: {damaged} could not be read as an image (see the warning above); give a "
                                 "readable image")):
        with pytest.raises(SystemExit) as exited:
            run_tool("predict", folder_checkpoint, path, "--out", tmp_path / "preds.csv")
        assert exited.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == line
        assert not (tmp_path / "preds.csv").exists()
    hidden = tmp_path / ".scan.png"  # named on purpose: it once was "not an image file"
    Image.new("L", (28, 28), 128).save(hidden)
    run_tool("predict", folder_checkpoint, hidden, "--out", tmp_path / "preds.csv")
    assert (tmp_path / "preds.csv").read_text().splitlines()[1].startswith(".scan.png,")


def test_export_refuses_a_default_out_file_that_is_the_checkpoint(folder_checkpoint: Path, tmp_path: Path,
                                                                  capsys) -> None:
    checkpoint = tmp_path / "model.pt"  # the default --out is CKPT with .pt: the checkpoint itself
    shutil.copyfile(folder_checkpoint, checkpoint)
    with pytest.raises(SystemExit):
        run_tool("export", checkpoint, "--format", "torchscript")
    # the example is another name (it once suggested --out .../model.pt, the very file refused)
    assert capsys.readouterr().err == (f"error: --out {checkpoint} is an input of this command and would be overwritten; "
                                       f"give another file name, e.g. --out {tmp_path / 'model_new.pt'}\n")
    assert checkpoint.read_bytes() == folder_checkpoint.read_bytes()


def test_predict_refuses_an_out_file_that_is_one_of_its_images(folder_checkpoint: Path, image_folder: Path,
                                                                tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    shutil.copytree(image_folder / "test", images)
    victim = sorted(images.rglob("*.png"))[0]
    before = victim.read_bytes()
    with pytest.raises(SystemExit):
        run_tool("predict", folder_checkpoint, images, "--out", victim)
    assert "is an input of this command" in capsys.readouterr().err and victim.read_bytes() == before


@pytest.mark.parametrize("given, message", [
    (["--data", "folder"], "error: --data folder needs root; add --set root=PATH\n"),
    (["--set", "nmu_labeled=20"], "error: --set nmu_labeled: FolderDataModule takes no argument 'nmu_labeled'; "
                                  "did you mean --set num_labeled=...?\n"),
    # the datamodule's own message names data.num_labeled, as in training: the line says how to set it here
    (["--set", "num_labeled=5"], "error: data.num_labeled=5 is not divisible by the 3 classes; use 3 or 6 "
                                 "(here: --set num_labeled=VALUE)\n"),
    # a mistyped value, as ssgan-train names it (it was once "'<' not supported between instances of 'str' and 'int'")
    (["--set", "split_seed=abc"], "error: data.split_seed=abc is not a whole number; e.g. data.split_seed=0 "
                                  "(here: --set split_seed=0)\n"),
])
def test_extract_names_a_missing_or_misspelt_data_setting(given: list[str], message: str, folder_checkpoint: Path,
                                                          tmp_path: Path, capsys) -> None:
    out = tmp_path / "features.npz"
    with pytest.raises(SystemExit) as exited:
        run_tool("extract", folder_checkpoint, *given, "--out", out)
    assert exited.value.code == 2 and capsys.readouterr().err == message and not out.exists()


def test_extract_spells_each_data_setting_of_a_datamodule_error_as_its_own_option(folder_checkpoint: Path,
                                                                                 tmp_path: Path, capsys) -> None:
    # it spelt only the first (root=VALUE) and left "data.download=true" as the training's spelling
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exited:
        run_tool("extract", folder_checkpoint, "--data", "mnist", "--set", f"root={empty}", "--set", "download=false",
                 "--out", tmp_path / "features.npz")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: MNIST files not found under {empty}") and err.count("\n") == 1
    assert err.endswith("; set data.download=true or point data.root at the folder holding them "
                        "(here: --set download=true, --set root=VALUE)\n")


def test_extract_warns_when_the_split_drawn_now_is_not_the_checkpoints(folder_checkpoint: Path, tmp_path: Path,
                                                                      caplog) -> None:
    import logging

    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    split = checkpoint["FolderDataModule"]["split"]  # the datamodule's state: the split it trained on
    split["labeled"] = split["labeled"].flip(0)  # the same images in another order: not the split drawn now
    changed = tmp_path / "changed.ckpt"
    torch.save(checkpoint, changed)
    with caplog.at_level(logging.WARNING):
        run_tool("extract", folder_checkpoint, "--out", tmp_path / "same.npz")
        assert not any("split drawn now differs" in record.getMessage() for record in caplog.records)
        run_tool("extract", changed, "--out", tmp_path / "changed.npz")
    assert any("split drawn now differs from the one the checkpoint trained on" in record.getMessage()
               for record in caplog.records)


def test_checkpoints_record_the_data_folders_as_absolute_paths(tmp_path: Path, monkeypatch) -> None:
    from ssgan.module import _absolute_paths

    monkeypatch.chdir(tmp_path)  # a relative data.root once made the tools fail from any other working folder
    recorded = _absolute_paths({"root": "images", "image_cache_dir": ".cache/ssgan/images", "split_cache_dir": None,
                                "num_labeled": 50, "name": "images"})
    assert recorded == {"root": str(tmp_path / "images"), "image_cache_dir": str(tmp_path / ".cache/ssgan/images"),
                        "split_cache_dir": None, "num_labeled": 50, "name": "images"}


def test_a_run_folder_for_a_checkpoint_names_the_file_to_give(folder_checkpoint: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", folder_checkpoint.parent, tmp_path)  # <run>/checkpoints, not a file in it
    assert exited.value.code == 2
    assert capsys.readouterr().err == (f"error: {folder_checkpoint.parent} is a folder; give a checkpoint file, "
                                       f"e.g. {folder_checkpoint}\n")


def test_sample_warns_when_every_kept_sample_is_of_one_class(folder_checkpoint: Path, tmp_path: Path,
                                                            monkeypatch, caplog) -> None:
    import logging

    from ssgan.module import SSGAN

    def collapsed(self, n: int, seed: int = 0) -> torch.Tensor:  # a generator that draws one image, n times
        return torch.full((n, *self.image_shape), 0.5)

    monkeypatch.setattr(SSGAN, "sample", collapsed)
    with caplog.at_level(logging.WARNING):
        run_tool("sample", folder_checkpoint, "--n", "30", "--out", tmp_path / "samples", "--floor", "0.0")
    assert any("30 of the 30 samples kept are of one class" in record.getMessage() and "collapsed" in record.getMessage()
               for record in caplog.records)


def test_an_export_that_fails_its_check_leaves_an_earlier_file_as_it_was(folder_checkpoint: Path, tmp_path: Path,
                                                                         monkeypatch, capsys) -> None:
    out = tmp_path / "model.pt"
    out.write_bytes(b"an earlier export")
    monkeypatch.setattr(torch.jit, "load", lambda path: (lambda images: torch.zeros(len(images), 3)))  # a bad file
    with pytest.raises(SystemExit) as exited:
        run_tool("export", folder_checkpoint, "--format", "torchscript", "--out", out)
    assert exited.value.code == 2 and "differs from the module" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier export" and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@pytest.mark.parametrize("count, batch_size", [(1, 100), (2, 100), (101, 100), (3, 2), (5, 1)])
def test_sample_takes_any_count_even_one_left_over_for_batchnorm(count: int, batch_size: int, folder_checkpoint: Path) -> None:
    module = load_module(folder_checkpoint)
    # 1 and 101, and odd counts in batches of 2, once failed: a batch of one image in the generator's batchnorm
    images = module.sample(count, seed=0, batch_size=batch_size)
    assert images.shape == (count, *module.image_shape) and torch.isfinite(images).all()
    assert torch.equal(images, module.sample(count, seed=0, batch_size=batch_size))


def test_sample_refuses_a_seed_beyond_64_bits(folder_checkpoint: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run_tool("sample", folder_checkpoint, "--n", "5", "--seed", str(2**70), "--out", tmp_path / "samples")
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith(f"error: --seed {2**70} does not fit in 64 bits") and err.count("\n") == 1
    assert not (tmp_path / "samples").exists()


def test_extract_names_the_stored_labels_with_the_datas_classes(folder_checkpoint: Path, image_folder: Path,
                                                                 tmp_path: Path) -> None:
    renamed = tmp_path / "renamed"  # the same images, their class folders renamed: labels index these names
    shutil.copytree(image_folder, renamed)
    for part in ("labeled", "test"):
        for name in FOLDER_CLASSES:
            (renamed / part / name).rename(renamed / part / f"new_{name}")
    out = tmp_path / "features.npz"
    run_tool("extract", folder_checkpoint, "--data", "folder", "--set", f"root={renamed}", "--set", "num_val=3",
             "--out", out)
    with np.load(out) as arrays:
        assert list(arrays["class_names"]) == [f"new_{name}" for name in FOLDER_CLASSES]


@pytest.mark.parametrize("command", ["predict", "extract", "export", "sample"])
def test_an_out_under_a_file_is_refused_before_the_work(command: str, folder_checkpoint: Path, image_folder: Path,
                                                        tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    extra = {"predict": [image_folder / "test"], "extract": [], "export": ["--format", "torchscript"],
             "sample": ["--n", "5"]}[command]
    with pytest.raises(SystemExit) as exited:
        run_tool(command, folder_checkpoint, *extra, "--out", blocker / "deeper" / "out.csv")
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err == f"error: --out {blocker / 'deeper' / 'out.csv'}: {blocker} is a file, " \
                                             "not a folder; give a path under a folder you can write to\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_predict_writes_a_file_name_that_is_not_utf8(folder_checkpoint: Path, image_folder: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    source = next((image_folder / "test" / "stripes").iterdir())
    shutil.copyfile(source, os.fsencode(images) + b"/caf\xe9.png")  # a Latin-1 name, as old archives hold
    out = tmp_path / "preds.csv"
    run_tool("predict", folder_checkpoint, images, "--out", out)
    assert out.read_bytes().splitlines()[1].startswith(b"caf\xe9.png,")


def test_export_checks_large_logits_relative_to_their_size(folder_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    for name in ("discriminator.classifier.scale", "ema_discriminator.classifier.scale"):
        checkpoint["state_dict"][name] *= 1000  # logits in the thousands: float32 rounding alone exceeds 1e-4
    big = tmp_path / "big.ckpt"
    torch.save(checkpoint, big)
    run_tool("export", big, "--format", "torchscript", "--out", tmp_path / "big.pt")  # once refused as "differs"
    assert (tmp_path / "big.pt").is_file()


def test_predicts_help_names_every_image_suffix_it_reads() -> None:
    from ssgan.data.images import IMAGE_SUFFIXES
    from ssgan.tools import build_parser

    usage = build_parser().format_help() + " ".join(
        action.format_help() for action in build_parser()._subparsers._group_actions[0].choices.values())
    assert f"({' '.join(IMAGE_SUFFIXES)})" in " ".join(usage.split())  # argparse wraps the lines


def test_predict_refuses_an_out_file_named_for_another_format(folder_checkpoint: Path, image_folder: Path,
                                                              tmp_path: Path, capsys) -> None:
    # it wrote its CSV text into p.npz
    out = tmp_path / "p.npz"
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", folder_checkpoint, image_folder, "--out", out)
    assert exited.value.code == 2 and not out.exists()
    assert capsys.readouterr().err == (f"error: --out {out} is named as a .npz file, but this writes CSV text; give a "
                                       f"name ending in .csv, e.g. --out {tmp_path / 'p.csv'}\n")
    run_tool("predict", folder_checkpoint, image_folder, "--out", tmp_path / "p.txt")  # text that fits
    assert (tmp_path / "p.txt").read_text().startswith("file,")


def test_a_synthetic_labeled_dir_that_is_a_file_says_so(tmp_path: Path) -> None:
    from ssgan.data import DigitsDataModule

    grid = tmp_path / "grid.png"  # `ssgan sample`'s grid, given for its folder: "does not exist", it said
    grid.write_bytes(b"")
    with pytest.raises(UserError, match=rf"^data.synthetic_labeled_dir={grid} is a file, not a folder; give the folder "
                                        r"that `ssgan sample` wrote$"):
        DigitsDataModule(num_labeled=50, synthetic_labeled_dir=str(grid), split_cache_dir=None)
    with pytest.raises(UserError, match=r"does not exist; give the folder"):
        DigitsDataModule(num_labeled=50, synthetic_labeled_dir=str(tmp_path / "missing"), split_cache_dir=None)


def test_escaped_output_prints_a_name_that_is_not_utf8_under_a_strict_locale(monkeypatch) -> None:
    # under en_US.UTF-8, stdout is strict: `ssgan export` failed its last print after writing its file
    import io
    import sys

    from ssgan.command_line import escape_unencodable_output

    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", strict)
    escape_unencodable_output()
    print("class", os.fsdecode(b"cls_\xe9"))
    strict.flush()
    assert strict.buffer.getvalue() == b"class cls_\\udce9\n"


def test_escaped_output_covers_the_log_files_open_at_the_time(tmp_path: Path) -> None:
    # Hydra's train.log handler: a file name that is not UTF-8 was a "--- Logging error ---" and a lost line
    import logging

    from ssgan.command_line import escape_unencodable_output

    handler = logging.FileHandler(tmp_path / "train.log", encoding="utf-8")
    root = logging.getLogger()
    # this handler alone: pytest's own capture of the record would carry the name to an xdist controller, whose
    # channel cannot encode it (the worker crashed)
    kept = root.handlers[:]
    root.handlers[:] = [handler]
    try:
        escape_unencodable_output()
        logging.getLogger("ssgan.test").warning("skipped %s", os.fsdecode(b"bad_\xfe.png"))
    finally:
        root.handlers[:] = kept
        handler.close()
    assert (tmp_path / "train.log").read_bytes() == b"skipped bad_\\udcfe.png\n"


def test_each_class_gets_its_own_sample_folder_inside_the_sample_folder() -> None:
    from ssgan.data.images import class_folder_names

    # "a/b" and "a_b" once shared the folder a_b, mixing their samples; ".." named the folder above
    assert class_folder_names(["T-shirt/top", "a/b", "a_b", "..", "", "coat"]) == [
        "T-shirt_top", "a_b_1", "a_b_2", "class_3", "class_4", "coat"]


def _altered_checkpoint(folder_checkpoint: Path, out: Path, **changes) -> Path:
    """A copy of the folder run's checkpoint with top-level entries (or hyperparameters, as ``hp_<name>``) changed."""
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if key.startswith("hp_"):
            checkpoint["hyper_parameters"][key[3:]] = value
        else:
            checkpoint[key] = value
    torch.save(checkpoint, out)
    return out


CHECKPOINT_CLASS_CASES = [
    # a checkpoint from elsewhere naming a callable, with arguments of its choosing: never called
    ("ssgan_module", "subprocess.Popen", "records its model class as subprocess.Popen, which is not a ClassifierModule; "
                                         "the checkpoint is damaged or not ssgan's"),
    ("ssgan_datamodule", {"class_path": "subprocess.Popen", "init_args": {"args": "touch {marker}", "shell": True}},
     "records its data class as subprocess.Popen, which is not a SemiSupervisedDataModule; the checkpoint is damaged "
     "or not ssgan's"),
    # a module this process has not imported is not imported for a checkpoint
    ("ssgan_module", "my_project.models.MySSGAN", "records its model class as my_project.models.MySSGAN, which is not "
                                                  "ssgan's; ssgan loads only its own classes from a checkpoint, or one "
                                                  "whose module your Python code imported first"),
    # importing ssgan.__main__ runs ssgan-train
    ("ssgan_module", "ssgan.__main__.SSGAN", "records its model class as ssgan.__main__.SSGAN, which is not ssgan's; "
                                             "ssgan loads only its own classes from a checkpoint, or one whose module "
                                             "your Python code imported first"),
    ("ssgan_module", "ssgan.module.Renamed", "records its model class as ssgan.module.Renamed, which this installation "
                                             "does not have (AttributeError); load it with the ssgan version that wrote it"),
]


# predict reads no data from the checkpoint: only extract meets a recorded data class
@pytest.mark.parametrize("command, entry, recorded, message", [
    (command, *case) for command in ("predict", "extract") for case in CHECKPOINT_CLASS_CASES
    if command == "extract" or case[0] == "ssgan_module"])
def test_a_checkpoint_names_only_ssgans_classes(command: str, entry: str, recorded, message: str, folder_checkpoint: Path,
                                               image_folder: Path, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    if isinstance(recorded, dict):
        recorded = {**recorded, "init_args": {**recorded["init_args"], "args": f"touch {marker}"}}
    altered = _altered_checkpoint(folder_checkpoint, tmp_path / "altered.ckpt", **{entry: recorded})
    extra = [image_folder / "test"] if command == "predict" else []
    with pytest.raises(SystemExit) as exited:
        run_tool(command, altered, *extra, "--out", tmp_path / ("out.csv" if command == "predict" else "out.npz"))
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert not marker.exists() and not list(tmp_path.glob("out*"))


def test_a_checkpoint_whose_class_names_do_not_match_its_classes_is_refused(folder_checkpoint: Path, image_folder: Path,
                                                                            tmp_path: Path, capsys) -> None:
    altered = _altered_checkpoint(folder_checkpoint, tmp_path / "altered.ckpt", hp_class_names=["a", "b"])
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", altered, image_folder / "test", "--out", tmp_path / "out.csv")
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "does not match the net its hyperparameters describe (class_names holds 2 names " \
                                      "for 3 classes)" in err, err


def test_an_out_that_is_a_device_or_a_pipe_is_refused_and_left_as_it_is(folder_checkpoint: Path, image_folder: Path,
                                                                       tmp_path: Path, capsys) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", folder_checkpoint, image_folder / "test", "--out", pipe)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err == (f"error: --out {pipe} is not a regular file (a device or a pipe); give a "
                                              "file name, e.g. --out preds.csv\n")
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_dev_stdout_redirected_to_a_file_is_refused_not_replaced(folder_checkpoint: Path, image_folder: Path,
                                                                 tmp_path: Path) -> None:
    # /dev/stdout is then a link to that regular file: renaming the CSV onto it replaced everything else written there
    log = tmp_path / "log.txt"
    script = ("import sys; from ssgan.tools import main; print('before', flush=True); "
              f"main(['predict', {str(folder_checkpoint)!r}, {str(image_folder / 'test')!r}, '--out', '/dev/stdout'])")
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, "-c", script], stdout=handle, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == (
        "error: --out /dev/stdout is not a regular file (a device or a pipe); give a file name, e.g. --out preds.csv")
    assert log.read_text() == "before\n"


@pytest.mark.parametrize("given", ["checkpoint", "images"])
def test_a_device_given_as_the_checkpoint_or_the_images_is_not_called_missing(given: str, folder_checkpoint: Path,
                                                                              image_folder: Path, capsys) -> None:
    paths = {"checkpoint": ["/dev/null", image_folder / "test"], "images": [folder_checkpoint, "/dev/null"]}[given]
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", *paths)
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: {'checkpoint ' if given == 'checkpoint' else ''}/dev/null is not "
                                              "a regular file; give ")


def test_extract_refuses_a_folder_where_its_probe_goes_before_writing_the_features(folder_checkpoint: Path,
                                                                                   tmp_path: Path, capsys) -> None:
    (tmp_path / "features.probe.json").mkdir()
    with pytest.raises(SystemExit) as exited:
        run_tool("extract", folder_checkpoint, "--out", tmp_path / "features.npz")
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "features.probe.json, where extract writes the linear probe's score" in err, err
    assert not (tmp_path / "features.npz").exists()


def test_a_failed_rename_names_the_file_asked_for_not_the_temporary_one(tmp_path: Path) -> None:
    from ssgan.atomic import atomic_write

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("keeps the folder from being replaced")
    with pytest.raises(OSError) as raised:
        atomic_write(tmp_path / "taken", lambda temporary: temporary.write_text("new"))
    assert raised.value.filename == str(tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary file left


def test_sample_that_keeps_no_sample_says_to_lower_the_floor(folder_checkpoint: Path, tmp_path: Path, monkeypatch,
                                                            caplog) -> None:
    import logging

    import ssgan.tools as tools

    def undecided(module, pixels, batch_size):  # a discriminator that gives each of the 3 classes a third
        return torch.full((len(pixels), 3), 1 / 3), torch.zeros(len(pixels), 4)

    monkeypatch.setattr(tools, "_forward_batches", undecided)
    with caplog.at_level(logging.WARNING):
        run_tool("sample", folder_checkpoint, "--n", "5", "--out", tmp_path / "samples", "--floor", "0.9")
    assert "no sample reached confidence 0.9, so the folder holds grid.png only; lower --floor (e.g. --floor 0.5)" in caplog.text
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["grid.png", "samples.csv"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a floor at 0.5 already: the example goes lower, not to 0.5 again
        run_tool("sample", folder_checkpoint, "--n", "5", "--out", tmp_path / "samples2", "--floor", "0.5")
    assert "lower --floor (e.g. --floor 0.25)" in caplog.text


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_tool_stopped_by_ctrl_c_or_sigterm_says_so_in_one_line_and_leaves_no_half_written_output(
        signal_name: str, folder_checkpoint: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import signal

    import ssgan.plots as plots

    def stopped_while_writing(images, path):  # the signal arrives while sample fills its staging folder
        path.write_bytes(b"half a grid")
        os.kill(os.getpid(), getattr(signal, signal_name))

    monkeypatch.setattr(plots, "save_image_grid", stopped_while_writing)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts a program (a test worker may differ)
    try:
        with pytest.raises(SystemExit) as stop:
            run_tool("sample", folder_checkpoint, "--n", "5", "--out", tmp_path / "samples")
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C left the tool as a traceback")
    finally:
        signal.signal(signal.SIGINT, handlers[0])
    assert stop.value.code == {"SIGINT": 130, "SIGTERM": 143}[signal_name]  # as a shell counts a stop by that signal
    shown = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}[signal_name]
    assert capsys.readouterr().err == f"error: stopped by {shown} (each output is written whole or not at all)\n"
    assert list(tmp_path.iterdir()) == []  # neither the samples nor sample's hidden staging folder
    assert signal.getsignal(signal.SIGTERM) is handlers[1]  # the tool put the SIGTERM handler back


@pytest.mark.parametrize("hyper_parameters", [["image_shape"], "image_shape", None])
def test_a_checkpoint_whose_hyperparameters_are_no_mapping_is_one_line(tmp_path: Path, hyper_parameters) -> None:
    from ssgan.tools import read_checkpoint

    path = tmp_path / "odd.ckpt"  # "image_shape" in a list or a text passed the check, then failed in a traceback
    torch.save({"state_dict": {}, "hyper_parameters": hyper_parameters}, path)
    with pytest.raises(UserError, match=r"is not an ssgan checkpoint \(no ssgan hyperparameters\); give a .ckpt that "):
        read_checkpoint(path)


def test_sample_refuses_an_n_that_would_not_fit_in_memory_before_any_work(folder_checkpoint: Path, tmp_path: Path,
                                                                         monkeypatch, capsys) -> None:
    # it once ran into torch's allocation error, a traceback, after loading the checkpoint
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**18}  # a machine of 1 GiB
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    with pytest.raises(SystemExit) as exited:
        run_tool("sample", folder_checkpoint, "--n", "10000000", "--out", tmp_path / "samples")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --n 10000000 would need about ") and err.count("\n") == 1
    assert "GiB of memory, more than half of this machine's 1 GiB; draw at most --n " in err
    most = int(err.split("draw at most --n ")[1].split()[0])
    assert not (tmp_path / "samples").exists()
    run_tool("sample", folder_checkpoint, "--n", str(min(most, 50)), "--out", tmp_path / "samples")  # what it names fits
    assert (tmp_path / "samples" / "grid.png").is_file()


def test_extract_refuses_a_probe_file_that_is_its_checkpoint(folder_checkpoint: Path, tmp_path: Path, capsys) -> None:
    # features.probe.json, written beside --out features.npz, once replaced a checkpoint of that name
    checkpoint = tmp_path / "features.probe.json"
    shutil.copy(folder_checkpoint, checkpoint)
    with pytest.raises(SystemExit) as exited:
        run_tool("extract", checkpoint, "--out", tmp_path / "features.npz")
    assert exited.value.code == 2
    assert capsys.readouterr().err == (f"error: {checkpoint}, where extract writes the linear probe's score beside --out "
                                       f"{tmp_path / 'features.npz'}, is the checkpoint, and would be overwritten; give "
                                       "another --out\n")
    assert checkpoint.read_bytes() == folder_checkpoint.read_bytes() and not (tmp_path / "features.npz").exists()


def test_an_out_that_links_to_a_file_where_nothing_can_be_written_is_refused_before_any_work(
        folder_checkpoint: Path, image_folder: Path, tmp_path: Path, capsys) -> None:
    # the file is written through the link, beside its target: the check looked beside the link, and the write failed
    # after the work, naming a temporary file in /proc
    link = tmp_path / "preds.csv"
    link.symlink_to("/proc/version")
    with pytest.raises(SystemExit) as exited:
        run_tool("predict", folder_checkpoint, image_folder / "test", "--out", link)
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: --out {link} (a link to /proc/version): /proc is not writable")
    assert link.is_symlink() and os.readlink(link) == "/proc/version"


@pytest.mark.parametrize("command", ["sample", "predict"])
def test_an_out_under_a_link_to_a_missing_folder_is_refused_before_any_work(command: str, folder_checkpoint: Path,
                                                                           image_folder: Path, tmp_path: Path,
                                                                           capsys) -> None:
    # sample made the missing folder the link points to; predict failed after the work, as "File exists"
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    extra = [image_folder / "test"] if command == "predict" else []
    with pytest.raises(SystemExit) as exited:
        run_tool(command, folder_checkpoint, *extra, "--out", tmp_path / "link" / "out")
    assert exited.value.code == 2
    assert capsys.readouterr().err == (f"error: --out {tmp_path / 'link' / 'out'}: {tmp_path / 'link'} is a link to "
                                       f"{tmp_path / 'gone'}, which does not exist; give a path under a folder you can "
                                       "write to\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["link"]


@pytest.mark.parametrize("entry_point", ["tools_main", "cli_main"])
@pytest.mark.parametrize(("signal_name", "status", "line"), [("SIGINT", 130, "error: stopped by Ctrl-C\n"),
                                                            ("SIGTERM", 143, "error: stopped by SIGTERM\n")])
def test_a_stop_while_torch_is_imported_is_one_line(entry_point: str, signal_name: str, status: int, line: str,
                                                    tmp_path: Path) -> None:
    # ssgan and ssgan-cli import torch and Lightning for seconds before their own handling begins: a Ctrl-C there
    # was an 80-line KeyboardInterrupt traceback, and a SIGTERM ended them without a word
    code = ("import importlib, os, signal, sys\n"
            "import ssgan.command_line as command_line\n"
            "real_import = importlib.import_module\n"
            "def import_module(name, *args):\n"
            f"    os.kill(os.getpid(), signal.{signal_name})  # as the import runs\n"
            "    return real_import(name, *args)\n"
            "importlib.import_module = import_module\n"
            f"sys.argv = ['ssgan', 'predict', '--help']\n"
            f"command_line.{entry_point}()\n"
            "print('went on')\n")
    stopped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert (stopped.returncode, stopped.stderr, stopped.stdout) == (status, line, "")

