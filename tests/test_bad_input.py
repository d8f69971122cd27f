"""Every bad input gets a one-line error naming the fix, exit code 2, no traceback and no output left behind.

Each message is checked whole, against the same text as the README's bad-input table; the last test
checks that the table and these cases are the same set, so neither can drift from the other.
Placeholders in a message: ``PATH`` (the path involved), ``ERROR TYPE`` (an exception's name), ``...``
(any text), and, in the warnings, ``N``, ``M`` (counts) and ``(REASON)``.

The ``ssgan-train`` cases call its console entry point in this process (``train_in_process``); two
of them also run it as a real process, which is what proves the exit status.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FOLDER_CLASSES, REPO, run_cli
from ssgan.module import SupervisedBaseline
from ssgan.tools import load_module
from ssgan.tools import main as run_tool


def message_pattern(template: str, path: Path | str | None = None) -> re.Pattern:
    """The regular expression a message template stands for (see the module docstring)."""
    pattern = re.escape(template).replace(re.escape("..."), ".+").replace(re.escape("ERROR TYPE"), r"\w+")
    pattern = pattern.replace(re.escape("(REASON)"), r"\(.+\)")
    pattern = re.sub(r"\bPATH\b", re.escape(str(path)) if path is not None else r"\\S+", pattern)
    return re.compile(re.sub(r"\b[NM]\b", r"\\d+", pattern))


def assert_one_error_line(stderr: str, template: str, path: Path | str | None = None) -> None:
    error_lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, stderr[-1500:]
    assert message_pattern(template, path).fullmatch(error_lines[0][len("error: "):]), error_lines[0]


# -- ssgan-train overrides ----------------------------------------------------------------------
BAD_INPUTS = [
    (["data.label_fraction=0.1"],
     "set only one of data.num_labeled and data.label_fraction; set the other to null, e.g. data.num_labeled=null data.label_fraction=0.1"),
    (["data.num_labeled=5"], "data.num_labeled=5 is below the number of classes (10); use at least 10"),
    (["data.num_labeled=5000"], "data.num_labeled=5000 is more than the data set holds (1350 training images, 131 in the smallest class, 100 kept for validation); use at most 1210"),
    (["data.num_labeled=55"], "data.num_labeled=55 is not divisible by the 10 classes; use 50 or 60"),
    (["data.num_labeled=2O"], "data.num_labeled=2O is not a whole number of images; use e.g. data.num_labeled=100"),
    (["data.num_labeled=null", "data.label_fraction=1.5"], "data.label_fraction=1.5 is outside (0, 1]; use e.g. data.label_fraction=0.01"),
    (["data.num_labeled=null", "data.label_fraction=0"], "data.label_fraction=0 is outside (0, 1]; use e.g. data.label_fraction=0.01"),
    (["data.num_labeled=null", "data.label_fraction=0.001"], "data.label_fraction=0.001 gives 0 labels for some class; use at least 0.0039"),
    (["data.num_labeled=null", "data.label_fraction=1.0"],
     "data.label_fraction=1.0 leaves no room for the 100 validation images; use at most data.label_fraction=0.9236, "
     "or data.num_val=0"),
    (["data=imagenet"], "unknown data set 'imagenet'; use data= one of: cifar10, digits, fashion_mnist, folder, mnist, svhn"),
    pytest.param(["-m", "hydra/launcher=slurm", "seed=0,1"],
                 "hydra/launcher=slurm submits each job to SLURM, but this machine has no srun; run the command on the "
                 "cluster's login node, or use hydra/launcher=local (or no launcher) here",
                 marks=pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has SLURM")),
    (["cli=digits_ssgan"], "conf/cli/ holds the example configs of ssgan-cli (the Lightning CLI), not settings of "
                           "ssgan-train; run e.g. ssgan-cli fit --config digits_ssgan"),
    (["experiment_model=digits_50_ssgan"], "experiment_model follows experiment and model (experiment=cifar10_4000 "
                                           "model=ssgan picks cifar10_4000_ssgan); set experiment= and model= instead"),
    (["data=fashion_mnist", "data.root=/wrong", "data.download=false"],
     "Fashion-MNIST files not found under /wrong (missing ...); set data.download=true or point data.root at the folder holding them"),
    (["trainer.accelerator=tpux"], "unknown accelerator 'tpux'; use trainer.accelerator= one of auto, cpu, gpu, cuda, mps, tpu"),
    pytest.param(["trainer.accelerator=gpu"],
                 "the trainer settings do not work on this machine: No supported gpu backend found! (use trainer.accelerator=cpu, "
                 "or trainer.accelerator=auto to take a GPU where there is one)",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["model.arch=resnet"], "unknown net 'resnet'; use model.arch= one of: auto, mlp, conv"),
    (["model.arch=conv"], "the conv net needs images of at least 12x12 with sides divisible by 4, got 8x8; use model.arch=mlp"),
    (["model.generator_loss=wgan"], "unknown generator_loss 'wgan'; use model.generator_loss=feature_matching or non_saturating"),
    (["ckpt_path=/nonexistent/last.ckpt"],
     "ckpt_path=/nonexistent/last.ckpt does not exist; give the path of a .ckpt file (e.g. <run>/checkpoints/last.ckpt)"),
    (["ckpt_path=/tmp"],  # a folder once "did not exist"
     "ckpt_path=/tmp is a folder; give the path of a .ckpt file in it (e.g. ckpt_path=/tmp/checkpoints/last.ckpt), or "
     "ckpt_path=last with hydra.run.dir=/tmp"),
    (["ckpt_path=last"],
     "ckpt_path=last found no last.ckpt in this run's folder PATH; resume in the killed run's folder with "
     "hydra.run.dir=<its run folder> ckpt_path=last, or give ckpt_path=<its run folder>/checkpoints/last.ckpt"),
    (["test_ckpt=median"], "test_ckpt=median is not an option; use test_ckpt=last or test_ckpt=best"),
    (["data.eval_batch_size=0"], "data.eval_batch_size=0 is not a batch size; use 1 or more, e.g. data.eval_batch_size=1000"),
    (["data.batch_size=0"], "data.batch_size=0 is not a batch size; use 1 or more, e.g. data.batch_size=100"),
    (["data.labeled_batch_size=-1"], "data.labeled_batch_size=-1 is not a batch size; use 1 or more, or null (the labeled "
                                     "batch is then as large as data.batch_size)"),
    (["data.augment_shift=-2"], "data.augment_shift=-2 is negative; use 0 (off) or a number of pixels, e.g. "
                                "data.augment_shift=2"),
    (["data.num_val=-5"], "data.num_val=-5 is negative; use 0 or more"),
    (["data.nmu_labeled=5"], "unknown setting 'data.nmu_labeled'; did you mean data.num_labeled? (if it is an argument of ssgan.data.DigitsDataModule that the config does not list, add it with +data.nmu_labeled=5)"),
    (["trainer.max_epoch=3"], "unknown setting 'trainer.max_epoch'; did you mean trainer.max_epochs? (if it is an argument of pytorch_lightning.Trainer that the config does not list, add it with +trainer.max_epoch=3)"),
    (["seedd=1"], "unknown setting 'seedd'; did you mean seed? (prefix it with + to add a new key)"),
    (["data=folder"], "data.root must be set for data=folder; add data.root=PATH"),
    (["data=folder", "data.root=2024"],  # a folder named 2024, which Hydra reads as a number
     "data.root=2024 was read as a number, not a path; quote it: data.root='\"2024\"'"),
    (["data=fashion_mnist", "data.root=null", "data.download=false"], "data.root needs a value, not null; e.g. data.root=data"),
    (["data=folder", "data.root=/nonexistent/images"],
     "data.root=/nonexistent/images does not exist; point it at a folder holding labeled/<class>/ images"),
    (["model.skip_nonfinite_batches=-1"],
     "model.skip_nonfinite_batches=-1 is negative; use 0 (stop at the first non-finite loss) or a number of batches to skip"),
    (["self_training=default", "self_training.rounds=-1"],
     "self_training.rounds=-1 is not a number of rounds; use 0 (off) or more, e.g. self_training.rounds=2"),
    (["self_training=default", "self_training.threshold=1.5"],
     "self_training.threshold=1.5 is outside (0, 1]; use e.g. self_training.threshold=0.95"),
    (["self_training=default", "self_training.threshold=abc"],
     "self_training.threshold=abc is not a number; e.g. self_training.threshold=0.95"),
    (["self_training=default", "self_training.reset_weights=maybe"],
     "self_training.reset_weights=maybe is not true or false; e.g. self_training.reset_weights=false"),
    (["seed=abc"], "seed=abc is not a seed; use a whole number from 0 to 4294967295, e.g. seed=0"),
    (["data.split_seed=-1"], "data.split_seed=-1 is negative; use 0 or more, e.g. data.split_seed=0"),
    (["data.num_labeled=null", "data.label_fraction=1.0", "data.num_val=0", "data.labeled_in_unlabeled=false"],
     "digits leaves no unlabeled images to train on (data.labeled_in_unlabeled=false, and every training image is "
     "labeled or kept for validation); set data.labeled_in_unlabeled=true or label fewer images"),
    (["trainer.precision=bf16-true"],
     "trainer.precision=bf16-true is not supported (the weights must stay fp32); use trainer.precision=bf16-mixed "
     "(or 16-mixed on a GPU) for lower-precision compute, or 32"),
    (["trainer.precision=64-true"],  # it was told to use a lower precision
     "trainer.precision=64-true is not supported (the nets, their data init and the EMA are written for fp32 weights); "
     "use trainer.precision=32, the default"),
    (["data.num_val=2000"],
     "data.num_val=2000 leaves no training images for labels in some class (131 in the smallest class); "
     "use at most data.num_val=1268"),
    (["trainer.max_epochs=0"],
     "trainer.max_epochs=0 is not a number of epochs; use 1 or more, e.g. trainer.max_epochs=20 "
     "(the learning-rate schedule needs a fixed end)"),
    (["ckpt_path=best"],
     "ckpt_path=best is not a resume point; resume with ckpt_path=last (to go on from another checkpoint, "
     "give its path, e.g. ckpt_path=<run>/checkpoints/best.ckpt)"),
    (["model.optimizer_d.lr=-0.1"],
     "model.optimizer_d does not build: ValueError: Invalid learning rate: -0.1 (check its settings, "
     "such as model.optimizer_d.lr and model.optimizer_d.betas)"),
    (["model.optimizer_d._target_=torch.optim.LBFGS", "~model.optimizer_d.betas", "~model.optimizer_d.fused"],
     "model.optimizer_d (torch.optim.lbfgs.LBFGS) cannot take ssgan's steps, one step() a batch on dense gradients "
     "without a closure (...); use an optimizer such as torch.optim.Adam (the default), AdamW or SGD"),
    (["model.optimizer_g._target_=torch.optim.SparseAdam", "~model.optimizer_g.fused"],
     "model.optimizer_g (torch.optim.sparse_adam.SparseAdam) cannot take ssgan's steps, one step() a batch on dense "
     "gradients without a closure (...); use an optimizer such as torch.optim.Adam (the default), AdamW or SGD"),
    (["model.optimizer_d.betas=[0.5,abc]"],
     "model.optimizer_d does not build: model.optimizer_d.betas=[0.5,abc] holds text where a number belongs; write e.g. "
     "model.optimizer_d.betas=[0.9,0.999] (Adam's default)"),
    (["model.optimizer_g.lr=3e-3x"],
     "model.optimizer_g does not build: model.optimizer_g.lr=3e-3x holds text where a number belongs; write e.g. "
     "model.optimizer_g.lr=0.001 (Adam's default)"),
    (["model.ema_decay=1.5"],
     "model.ema_decay=1.5 is outside [0, 1); use e.g. model.ema_decay=0.999, or null to evaluate the raw discriminator"),
    (["model.lr_decay_start=-1"],
     "model.lr_decay_start=-1 is negative; use a fraction of the training in [0, 1] after which the learning rate "
     "decays, e.g. model.lr_decay_start=0.6667 (1: no decay)"),
    (["model.latent_dim=0"], "model.latent_dim=0 must be at least 1; use e.g. model.latent_dim=100"),
    (["overwrite=no"], "overwrite=no is not true or false; use overwrite=true or overwrite=false"),
    (["trainer.check_val_every_n_epoch=0"],
     "trainer.check_val_every_n_epoch=0 is not a number of epochs; use 1 or more, e.g. trainer.check_val_every_n_epoch=1"),
    (["trainer.limit_train_batches=0"],
     "trainer.limit_train_batches=0 trains on no batch; give a fraction in (0, 1] or a number of batches of 1 or more, "
     "or leave it out"),
    (["+trainer.val_check_interval=0"],  # was a ZeroDivisionError traceback from inside fit
     "trainer.val_check_interval=0 validates at no point; give a fraction of an epoch in (0, 1] (e.g. "
     "trainer.val_check_interval=0.5: twice an epoch) or a number of batches of 1 or more, or leave it out"),
    # Lightning refuses these only when their loop starts: the test's after the whole training
    (["trainer.limit_test_batches=0.5"],
     "trainer.limit_test_batches=0.5 keeps 0.5 of this data's 1 test batch, which is none; give a fraction of at least 1 "
     "or a number of batches, e.g. trainer.limit_test_batches=1"),
    (["data.num_val=1000", "data.eval_batch_size=100", "trainer.limit_val_batches=0.05"],
     "trainer.limit_val_batches=0.05 keeps 0.05 of this data's 10 val batches, which is none; give a fraction of at "
     "least 0.1 or a number of batches, e.g. trainer.limit_val_batches=1"),
    (["trainer.max_epochs=null"],
     "trainer.max_epochs=null leaves the run no number of epochs, which the learning-rate schedule needs; give one, "
     "e.g. trainer.max_epochs=20"),
    (["ckpt_path=5"],
     "ckpt_path=5 is not a checkpoint; give the path of a .ckpt file (e.g. <run>/checkpoints/last.ckpt) or ckpt_path=last"),
    (["hydra.run.dir=~/runs/a"],
     "hydra.run.dir=~/runs/a: Hydra does not expand ~ and would make a folder named ~ in the working folder; write the "
     "folder's whole path, e.g. hydra.run.dir=$HOME/runs/a"),
    # Lightning refuses both under manual optimization, from inside fit (a traceback and a half-made run folder)
    (["+trainer.gradient_clip_val=1"],
     "trainer.gradient_clip_val=1 is Lightning's automatic clipping, which these modules' manual optimization does not "
     "take; clip with model.gradient_clip_val=1 instead"),
    (["+trainer.accumulate_grad_batches=2"],
     "trainer.accumulate_grad_batches=2 is Lightning's automatic gradient accumulation, which manual optimization does "
     "not take (each batch makes its own steps); for larger steps raise data.batch_size instead"),
    (["model=supervised", "+model.latent_dim=10"], "model.latent_dim is not a setting of SupervisedBaseline; remove it"),
    (["+callbacks.sample_grid.nmu_images=3"],
     "callbacks.sample_grid.nmu_images is not a setting of SampleGrid; did you mean callbacks.sample_grid.num_images?"),
    (["trainer.max_epochs=null", "+trainer.max_steps=500"],
     "trainer.max_steps=500 without trainer.max_epochs leaves the run no number of epochs, which the learning-rate "
     "schedule needs; set trainer.max_epochs too, e.g. trainer.max_epochs=20"),
    (["callbacks.mid_epoch_checkpoint.every_n_train_steps=-1"],
     "the mid-epoch checkpoint's every_n_train_steps=-1 is not a count; use 0 (off) or a whole number, "
     "e.g. callbacks.mid_epoch_checkpoint.every_n_train_steps=1000"),
    (["callbacks.mid_epoch_checkpoint.every_n_train_steps=10", "callbacks.mid_epoch_checkpoint.every_n_epochs=1"],
     "the mid-epoch checkpoint has every_n_train_steps=10 and every_n_epochs=1; set one of them (the end-of-epoch "
     "last.ckpt is saved anyway), e.g. callbacks.mid_epoch_checkpoint.every_n_epochs=0"),
    (["+trainer.limit_train_batches=1.5"],
     "trainer.limit_train_batches=1.5 is neither a fraction of the batches in [0, 1] nor a whole number of batches; "
     "give e.g. trainer.limit_train_batches=0.5 or trainer.limit_train_batches=2"),
    (["+model.num_classes=5"],  # the data's own was passed over it: the run trained 10 classes without a word
     "model.num_classes comes from the data (its image shape and classes), not from a setting; leave it out, and choose "
     "the data with data=... (or data.root=... for your own images)"),
    (["+trainer.val_check_interval=1.5"],  # was Lightning's message, read as settings that do not work on this machine
     "trainer.val_check_interval=1.5 is neither a fraction of an epoch in (0, 1] nor a whole number of batches; "
     "give e.g. trainer.val_check_interval=0.5 or trainer.val_check_interval=2"),
    (["trainer.limit_val_batches=0", "+callbacks.early_stop._target_=pytorch_lightning.callbacks.EarlyStopping",
      "+callbacks.early_stop.monitor=val/acc"],
     "callbacks.early_stop.monitor=val/acc, but this run has no validation batches (trainer.limit_val_batches=0), so no "
     "val/ metric is logged; leave trainer.limit_val_batches out, or monitor a train/ metric"),
    (["+callbacks.mid_epoch_checkpoint.train_time_interval._target_=datetime.timedelta",
      "+callbacks.mid_epoch_checkpoint.train_time_interval.minutes=30"],
     "the mid-epoch checkpoint saves by optimizer steps, not by time; set "
     "callbacks.mid_epoch_checkpoint.every_n_train_steps (e.g. =1000) instead of train_time_interval"),
    (["callbacks.model_checkpoint.save_top_k=3"],
     "callbacks.model_checkpoint.save_top_k=3 would keep 3 checkpoints under the one name best.ckpt, each overwriting "
     "the last, so it would hold the latest epoch, not the best; use callbacks.model_checkpoint.save_top_k=1, or a "
     "filename with {epoch} in it"),
    (["predict"],
     "'predict' is not a setting; give KEY=VALUE, e.g. data=fashion_mnist or trainer.max_epochs=20; the tools are the "
     "ssgan command: ssgan predict ..."),
    (["logger=null"], "logger=null is not an option of logger; use logger=none"),
    # two of Hydra's modes: its own error was a traceback
    (["-m", "sweep=digits", "--cfg", "job"],
     "-m and --cfg do not go together: Hydra takes one of --run, --multirun, --cfg, --info and --shell-completion; "
     "drop one (to see a sweep's config, drop -m and give one value of each swept setting)"),
    # ~ is Hydra's, and the shell leaves it in data.root=~/fm: Hydra's lexer report and a link, exit 1
    (["data.root=~/fm"], "cannot read data.root=~/fm: its value holds a character that Hydra's override grammar "
                         "reserves (such as ~ # ; & or a non-ASCII letter); quote the value, e.g. data.root='\"~/fm\"'"),
    # the sweep's parameters were ignored without a word: one default job ran, or each job ran with neither sweep's
    (["sweep=digits"], "sweep=digits sweeps data.num_labeled, model, self_training, data.split_seed, which a single "
                       "run would leave at their defaults; add -m to run the sweep (ssgan-train -m sweep=digits ...), or "
                       "give each one value to run one job of it"),
    (["-m", "sweep=digits,fashion_mnist"],
     "sweep=digits,fashion_mnist takes one sweep per command: Hydra would sweep the group itself and run none of the "
     "sweeps' parameters; run them one after the other (ssgan-train -m sweep=digits; ssgan-train -m sweep=fashion_mnist)"),
    (["-m", "model=glob(x*)"], "model=glob(x*) matches no model option; the options are: ssgan, supervised"),
    (["-m", "hydra/launcher=slrum", "seed=0,1"],
     "unknown launcher 'slrum'; use hydra/launcher= one of: basic, joblib, local, slurm, submitit_local, submitit_slurm"),
    (["trainer.devices=0,1"],
     "trainer.devices=0,1 gives several values, which only a sweep runs (one job each); add -m to sweep them, or write "
     "one value: a list as trainer.devices=[0,1] or a text as \"trainer.devices='0,1'\""),
    (["trainer.strategy=ddp"],
     "trainer.strategy=ddp stops at the GAN's first step (each optimizer step leaves the other net without gradients); "
     "use trainer.strategy=ddp_find_unused_parameters_true"),
    (["trainer.deterministic=yes"], "trainer.deterministic=yes is not true, false or warn; use e.g. trainer.deterministic=true"),
    # Lightning finds these out only when the first validation (or the first logger write) ends
    (["callbacks.model_checkpoint.monitor=val/loss"],
     "callbacks.model_checkpoint.monitor=val/loss is not a metric this model logs; validation logs val/acc: set "
     "callbacks.model_checkpoint.monitor=val/acc"),
    (["+callbacks.early_stop._target_=pytorch_lightning.callbacks.EarlyStopping", "+callbacks.early_stop.monitor=val/accuracy"],
     "callbacks.early_stop.monitor=val/accuracy is not a metric this model logs; validation logs val/acc: set "
     "callbacks.early_stop.monitor=val/acc"),
    (["data.num_val=0", "+callbacks.early_stop._target_=pytorch_lightning.callbacks.EarlyStopping",
      "+callbacks.early_stop.monitor=val/acc"],  # it trained an epoch, then was told to monitor val/acc
     "callbacks.early_stop.monitor=val/acc, but this run has no validation images (data.num_val=0), so no val/ metric "
     "is logged; hold some out, e.g. data.num_val=100, or monitor a train/ metric"),
    (["callbacks.model_checkpoint.mode=maximum"],
     "callbacks.model_checkpoint does not build: mode can be min, max but got maximum (check the "
     "callbacks.model_checkpoint.* overrides)"),
    (["logger.csv.save_dir=/proc/nope"],
     "cannot write logger.csv.save_dir=/proc/nope: /proc is not writable (REASON); give "
     "logger.csv.save_dir=<a folder you can write to>"),
    (["callbacks.sample_grid.every_n_epochs=0"],
     "the sample grid needs every_n_epochs and num_images of at least 1 (got 0 and 100); "
     "e.g. callbacks.sample_grid.every_n_epochs=5, or callbacks.sample_grid=null for none"),
]


def _id(case) -> str:
    overrides = case.values[0] if hasattr(case, "values") else case[0]
    return " ".join(overrides)


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[_id(c) for c in BAD_INPUTS])
def test_bad_input_gives_one_line_error(tmp_path: Path, train_in_process, overrides: list[str], message: str) -> None:
    run_dir = tmp_path / "run"
    code, stderr = train_in_process(*overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    # PATH stands for the run folder (ckpt_path=last) or is written out (data.root=PATH, the fix to type)
    assert_one_error_line(stderr, message, run_dir if "this run's folder PATH" in message else "PATH")
    assert "Traceback" not in stderr
    assert not run_dir.exists(), sorted(p.name for p in run_dir.rglob("*"))  # nothing half-written
    assert not (tmp_path / "multirun").exists()  # nor a sweep's folder


def test_a_checkpoints_folder_as_ckpt_path_names_the_file_in_it(tmp_path: Path, train_in_process) -> None:
    # the run's checkpoints/ folder given for its last.ckpt: the fix names that file and the run's folder
    # (it once named checkpoints/checkpoints/last.ckpt and hydra.run.dir=<the checkpoints folder>)
    earlier = tmp_path / "earlier" / "checkpoints"
    earlier.mkdir(parents=True)
    (earlier / "best.ckpt").write_bytes(b"")
    (earlier / "last.ckpt").write_bytes(b"")
    run_dir = tmp_path / "run"
    for given in (earlier, earlier.parent):
        code, stderr = train_in_process(f"ckpt_path={given}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert code == 2, stderr[-1500:]
        assert_one_error_line(stderr, f"ckpt_path={given} is a folder; give the path of a .ckpt file in it (e.g. "
                                      f"ckpt_path={earlier / 'last.ckpt'}), or ckpt_path=last with hydra.run.dir={earlier.parent}")
        assert not run_dir.exists()
    # a run that kept no last.ckpt, while a save of best.ckpt was under way: its best.ckpt, not the hidden temporary
    # being written, and no ckpt_path=last (which finds no last*.ckpt there)
    (earlier / "last.ckpt").unlink()
    (earlier / ".best.x1y2z3.tmp.ckpt").write_bytes(b"")
    code, stderr = train_in_process(f"ckpt_path={earlier.parent}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, f"ckpt_path={earlier.parent} is a folder; give the path of a .ckpt file in it (e.g. "
                                  f"ckpt_path={earlier / 'best.ckpt'})")


def test_a_model_target_that_is_no_ssgan_model_is_one_line(tmp_path: Path, train_in_process) -> None:
    # Hydra built it, and the run stopped in a traceback at the first ssgan method it lacked
    run_dir = tmp_path / "run"
    code, stderr = train_in_process("model._target_=collections.OrderedDict", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2 and "Traceback" not in stderr, stderr[-1500:]
    assert_one_error_line(stderr, "model._target_=collections.OrderedDict is not an ssgan model (a subclass of "
                                  "ssgan.module.ClassifierModule); use model=ssgan or model=supervised")
    assert not run_dir.exists()


# Two checkpoint callbacks of different monitors saving one file (PATH is the run folder's checkpoints/)
SHARED_CHECKPOINT_FILE = ("callbacks.last_checkpoint and callbacks.model_checkpoint both save best.ckpt in PATH, each over "
                          "the other's; give callbacks.last_checkpoint.filename another name")


def test_two_checkpoint_callbacks_saving_one_file_is_one_line(tmp_path: Path, train_in_process) -> None:
    run_dir = tmp_path / "run"
    code, stderr = train_in_process("callbacks.last_checkpoint.filename=best", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, SHARED_CHECKPOINT_FILE, run_dir / "checkpoints")
    assert not run_dir.exists()
    # last.ckpt saved at epoch ends and mid-epoch by two callbacks is one file by design: it trains
    code, stderr = train_in_process("callbacks.mid_epoch_checkpoint.every_n_train_steps=4", "trainer.max_epochs=1",
                                    "trainer.limit_train_batches=3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]


@pytest.mark.parametrize("overrides", [["data.num_labeled=5"], ["data.nmu_labeled=5"]])
def test_bad_input_exits_a_real_process_with_status_2_and_no_traceback(tmp_path: Path, overrides: list[str]) -> None:
    """The installed command's process, once for an error found by Hydra's job and once before Hydra starts."""
    run_dir = tmp_path / "run"
    result = run_cli(*overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-1500:] + result.stderr[-1500:]
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr[-1500:]
    assert "Traceback" not in result.stdout
    assert not run_dir.exists()


# -- image folders (data=folder); PATH is the folder's root ---------------------------------------
def _folder_without_labeled_class(root: Path) -> None:
    (root / "test" / "triangle").mkdir(parents=True)
    shutil.copy(next((root / "test" / "circle").iterdir()), root / "test" / "triangle" / "t.png")


FOLDER_DAMAGE = {
    "a test class missing from labeled/": (
        _folder_without_labeled_class,
        "class 'triangle' of PATH/test is not in PATH/labeled; add PATH/labeled/triangle/ with labeled images or remove PATH/test/triangle"),
    "an empty class folder": (
        lambda root: [p.unlink() for p in (root / "labeled" / "square").iterdir()],
        "class folder PATH/labeled/square holds no images (.png .jpg .jpeg .jfif .jpe .bmp .webp .tif .tiff .gif .avif .pgm .ppm .pbm .pnm .tga .pcx); add images or remove the folder"),
    "an empty test class folder": (  # it was accepted, and its class went untested without a word
        lambda root: [p.unlink() for p in (root / "test" / "circle").iterdir()],
        "class folder PATH/test/circle holds no images (.png .jpg .jpeg .jfif .jpe .bmp .webp .tif .tiff .gif .avif .pgm .ppm .pbm .pnm .tga .pcx); add images or remove the folder"),
    "no labeled/ folder": (
        lambda root: shutil.rmtree(root / "labeled"),
        "PATH has no labeled/ folder; put the labeled images in PATH/labeled/<class name>/"),
    "a link from one class folder into another": (  # its images were trained under both classes' labels
        lambda root: (root / "labeled" / "square" / "more").symlink_to(root / "labeled" / "circle"),
        "PATH/labeled/square/more/... is also in class folder PATH/labeled/circle (through a link), so it would be trained "
        "as both circle and square; remove the link, or keep each image in one class folder"),
    "a test image linked into unlabeled/": (  # it was trained on, and could be pseudo-labeled
        lambda root: (root / "unlabeled" / "part0" / "seen.png").symlink_to(root / "test" / "circle" / "circle_0.png"),
        "test image PATH/test/circle/circle_0.png is also the training image PATH/unlabeled/part0/seen.png (through a "
        "link), so it would be trained on; remove the link, or keep each image in one of labeled/, unlabeled/ and test/"),
    "a file named unlabeled": (  # it was passed over, and the run trained without the user's unlabeled images
        lambda root: (shutil.rmtree(root / "unlabeled", ignore_errors=True), (root / "unlabeled").write_bytes(b"a zip")),
        "PATH/unlabeled is a file, not a folder; put the unlabeled images in a folder PATH/unlabeled/, or remove it"),
    "every image of a class unreadable": (
        lambda root: [p.write_bytes(b"broken") for p in (root / "labeled" / "square").iterdir()],
        "no readable image is left in PATH/labeled/square; replace its unreadable files"),
}


@pytest.mark.parametrize("damage", sorted(FOLDER_DAMAGE))
def test_bad_image_folders_give_one_line_error(tmp_path: Path, image_folder: Path, train_in_process,
                                              damage: str) -> None:
    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    make, message = FOLDER_DAMAGE[damage]
    make(root)
    run_dir = tmp_path / "run"
    code, stderr = train_in_process("data=folder", f"data.root={root}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, message, root)
    assert not run_dir.exists()


# Not an error: training goes on without the unreadable files.
CORRUPT_AMONG_OTHERS = ("skipped unreadable image PATH (REASON)",
                        "skipped N unreadable image(s) of M under PATH (listed above on their first reading)")


def test_a_corrupt_image_among_others_is_reported_by_path_and_counted(tmp_path: Path, image_folder: Path, caplog) -> None:
    from ssgan.data import FolderDataModule

    root = tmp_path / "images"
    shutil.copytree(image_folder, root)
    broken = root / "labeled" / "circle" / "broken.png"
    broken.write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING):
        FolderDataModule(root=str(root), split_cache_dir=str(tmp_path / "cache")).setup()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    per_file, count = CORRUPT_AMONG_OTHERS
    assert any(message_pattern(per_file, broken).fullmatch(w) for w in warnings), warnings
    assert any(message_pattern(count, root).fullmatch(w) for w in warnings), warnings


# -- the ssgan tools; PATH is the checkpoint given --------------------------------------------------
def _save_supervised(path: Path, folder_checkpoint: Path) -> None:
    gan = load_module(folder_checkpoint)
    baseline = SupervisedBaseline(image_shape=gan.image_shape, num_classes=3, class_names=list(FOLDER_CLASSES))
    torch.save({"hyper_parameters": dict(baseline.hparams), "state_dict": baseline.state_dict()}, path)


def _save_mismatched(path: Path, folder_checkpoint: Path) -> None:
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"]["image_shape"] = [3, 32, 32]  # weights of a 28x28 grey MLP, hparams of another net
    torch.save(checkpoint, path)


TOOL_ERRORS = {
    "predict, missing checkpoint": (
        "predict", lambda path, ckpt: None,
        "checkpoint PATH does not exist; give a .ckpt file, e.g. <run>/checkpoints/last.ckpt"),
    "predict, not a checkpoint": (
        "predict", lambda path, ckpt: path.write_bytes(b"garbage"),
        "PATH is not a readable checkpoint (ERROR TYPE); give a .ckpt that ssgan-train wrote"),
    "predict, a checkpoint cut short": (
        "predict", lambda path, ckpt: path.write_bytes(ckpt.read_bytes()[:5000]),
        "PATH is damaged or cut short (ERROR TYPE); give a whole .ckpt that ssgan-train wrote"),
    "predict, a TorchScript export": (
        "predict", lambda path, ckpt: write_torchscript(path),
        "PATH is a TorchScript model (as ssgan export writes it), not a training checkpoint; give a .ckpt that "
        "ssgan-train wrote"),
    "predict, not an ssgan checkpoint": (
        "predict", lambda path, ckpt: torch.save({"state_dict": {}}, path),
        "PATH is not an ssgan checkpoint (no ssgan hyperparameters); give a .ckpt that ssgan-train wrote"),
    "predict, weights that do not fit the hyperparameters": (
        "predict", _save_mismatched,
        "PATH does not match the net its hyperparameters describe (...); the checkpoint is damaged or from another version of ssgan"),
    "extract, data that do not fit": (
        "extract", lambda path, ckpt: shutil.copy(ckpt, path),
        "the data (digits: 10 classes of (1, 8, 8)) do not fit the checkpoint (3 classes of (1, 28, 28)); give the data it was trained on (without --data: the data the checkpoint records)"),
    "sample, a supervised checkpoint": (
        "sample", _save_supervised,
        "PATH is a supervised baseline with no generator; give a model=ssgan checkpoint"),
}


@pytest.mark.parametrize("case", sorted(TOOL_ERRORS))
def test_tools_give_one_line_errors(case: str, tmp_path: Path, image_folder: Path, folder_checkpoint: Path, capsys) -> None:
    command, make, message = TOOL_ERRORS[case]
    path = tmp_path / "given.ckpt"
    make(path, folder_checkpoint)
    out = tmp_path / "out"
    extra = {"predict": [image_folder / "test", "--out", out], "extract": ["--data", "digits", "--out", out],
             "sample": ["--out", out]}[command]
    with pytest.raises(SystemExit) as exited:
        run_tool([str(a) for a in (command, path, *extra)])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, message, path)
    assert captured.err.count("\n") == 1 and not out.exists()  # nothing half-written


class _RunsCodeWhenLoaded:
    """Unpickling this object creates ``marker``: a checkpoint holding it would run code on whoever loads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_holding_code_is_refused_without_running_it(tmp_path: Path, image_folder: Path, capsys,
                                                                 train_in_process) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"image_shape": [1, 8, 8]}, "state_dict": {}, "x": _RunsCodeWhenLoaded(marker)}, evil)
    with pytest.raises(SystemExit) as exited:
        run_tool(["predict", str(evil), str(image_folder / "test"), "--out", str(tmp_path / "preds.csv")])
    assert exited.value.code == 2
    assert_one_error_line(capsys.readouterr().err, "PATH is not a readable checkpoint (ERROR TYPE); give a .ckpt that "
                                                   "ssgan-train wrote", evil)
    # and a resume from it: both loaded it with torch's unsafe loader, which ran its code first
    code, stderr = train_in_process(f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert code == 2 and "is not a readable checkpoint (" in stderr, stderr[-1500:]
    assert not marker.exists()


# -- the README's table is exactly these cases ----------------------------------------------------
def readme_bad_input_messages() -> list[str]:
    """The backquoted texts of the message column of README.md's bad-input table."""
    section = (REPO / "README.md").read_text().split("### Bad input", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| input")]
    return [text for row in rows for text in re.findall(r"`([^`]+)`", row.split(" | ", 1)[1])]


def test_hydras_own_flags_and_their_values_are_not_taken_for_bare_words() -> None:
    from ssgan.config import check_bare_words
    from ssgan.errors import UserError

    check_bare_words(["-m", "--cfg", "job", "--package", "_global_", "-cn", "train", "--info", "config", "--help",
                      "+model.net_kwargs.hidden_noise=0.3", "~callbacks.sample_grid", "hydra/launcher=joblib", "seed=0,1"])
    with pytest.raises(UserError, match="^'fashion_mnist' is not a setting; give KEY=VALUE"):
        check_bare_words(["fashion_mnist"])
    with pytest.raises(UserError, match="; LightningCLI's subcommands are ssgan-cli's: ssgan-cli fit ...$"):
        check_bare_words(["--multirun", "fit"])


def test_a_sweep_choice_is_taken_in_a_multirun_of_one_sweep_or_to_show_its_config() -> None:
    from ssgan.command_line import check_sweep_choice
    from ssgan.errors import UserError

    # one job of the sweep, as a stopped job's resume command gives it (each swept setting one value)
    one_job = ["data.num_labeled=20", "model=supervised", "self_training=none", "data.split_seed=0", "sweep=digits",
               "hydra.run.dir=multirun/x/0", "ckpt_path=last"]
    for args in (["-m", "sweep=digits"], ["hydra.mode=MULTIRUN", "sweep=fashion_mnist"], ["sweep=digits", "--cfg", "job"],
                 ["sweep=null"], ["seed=1"], one_job):
        check_sweep_choice(args)
    # the fix names the sweeps, not the syntax that named them
    for sweep in ("glob(*)", "choice(digits,fashion_mnist)", "[digits,fashion_mnist]"):
        with pytest.raises(UserError, match=r"; run them one after the other \(ssgan-train -m sweep=digits; "
                                            r"ssgan-train -m sweep=fashion_mnist\)$"):
            check_sweep_choice(["-m", f"sweep={sweep}"])
    for args in (["sweep=digits"], one_job[1:], ["-m", "sweep=glob(*)"], ["-m", "sweep=choice(digits,fashion_mnist)"]):
        with pytest.raises(UserError, match="^sweep="):
            check_sweep_choice(args)


def test_cli_configs_are_refused_by_ssgan_train_however_chosen() -> None:
    from ssgan.config import check_group_choices
    from ssgan.errors import UserError

    for given, named in (["+cli=folder", "folder"], ["cli=nothing", "digits_ssgan"]):  # a name that exists, or the first
        with pytest.raises(UserError, match=f"run e.g. ssgan-cli fit --config {named}$"):
            check_group_choices([given])


# A _target_ that names no class (tested below)
NO_TARGET = "model._target_=ssgan.module.SSGANN names nothing to build (ssgan.module has no SSGANN); did you mean ssgan.module.SSGAN?"


def test_a_target_that_names_nothing_is_one_line(tmp_path: Path, train_in_process) -> None:
    run_dir = tmp_path / "run"
    code, stderr = train_in_process("model._target_=ssgan.module.SSGANN", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2 and not run_dir.exists() and "Traceback" not in stderr
    assert_one_error_line(stderr, NO_TARGET)
    code, stderr = train_in_process("+callbacks.mine._target_=nowhere.Thing", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2 and "callbacks.mine._target_=nowhere.Thing names nothing to build (no module nowhere)" in stderr


# A launcher whose Hydra plugin is not installed (tested below)
MISSING_LAUNCHER_PLUGIN = "hydra/launcher=local needs the hydra-joblib-launcher plugin, which is not installed; pip install 'ssgan[cluster]'"


def test_a_launcher_whose_plugin_is_missing_is_one_line(monkeypatch) -> None:
    import ssgan.config as config
    from ssgan.errors import UserError

    monkeypatch.setattr(config, "launcher_options", lambda: ["basic", "local", "slurm"])  # no joblib, no submitit
    with pytest.raises(UserError) as error:
        config.check_group_choices(["-m", "hydra/launcher=local", "seed=0,1"])
    assert message_pattern(MISSING_LAUNCHER_PLUGIN).fullmatch(str(error.value))
    with pytest.raises(UserError, match="^hydra/launcher=slurm needs the hydra-submitit-launcher plugin"):
        config.check_group_choices(["-m", "hydra/launcher=slurm", "seed=0,1"])


def test_hydras_sweep_functions_over_config_groups_are_checked_option_by_option() -> None:
    from ssgan.config import check_group_choices
    from ssgan.errors import UserError

    # Hydra's documented sweep forms name existing options: accepted
    for args in (["-m", "data=choice(digits,fashion_mnist)"], ["-m", "trainer=glob(*)"],
                 ["-m", "model=glob(*,exclude=supervised)"], ["-m", "data=digits,mnist"], ["~logger"],
                 ["logger=[csv,tensorboard]"]):  # a list: both loggers
        check_group_choices(args)
    with pytest.raises(UserError, match="^unknown data set 'imagenet'; use data= one of"):
        check_group_choices(["-m", "data=choice(digits,imagenet)"])
    with pytest.raises(UserError, match="^unknown logger option 'wandb'; use logger= one of"):
        check_group_choices(["logger=[csv,wandb]"])
    with pytest.raises(UserError, match="^experiment=null is not an option of experiment; leave out the experiment= override"):
        check_group_choices(["experiment=null"])
    with pytest.raises(UserError, match="^data=null is not an option of data; use data= one of: cifar10"):
        check_group_choices(["data=null"])


# A data.root one folder above the IDX files (tested below)
IDX_ONE_FOLDER_UP = ("Fashion-MNIST files not found under PATH (missing ...); they are in PATH: set data.root=PATH")


def test_a_data_root_above_the_idx_files_names_the_folder_holding_them(tmp_path: Path, idx_root: Path,
                                                                        train_in_process) -> None:
    datasets = tmp_path / "datasets"
    shutil.copytree(idx_root, datasets / "fashion-mnist")
    run_dir = tmp_path / "run"
    code, stderr = train_in_process("data=fashion_mnist", f"data.root={datasets}", "data.download=false",
                                    f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2 and not run_dir.exists()
    assert_one_error_line(stderr, IDX_ONE_FOLDER_UP)
    assert stderr.rstrip().endswith(f"they are in {datasets / 'fashion-mnist'}: set data.root={datasets / 'fashion-mnist'}")


# data.root naming one of the data set's files, or a file for data=folder
ROOT_IS_A_FILE = ("data.root=PATH is a file, not a folder; point it at the folder holding the data set's files, e.g. "
                  "data.root=PATH")
FOLDER_ROOT_IS_A_FILE = "data.root=PATH is a file, not a folder; point it at a folder holding labeled/<class>/ images"


def test_a_data_root_that_is_a_file_names_its_folder(tmp_path: Path, idx_root: Path, train_in_process) -> None:
    # "files not found under <the file>", it said
    image_file = idx_root / "train-images-idx3-ubyte.gz"
    run_dir = tmp_path / "run"
    for overrides, message, fix in ((["data=fashion_mnist", "data.download=false"], ROOT_IS_A_FILE, f"data.root={idx_root}"),
                                    (["data=folder"], FOLDER_ROOT_IS_A_FILE, "labeled/<class>/ images")):
        code, stderr = train_in_process(*overrides, f"data.root={image_file}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert code == 2 and not run_dir.exists(), stderr[-1500:]
        assert_one_error_line(stderr, message)
        assert stderr.rstrip().endswith(fix) and f"data.root={image_file} is a file" in stderr


def test_the_idx_folder_hint_passes_over_the_other_data_set_of_the_same_file_names(tmp_path: Path) -> None:
    import numpy as np

    from conftest import write_idx
    from ssgan.data.sources import FASHION_MNIST_TRAIN_COUNTS, IDX_FILES, load_idx_data
    from ssgan.errors import UserError

    fashion = tmp_path / "datasets" / "fashion-mnist"  # Debian's Fashion-MNIST, looked for as MNIST
    fashion.mkdir(parents=True)
    for key, stem in IDX_FILES.items():
        labels = np.repeat(np.arange(10), FASHION_MNIST_TRAIN_COUNTS[0]) if key == "train_labels" else np.zeros(3)
        write_idx(fashion / f"{stem}.gz", labels)
    with pytest.raises(UserError) as error:
        load_idx_data(tmp_path / "datasets", "MNIST", tuple(map(str, range(10))), False, lambda root: None, "MNIST")
    assert "they are in" not in str(error.value) and str(error.value).endswith("point data.root at the folder holding them")


# A train/ metric's name is checked by Lightning, after the first epoch: its error, in one line
UNKNOWN_TRAIN_METRIC = ("ModelCheckpoint(monitor='train/loss_gen') could not find the monitored key in the returned "
                        "metrics: [...]; set the callback's monitor to one of those, e.g. val/acc")


def test_a_checkpoint_monitoring_a_train_metric_that_is_not_logged_is_one_line(tmp_path: Path, train_in_process) -> None:
    code, stderr = train_in_process("callbacks.model_checkpoint.monitor=train/loss_gen", "trainer.max_epochs=1",
                                    "trainer.limit_train_batches=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert code == 2 and "Traceback" not in stderr, stderr[-1500:]
    assert_one_error_line(stderr, UNKNOWN_TRAIN_METRIC)
    assert "'train/loss_generator'" in stderr  # the names it could have been
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_readme_table_lists_exactly_the_tested_messages() -> None:
    tested = [p.values[1] if hasattr(p, "values") else p[1] for p in BAD_INPUTS]
    tested += [message for _, message in FOLDER_DAMAGE.values()] + list(CORRUPT_AMONG_OTHERS)
    tested += [message for _, _, message in TOOL_ERRORS.values()] + [EARLIER_RUN, FEWER_EPOCHS, CHANGED_SCHEDULE, CUT_SHORT_LAST,
                                                                     ANOTHER_SPLIT, ANOTHER_OPTIMIZER, ANOTHER_MODULE, SHARED_CHECKPOINT_FILE, UNWRITABLE_RUN_FOLDER, ROOT_RUN_FOLDER, MULTI_NODE_ALONE, FRACTIONAL_SIZE, HUGE_SIZE,
                                                                     UNWRITABLE_IMAGE_CACHE, CHANGED_FILES, NO_TENSORBOARD,
                                                                     MISSING_LAUNCHER_PLUGIN, IDX_ONE_FOLDER_UP, NO_TARGET]
    tested += [message for _, message in SLURM_RESOURCES.values()] + [TORCHSCRIPT_CHECKPOINT, NPZ_CHECKPOINT, NO_TRAINING_CHECKPOINT,
                                                                         OTHER_DATA_SET, ROOT_IS_A_FILE,
                                                                         FOLDER_ROOT_IS_A_FILE, UNKNOWN_TRAIN_METRIC]
    documented = readme_bad_input_messages()
    assert len(documented) >= 15
    assert sorted(documented) == sorted(tested)


# SLURM sweeps whose jobs would ask SLURM for other resources than their trainer takes (tests/test_launchers.py)
SLURM_RESOURCES = {
    "unknown count": (["trainer=ddp"], "hydra/launcher=slurm must ask SLURM for each job's devices, but trainer.devices=-1 "
                      "leaves their number to the node; give it, e.g. trainer.devices=4 (the GPUs of a node)"),
    "mixed sweep": (["trainer=gpu", "trainer.devices=1,2"],
                    "the jobs of this sweep need different SLURM resources (trainer.devices=1 trainer.num_nodes=1 and "
                    "trainer.devices=2 trainer.num_nodes=1), but the launcher asks once for the whole sweep; sweep one "
                    "device count and accelerator per command"),
    "tasks by hand": (["trainer=ddp", "trainer.devices=4", "hydra.launcher.tasks_per_node=1"],
                      "hydra.launcher.tasks_per_node=1 but the trainer needs 4 (one SLURM task per device of "
                      "trainer.devices); leave hydra.launcher.tasks_per_node out, as it follows the trainer"),
}

# A resume with fewer epochs than its checkpoint has trained (tests/test_resume.py runs it)
FEWER_EPOCHS = "PATH has trained N epochs, more than trainer.max_epochs=M; resume with trainer.max_epochs=N or more"

# A resume with another trainer.max_epochs once the self-training rounds have begun (tests/test_resume.py runs it)
CHANGED_SCHEDULE = ("PATH has begun its self-training rounds, scheduled after N epochs of first training in rounds of "
                    "M epochs; resume it with trainer.max_epochs=N; to train on, give more rounds from its checkpoint in a "
                    "new folder (self_training.rounds=N hydra.run.dir=<a new folder>)")

# A resume whose last.ckpt was cut short, beside a checkpoint that reads (tests/test_resume.py runs it)
CUT_SHORT_LAST = ("ckpt_path=PATH is damaged or cut short (ERROR TYPE); resume from the run's other checkpoint, saved in "
                  "epoch N: ckpt_path=PATH")

# A resume from another run's checkpoint with other split settings (tests/test_resume.py runs it)
ANOTHER_SPLIT = ("PATH was trained on another split (data.num_labeled: 20 -> 30); resume it with its own "
                 "(data.num_labeled=20), or start a new run from scratch")

# A resume from another run's checkpoint with another optimizer class (tests/test_resume.py runs it)
ANOTHER_OPTIMIZER = ("PATH was trained with torch.optim.Adam as model.optimizer_d, and this run builds torch.optim.SGD, whose "
                     "state it cannot take; resume with model.optimizer_d._target_=torch.optim.Adam (and its settings), or "
                     "start a new run from scratch")

# A resume from an SSGAN run's checkpoint as model=supervised (tests/test_resume.py runs it)
ANOTHER_MODULE = ("PATH was written by ssgan.module.SSGAN, and this run builds ssgan.module.SupervisedBaseline; resume with "
                  "model=ssgan, or start a new run without ckpt_path")

# Image folders: a fractional size, and an image cache that cannot be written (tested below), and a
# resume after the files changed (tests/test_folder.py runs it; ROOT is data.root)
FRACTIONAL_SIZE = "data.image_size=32.5 is not a size; use one whole number (e.g. 28) or [height, width]"
HUGE_SIZE = ("data.image_size=100000 needs N GiB to hold the folder's images in memory, more than the M GiB this process "
             "may use; use a smaller data.image_size (e.g. 28)")
UNWRITABLE_IMAGE_CACHE = ("cannot write data.image_cache_dir=PATH/images: PATH is a file, not a folder; set SSGAN_CACHE_DIR "
                          "to a folder you can write to, or data.image_cache_dir=null to decode on every run")
CHANGED_FILES = ("PATH was trained on other training images than folder holds now; the files under ROOT/labeled or "
                 "ROOT/unlabeled were added, removed or renamed since; put them back as they were, or start a new run")


def test_folder_settings_that_cannot_work_are_one_line_before_any_image_is_read(tmp_path: Path, image_folder: Path,
                                                                                train_in_process, monkeypatch) -> None:
    import ssgan.data.folder as folder

    monkeypatch.setattr(folder, "memory_limit", lambda: 16 * 2**30)  # the same on any machine
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the cache folder should be")
    run_dir = tmp_path / "run"
    for overrides, message, path in ((["data.image_size=32.5"], FRACTIONAL_SIZE, None),
                                     # a typing slip (it was a traceback from the allocator)
                                     (["data.image_size=100000"], HUGE_SIZE, None),
                                     ([f"data.image_cache_dir={blocker}/images"], UNWRITABLE_IMAGE_CACHE, blocker)):
        code, stderr = train_in_process("data=folder", f"data.root={image_folder}", *overrides, f"hydra.run.dir={run_dir}",
                                        cwd=tmp_path)
        assert code == 2, stderr[-1500:]
        assert_one_error_line(stderr, message, path)
        assert not run_dir.exists()


# logger=tensorboard without the tensorboard package (an extra: ssgan[tensorboard])
NO_TENSORBOARD = ("logger=tensorboard needs a package that is not installed (Neither tensorboard nor tensorboardX is "
                  "available); pip install 'ssgan[tensorboard]', or use logger=csv")


def test_a_logger_whose_package_is_missing_is_one_line(tmp_path: Path, train_in_process, monkeypatch) -> None:
    import lightning_fabric.loggers.tensorboard as fabric_tensorboard

    monkeypatch.setattr(fabric_tensorboard, "_TENSORBOARD_AVAILABLE", False)  # as on an install without the extra
    monkeypatch.setattr(fabric_tensorboard, "_TENSORBOARDX_AVAILABLE", False)
    run_dir = tmp_path / "run"
    code, stderr = train_in_process("logger=tensorboard", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, NO_TENSORBOARD)
    assert not run_dir.exists()


# A run folder under a file (or on a read-only disk)
UNWRITABLE_RUN_FOLDER = ("cannot write hydra.run.dir=PATH/run: PATH is a file, not a folder; "
                         "give hydra.run.dir=<a folder you can write to>")


# trainer.num_nodes above 1 outside a cluster job (tested below)
MULTI_NODE_ALONE = ("trainer.num_nodes=2 asks for 2 machines, but this one runs in no cluster job (no SLURM, torchrun, LSF or "
                    "MPI environment, and no NODE_RANK or MASTER_ADDR set), so it would wait for the others forever; use "
                    "trainer.num_nodes=1 here, or start the run on each node through the cluster's launcher")


def test_several_nodes_outside_a_cluster_is_one_line_not_a_hang(tmp_path: Path, train_in_process, monkeypatch) -> None:
    # it waited at "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" for good, deaf to SIGTERM and Ctrl-C
    from pytorch_lightning.plugins.environments import (LSFEnvironment, MPIEnvironment, SLURMEnvironment,
                                                        TorchElasticEnvironment)

    import ssgan.train as train_module

    for variable in ("MASTER_ADDR", "NODE_RANK"):  # a DDP test earlier in this process may have set them
        monkeypatch.delenv(variable, raising=False)
    for environment in (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment, MPIEnvironment):  # outside any job
        monkeypatch.setattr(environment, "detect", staticmethod(lambda: False))
    code, stderr = train_in_process("trainer.num_nodes=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, MULTI_NODE_ALONE)
    assert not (tmp_path / "run").exists()
    # a hand-made set-up on each node (MASTER_ADDR, NODE_RANK), or a cluster's launcher, is left to Lightning
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    assert train_module._in_a_cluster()
    monkeypatch.delenv("MASTER_ADDR")
    monkeypatch.setattr(SLURMEnvironment, "detect", staticmethod(lambda: True))
    assert train_module._in_a_cluster()


ROOT_RUN_FOLDER = "hydra.run.dir=/ is the file system's root; give a folder of the run's own, e.g. hydra.run.dir=/runs/first"


def test_the_file_systems_root_as_run_or_sweep_folder_is_one_line(tmp_path: Path, train_in_process) -> None:
    # as root, the run wrote its checkpoints/, csv/ and metrics.json into /
    code, stderr = train_in_process("hydra.run.dir=/", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, ROOT_RUN_FOLDER)
    code, stderr = train_in_process("-m", "hydra.sweep.dir=/tmp/..", "seed=0,1", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, "hydra.sweep.dir=/tmp/.. is the file system's root; give a folder of the sweep's own, "
                                  "e.g. hydra.sweep.dir=/runs/sweep")
    assert not any(Path("/").glob("metrics.json")) and list(tmp_path.iterdir()) == []


def test_a_run_folder_that_cannot_be_written_is_one_line(tmp_path: Path, train_in_process) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the run folder's parent should be")
    code, stderr = train_in_process(f"hydra.run.dir={blocker}/run", cwd=tmp_path)
    assert code == 2 and "Traceback" not in stderr, stderr[-1500:]
    assert_one_error_line(stderr, UNWRITABLE_RUN_FOLDER, blocker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    # a folder named with an interpolation: the folders before it are checked (it was Hydra's traceback)
    code, stderr = train_in_process(f"hydra.run.dir={blocker}/run/${{now:%H-%M-%S}}", cwd=tmp_path)
    assert code == 2 and "Traceback" not in stderr, stderr[-1500:]
    assert stderr.strip().splitlines()[-1] == (f"error: cannot write hydra.run.dir={blocker}/run/${{now:%H-%M-%S}}: "
                                               f"{blocker} is a file, not a folder; give hydra.run.dir=<a folder you "
                                               "can write to>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# A start in the folder of a run that finished (hydra.run.dir=<run>), without ckpt_path or overwrite=true
EARLIER_RUN = ("PATH already holds a run (metrics.json); resume it with ckpt_path=last, start in another folder "
               "(hydra.run.dir=...), or replace it with overwrite=true")


def test_a_start_in_an_earlier_runs_folder_is_refused_unless_overwrite(tmp_path: Path, train_in_process) -> None:
    run_dir = tmp_path / "run"
    tiny = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false"]
    code, stderr = train_in_process(*tiny, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}

    earlier = snapshot()
    assert {"metrics.json", "checkpoints/last.ckpt", "train.log", ".hydra/overrides.yaml"} <= set(earlier)
    # a second start there (it once replaced the run silently), and one with overwrite=true but a bad setting:
    # both stop with one line and leave the earlier run as it was, its record and log included
    # a setting refused only inside fit (it once cost the earlier run all its files)
    clipped_bf16 = ["model.gradient_clip_val=1", "trainer.precision=bf16-mixed"]
    for overrides in (tiny, [*tiny, "overwrite=true", "data.num_labeled=55"], [*tiny, "overwrite=true", "trainer.precision=banana"],
                      [*tiny, "overwrite=true", *clipped_bf16]):
        code, stderr = train_in_process(*overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert code == 2, stderr[-1500:]
        if "data.num_labeled=55" in overrides:
            assert "data.num_labeled=55 is not divisible" in stderr
        elif "trainer.precision=banana" in overrides:  # found when the trainer is built: still before any removal
            assert "Lightning refuses the trainer settings: Precision 'banana' is invalid" in stderr
        elif "model.gradient_clip_val=1" in overrides:
            assert "model.gradient_clip_val with trainer.precision=bf16-mixed needs unfused Adam" in stderr
        else:
            assert_one_error_line(stderr, EARLIER_RUN, run_dir)
        assert snapshot() == earlier
    # another folder's checkpoint resumed into it: it once went on over this run, its metrics, checkpoints and curves
    other = tmp_path / "other" / "last.ckpt"
    other.parent.mkdir()
    shutil.copy(run_dir / "checkpoints" / "last.ckpt", other)
    code, stderr = train_in_process(*tiny, "trainer.max_epochs=2", f"ckpt_path={other}", f"hydra.run.dir={run_dir}",
                                    cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, f"PATH already holds a run (metrics.json), and ckpt_path={other} is another folder's "
                                  "checkpoint; resume it in a new folder (hydra.run.dir=...), resume this folder's own run "
                                  "with ckpt_path=last, or write over it with overwrite=true", run_dir)
    assert snapshot() == earlier
    # overwrite=true replaces it: none of the earlier run's outputs is left to mix with the new ones, its log lines
    # included, and nothing else in the folder is touched
    (run_dir / "samples" / "notes.txt").write_text("mine")
    code, stderr = train_in_process(*tiny, "trainer.max_epochs=2", "overwrite=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch_0001.png", "notes.txt"]
    assert (run_dir / "train.log").read_text().count("training ssgan on digits") == 1


def test_a_sweep_into_a_folder_that_holds_runs_is_refused(tmp_path: Path, train_in_process) -> None:
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "0" / "checkpoints").mkdir(parents=True)
    (sweep_dir / "0" / "checkpoints" / "last.ckpt").write_bytes(b"")  # a killed job: checkpoints, no metrics.json
    # overwrite=true would replace only the job folders the new sweep reaches, and mix in the others
    for mode in (["-m"], ["-m", "overwrite=true"], ["hydra.mode=MULTIRUN"]):
        code, stderr = train_in_process(*mode, "seed=0,1", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
        assert code == 2, stderr[-1500:]
        assert stderr.strip() == (f"error: hydra.sweep.dir={sweep_dir} already holds runs (e.g. 0/checkpoints/); choose "
                                  "another hydra.sweep.dir (or move them out of it to run the sweep there)")
        assert sorted(p.name for p in sweep_dir.iterdir()) == ["0"]
    # nor into a run's own folder, whose run a report of the sweep would count among the jobs
    run_dir = sweep_dir / "0"
    code, stderr = train_in_process("-m", "seed=0,1", f"hydra.sweep.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert stderr.strip() == (f"error: hydra.sweep.dir={run_dir} is the folder of a run (checkpoints/, no metrics.json: it "
                              "may have been killed); choose another hydra.sweep.dir")
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints"]


def test_a_sweep_over_another_sweeps_records_or_into_shared_job_folders_is_refused(tmp_path: Path,
                                                                                    train_in_process) -> None:
    # Hydra writes each job's .hydra/ before the job can look: another program's sweep (or one stopped before any
    # job saved) had its records written over
    other = tmp_path / "other"
    (other / "0" / ".hydra").mkdir(parents=True)
    (other / "0" / ".hydra" / "overrides.yaml").write_text("- lr=0.1\n")
    code, stderr = train_in_process("-m", "seed=0,1", f"hydra.sweep.dir={other}", cwd=tmp_path)
    assert code == 2 and stderr.strip() == (
        f"error: hydra.sweep.dir={other} holds Hydra's records of an earlier sweep (0/.hydra/), which this sweep "
        "would write over; choose another hydra.sweep.dir (or delete that folder to run the sweep there again)")
    assert (other / "0" / ".hydra" / "overrides.yaml").read_text() == "- lr=0.1\n"
    # records of job folders nested as a subdir nests them (${model}/${seed}), not the folder's own
    from ssgan.command_line import sweep_records

    assert sweep_records(tmp_path) == "other/0/.hydra/" and sweep_records(other / "0") is None
    # a subdir that gives two jobs one folder: the second wrote its settings over the first's record, then refused
    # its folder; so does a glob over a group, which the check reads against the group's options
    sweep_dir = tmp_path / "sweep"
    for models in ("model=ssgan,supervised", "model=glob(*)"):
        code, stderr = train_in_process("-m", models, "seed=3", f"hydra.sweep.dir={sweep_dir}",
                                        "hydra.sweep.subdir=${data.num_labeled}", cwd=tmp_path)
        assert code == 2 and stderr.strip().splitlines()[-1] == (
            "error: hydra.sweep.subdir=${data.num_labeled} gives jobs #0 (model=ssgan) and #1 (model=supervised) one "
            "folder, 50, where the second would find the first's run; make it name every swept setting, e.g. "
            "hydra.sweep.subdir='${hydra.job.override_dirname}', or leave it out (one folder a job number)"), stderr[-1500:]
        assert not sweep_dir.exists()
    code, stderr = train_in_process("-m", models, f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${hydra.job.override_dirname}",
                                    "hydra.job.config.override_dirname.exclude_keys=[model]", cwd=tmp_path)
    assert code == 2 and stderr.strip().endswith("one folder, the sweep folder itself, where the second would find the "
                                                 "first's run; leave the swept settings out of hydra.job.config."
                                                 "override_dirname.exclude_keys, or leave it out (one folder a job number)")


def test_a_sweep_folder_named_by_the_date_is_checked_as_it_resolves(tmp_path: Path, train_in_process) -> None:
    # the command line's hydra.sweep.dir=runs/${now:%Y-%m-%d} names no folder; run twice on one day, the second
    # sweep's jobs each found a run in their folder, recorded nothing, and the sweep exited 0
    tiny = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "callbacks=none")
    code, stderr = train_in_process("-m", "seed=0,1", "hydra.sweep.dir=runs/${now:%Y-%m-%d}", *tiny, cwd=tmp_path)
    assert code == 0, stderr[-1500:]
    [day] = (tmp_path / "runs").iterdir()
    code, stderr = train_in_process("-m", "seed=0,1", "hydra.sweep.dir=runs/${now:%Y-%m-%d}", *tiny, cwd=tmp_path)
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        f"error: hydra.sweep.dir=runs/{day.name} already holds runs (e.g. 0/metrics.json); choose another "
        "hydra.sweep.dir (or move them out of it to run the sweep there)"), stderr[-1500:]


def test_a_sweep_is_checked_for_earlier_jobs_nested_deeper_and_counts_only_jobs_it_can_find(tmp_path: Path,
                                                                                          train_in_process) -> None:
    # an earlier sweep whose subdir nested its jobs (${model}/${hydra.job.num}): its failed job was counted in the
    # new sweep's closing line
    earlier = tmp_path / "earlier"
    (earlier / "ssgan" / "0" / ".hydra").mkdir(parents=True)
    (earlier / "ssgan" / "0" / "metrics.json").write_text('{"status": "failed", "error": "an old error"}')
    code, stderr = train_in_process("-m", "seed=0,1", f"hydra.sweep.dir={earlier}", cwd=tmp_path)
    assert code == 2 and "already holds runs (e.g. ssgan/0/metrics.json)" in stderr.strip().splitlines()[-1]
    # jobs that write their outputs elsewhere (paths.output_dir) are no records of the sweep's folder to count
    tiny = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "callbacks=none")
    code, stderr = train_in_process("-m", "seed=1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                    f"paths.output_dir={tmp_path / 'out'}/${{seed}}", *tiny, cwd=tmp_path)
    assert code == 0 and (tmp_path / "out" / "1" / "metrics.json").is_file(), stderr[-1500:]


def test_a_sweeps_closing_line_counts_jobs_that_left_no_record(tmp_path: Path) -> None:
    import json

    from ssgan.command_line import failed_jobs_line

    for number, status in ((2, "ok"), (10, "failed")):
        (tmp_path / str(number)).mkdir()
        (tmp_path / str(number) / "metrics.json").write_text(json.dumps({"status": status, "error": f"job {number}"}))
    assert failed_jobs_line(tmp_path, job_count=2) == (
        f"1 of 2 jobs of the sweep did not finish (the first, in {tmp_path / '10'}: job 10); each one's metrics.json "
        "holds its error")
    assert failed_jobs_line(tmp_path, job_count=4) == (
        f"1 of 4 jobs of the sweep did not finish, and 2 left no metrics.json (the first, in {tmp_path / '10'}: job 10); "
        "each one's metrics.json holds its error")
    (tmp_path / "10" / "metrics.json").write_text(json.dumps({"status": "ok"}))
    assert failed_jobs_line(tmp_path, job_count=2) is None
    # a run deeper down than the sweep's job folders is none of its jobs (a single run's, hydra.run.dir below it)
    (tmp_path / "outputs" / "digits" / "ssgan" / "t").mkdir(parents=True)
    (tmp_path / "outputs" / "digits" / "ssgan" / "t" / "metrics.json").write_text(json.dumps({"status": "failed"}))
    assert failed_jobs_line(tmp_path, job_count=2) is None
    assert failed_jobs_line(tmp_path, job_count=3) == (
        f"1 of 3 jobs of the sweep left no metrics.json (killed, or stopped before they began); the others' are in "
        f"{tmp_path}")


def test_a_bad_start_leaves_no_empty_output_folders(tmp_path: Path, train_in_process) -> None:
    code, _ = train_in_process("data.num_labeled=5", cwd=tmp_path)  # the default run folder, outputs/<data>/<model>/<time>
    assert code == 2
    assert not (tmp_path / "outputs").exists()
    code, _ = train_in_process("data.num_labeled=5", "hydra.run.dir=nest/a/b", cwd=tmp_path)
    assert code == 2 and not (tmp_path / "nest").exists()


def test_a_bad_start_in_a_users_folder_removes_only_what_it_made(tmp_path: Path, train_in_process) -> None:
    # a folder of the user's, with a log of their own and empty folders, and an empty folder above a new run folder
    mine = tmp_path / "mine"
    (mine / "empty").mkdir(parents=True)
    (mine / "slurm-123.log").write_text("the user's own log")
    (tmp_path / "runs" / "exp").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    # the folder given absolute, given as ../mine from another folder (Hydra folds the ".."), and a new one
    for folder, cwd in ((mine, tmp_path), ("../mine", tmp_path / "sub"), (tmp_path / "runs" / "exp" / "a", tmp_path)):
        code, stderr = train_in_process("data.num_labeled=5", f"hydra.run.dir={folder}", cwd=cwd)
        assert code == 2 and "is below the number of classes" in stderr, stderr[-1500:]
    assert sorted(p.name for p in mine.iterdir()) == ["empty", "slurm-123.log"]  # no .hydra nor train.log of the start
    assert (mine / "slurm-123.log").read_text() == "the user's own log"
    assert (tmp_path / "runs" / "exp").is_dir() and not (tmp_path / "runs" / "exp" / "a").exists()


def test_on_slurm_a_run_folder_holding_lightnings_hpc_checkpoint_is_refused(tmp_path: Path, train_in_process,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "hpc_ckpt_1.ckpt").write_bytes(b"an earlier job's")
    for name, value in {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "ssgan", "SLURM_JOB_ID": "4242"}.items():
        monkeypatch.setenv(name, value)
    # Lightning on SLURM would restore it for the test after fit, in place of the weights this run trained
    code, stderr = train_in_process("trainer.max_epochs=1", "trainer.limit_train_batches=2",
                                    f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2
    assert_one_error_line(stderr, "PATH holds Lightning's hpc_ckpt_1.ckpt, which Lightning on SLURM would load instead "
                                  "of this run's weights; move the hpc_ckpt_*.ckpt files out of the run's folder", run_dir)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()


def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path: Path, train_in_process) -> None:
    not_a_checkpoint = tmp_path / "metrics.json"
    not_a_checkpoint.write_text("{}")
    run_dir = tmp_path / "run"
    code, stderr = train_in_process(f"ckpt_path={not_a_checkpoint}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, f"ckpt_path={not_a_checkpoint} is not a readable checkpoint (ERROR TYPE); give a "
                                  ".ckpt file that ssgan-train saved (e.g. <run>/checkpoints/last.ckpt)")
    assert "Traceback" not in stderr and not run_dir.exists()
    # zip archives that torch's loader would open, or half-open: ssgan export's TorchScript model, an .npz
    # and torch files that are no training checkpoint (Lightning's resume stopped with a KeyError traceback)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "weights.ckpt")
    torch.save(torch.zeros(3), tmp_path / "tensor.ckpt")
    for path, message in ((write_torchscript(tmp_path / "last.pt"), TORCHSCRIPT_CHECKPOINT),
                          (write_npz(tmp_path / "features.npz"), NPZ_CHECKPOINT),
                          (tmp_path / "weights.ckpt", NO_TRAINING_CHECKPOINT), (tmp_path / "tensor.ckpt", NO_TRAINING_CHECKPOINT)):
        code, stderr = train_in_process(f"ckpt_path={path}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert code == 2, stderr[-1500:]
        assert_one_error_line(stderr, message, path)
        assert "Traceback" not in stderr and not run_dir.exists()


# A resume from a checkpoint of another data set (ROOT is the folder the checkpoint's run read)
OTHER_DATA_SET = ("PATH was trained on the folder data, not on digits; resume it with data=folder data.root=ROOT, or "
                  "start a new run from scratch")


def test_a_checkpoint_of_another_data_set_names_that_data_set(tmp_path: Path, train_in_process, folder_checkpoint: Path,
                                                              image_folder: Path) -> None:
    # it named the split settings that differ, and the "fix" it gave failed on the nets' sizes next
    run_dir = tmp_path / "run"
    code, stderr = train_in_process(f"ckpt_path={folder_checkpoint}", "trainer.max_epochs=3", f"hydra.run.dir={run_dir}",
                                    cwd=tmp_path)
    assert code == 2, stderr[-1500:]
    assert_one_error_line(stderr, OTHER_DATA_SET.replace("ROOT", str(image_folder)), folder_checkpoint)
    assert not run_dir.exists()


def write_torchscript(path: Path) -> Path:
    """A TorchScript model file, as ``ssgan export --format torchscript`` writes one."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    return path


def write_npz(path: Path) -> Path:
    """A NumPy zip archive, as ``ssgan extract`` writes one."""
    np.savez(path, features=np.zeros((2, 3)))
    return path


# ssgan-train ckpt_path= a zip archive that is no checkpoint (PATH is the file)
TORCHSCRIPT_CHECKPOINT = ("ckpt_path=PATH is a TorchScript model (as ssgan export writes it), not a training checkpoint; "
                          "give a .ckpt file that ssgan-train saved (e.g. <run>/checkpoints/last.ckpt)")
NPZ_CHECKPOINT = ("ckpt_path=PATH is a zip archive that torch did not save (e.g. an .npz), not a checkpoint; give a .ckpt "
                  "file that ssgan-train saved (e.g. <run>/checkpoints/last.ckpt)")
NO_TRAINING_CHECKPOINT = ("ckpt_path=PATH is a torch file, but no checkpoint of a training run (no Lightning state in it); "
                          "give a .ckpt file that ssgan-train saved (e.g. <run>/checkpoints/last.ckpt)")


@pytest.mark.parametrize("argument", ["data=fashoin", "trainer.max_epoch=3", "predict", "-m hydra/launcher=slrum seed=0,1"])
def test_a_mistyped_command_line_is_refused_before_torch_or_lightning_is_imported(argument: str, tmp_path: Path) -> None:
    # those imports took about 9 s of a 2-core machine before the one line came
    import subprocess
    import sys

    probe = ("import sys\nfrom ssgan.command_line import main\nsys.argv = ['ssgan-train', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit as exited:\n    code = exited.code\n"
             "print(code, sorted(name for name in ('torch', 'pytorch_lightning', 'lightning_fabric') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, *argument.split()], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "2 []", result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_an_unreadable_override_is_told_to_quote_only_where_quoting_reads() -> None:
    from ssgan.config import check_override_syntax
    from ssgan.errors import UserError

    with pytest.raises(UserError, match=r"^cannot read data.root=/data/é: .* quote the value, e.g. data.root='\"/data/é\"'$"):
        check_override_syntax(["data.root=/data/é"])
    # a sweep cut short: quoting would make it a string, so Hydra's own reason (it once said to quote it)
    with pytest.raises(UserError, match=r"^cannot read seed=range\(0,3: no viable alternative at input 'range\(0,3'; "
                                        r"see Hydra's override grammar"):
        check_override_syntax(["-m", "seed=range(0,3"])
    check_override_syntax(["predict", "-p", "hydra.run", "data.root=\"~/fm\"", "seed=0,1", "+x=[1,2]", "~callbacks"])


def test_the_quoting_advice_for_a_path_read_as_a_number_keeps_the_text_as_typed(monkeypatch) -> None:
    # Hydra reads data.root=1.50 as the float 1.5: the folder to quote is "1.50"
    from ssgan.config import check_argument_types
    from ssgan.data import FolderDataModule
    from ssgan.errors import UserError

    monkeypatch.setattr(sys, "argv", ["ssgan-train", "data=folder", "data.root=1.50"])
    with pytest.raises(UserError) as raised:
        check_argument_types(FolderDataModule, {"root": 1.5}, "data")
    assert str(raised.value) == "data.root=1.50 was read as a number, not a path; quote it: data.root='\"1.50\"'"
