"""Every bad input gets a one-line error naming the fix, exit code 2, no traceback and no output left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import run_cli

BAD_INPUTS = [
    (["data.label_fraction=0.1"],
     "set only one of data.num_labeled and data.label_fraction; set the other to null, e.g. data.num_labeled=null data.label_fraction=0.1"),
    (["data.num_labeled=5"], "below the number of classes (10); use at least 10"),
    (["data.num_labeled=5000"], "more than the data set holds (1350 training images, 131 in the smallest class, 100 kept for validation); use at most 1210"),
    (["data.num_labeled=55"], "not divisible by the 10 classes; use 50 or 60"),
    (["data.num_labeled=null", "data.label_fraction=1.5"], "outside (0, 1]"),
    (["data.num_labeled=null", "data.label_fraction=0"], "outside (0, 1]"),
    (["data.num_labeled=null", "data.label_fraction=0.001"], "gives 0 labels for some class; use at least 0.0076"),
    (["data=imagenet"], "unknown data set 'imagenet'; use data= one of: cifar10, digits, fashion_mnist, folder, mnist, svhn"),
    (["data=fashion_mnist", "data.root=/nonexistent/fmnist", "data.download=false"],
     "Fashion-MNIST files not found under /nonexistent/fmnist"),
    (["trainer.accelerator=tpux"], "unknown accelerator 'tpux'; use trainer.accelerator="),
    pytest.param(["trainer.accelerator=gpu"], "the trainer settings do not work on this machine",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["model.arch=resnet"], "unknown net 'resnet'; use model.arch= one of: auto, mlp, conv"),
    (["model.arch=conv"], "the conv net needs images of at least 16x16 with sides divisible by 8, got 8x8; use model.arch=mlp"),
    (["model.generator_loss=wgan"], "unknown generator_loss 'wgan'; use model.generator_loss=feature_matching or non_saturating"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path=/nonexistent/last.ckpt does not exist"),
    (["test_ckpt=median"], "test_ckpt=median is not an option; use test_ckpt=last or test_ckpt=best"),
    (["data.eval_batch_size=0"], "data.eval_batch_size must be at least 1"),
    (["data.num_val=-5"], "data.num_val=-5 is negative"),
    (["data.nmu_labeled=5"], "unknown setting 'data.nmu_labeled'; did you mean data.num_labeled? (prefix it with + to add a new key)"),
    (["trainer.max_epoch=3"], "unknown setting 'trainer.max_epoch'; did you mean trainer.max_epochs?"),
    (["data=folder"], "data.root must be set for data=folder; add data.root=PATH"),
    (["data=folder", "data.root=/nonexistent/images"],
     "data.root=/nonexistent/images does not exist; point it at a folder holding labeled/<class>/ images"),
    (["model.skip_nonfinite_batches=-1"], "model.skip_nonfinite_batches=-1 is negative"),
    (["self_training=default", "self_training.threshold=1.5"], "self_training.threshold=1.5 is outside (0, 1]"),
]


def _id(case) -> str:
    overrides = case.values[0] if hasattr(case, "values") else case[0]
    return " ".join(overrides)


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[_id(c) for c in BAD_INPUTS])
def test_bad_input_gives_one_line_error(tmp_path: Path, overrides: list[str], message: str) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(*overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-1500:] + result.stderr[-1500:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr + result.stdout
    assert not run_dir.exists(), sorted(p.name for p in run_dir.rglob("*"))  # nothing half-written


def _folder_without_labeled_class(root: Path) -> None:
    (root / "test" / "triangle").mkdir(parents=True)
    shutil.copy(next((root / "test" / "circle").iterdir()), root / "test" / "triangle" / "t.png")


FOLDER_DAMAGE = {
    "a test class missing from labeled/": (_folder_without_labeled_class, "class 'triangle' of"),
    "an empty class folder": (lambda root: [p.unlink() for p in (root / "labeled" / "square").iterdir()],
                              "holds no images (.png .jpg .jpeg .bmp .webp); add images or remove the folder"),
    "no labeled/ folder": (lambda root: shutil.rmtree(root / "labeled"), "has no labeled/ folder"),
    "every image of a class unreadable": (
        lambda root: [p.write_bytes(b"broken") for p in (root / "labeled" / "square").iterdir()],
        "no readable image is left in"),
}


@pytest.mark.parametrize("damage", sorted(FOLDER_DAMAGE))
def test_bad_image_folders_give_one_line_error(tmp_path: Path, image_folder: Path, damage: str) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    make, message = FOLDER_DAMAGE[damage]
    make(root)
    run_dir = tmp_path / "run"
    result = run_cli("data=folder", f"data.root={root}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(error_lines) == 1 and message in error_lines[0], result.stderr[-1500:]
    assert not run_dir.exists()
