"""The Hydra configs and the training task: fast_dev_run per data set and experiment, multirun, metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import open_dict

from ssgan.config import CONFIG_DIR, group_options
from ssgan.errors import UserError
from ssgan.module import SSGAN, SupervisedBaseline
from ssgan.train import train

from conftest import FAST, run_cli, train_in_fork

METRIC_KEYS = {"dataset", "method", "num_labeled", "label_fraction", "seed", "split_seed", "epochs", "train_seconds",
               "test/acc", "test/error", "val/acc", "best_epoch"}


def test_default_config_composes_to_the_quickstart(compose_cfg) -> None:
    cfg = compose_cfg()
    assert cfg.data._target_ == "ssgan.data.DigitsDataModule" and cfg.model._target_ == "ssgan.module.SSGAN"
    assert cfg.model.optimizer_d._partial_ and cfg.model.optimizer_d.betas == [0.5, 0.999]
    assert cfg.seed == 0 and cfg.data.split_seed == 0  # separate seeds


def test_overrides_from_the_readme_compose(compose_cfg) -> None:
    cfg = compose_cfg("data=fashion_mnist", "data.num_labeled=100", "model=ssgan", "trainer.accelerator=auto",
                      "trainer.devices=1", "trainer.max_epochs=20", "seed=1")
    assert cfg.data._target_ == "ssgan.data.FashionMNISTDataModule" and cfg.trainer.max_epochs == 20 and cfg.seed == 1


def _data_overrides(name: str, idx_root: Path, cifar_root: Path, svhn_root: Path, image_folder: Path) -> list[str]:
    roots = {"mnist": idx_root, "fashion_mnist": idx_root, "cifar10": cifar_root, "svhn": svhn_root}
    if name == "digits":
        return ["data=digits"]
    if name == "folder":
        return ["data=folder", f"data.root={image_folder}", "data.num_val=3"]
    return [f"data={name}", f"data.root={roots[name]}", "data.download=false", "data.num_labeled=20", "data.num_val=10"]


@pytest.mark.parametrize("data_name", group_options("data"))
def test_fast_dev_run_on_every_data_config(compose_cfg, data_name, idx_root, cifar_root, svhn_root, image_folder) -> None:
    model_name = "ssgan"
    cfg = compose_cfg(*_data_overrides(data_name, idx_root, cifar_root, svhn_root, image_folder), f"model={model_name}", *FAST)
    if data_name in ("cifar10", "svhn"):  # keep the conv net small on 2 cores: 10 images a batch
        with open_dict(cfg):
            cfg.data.batch_size = 10
    metrics = train(cfg)
    assert METRIC_KEYS <= set(metrics) and metrics["dataset"] == data_name and metrics["status"] == "ok"
    assert 0.0 <= metrics["test/acc"] <= 1.0 and abs(metrics["test/acc"] + metrics["test/error"] - 1) < 1e-9
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert written["test/acc"] == metrics["test/acc"]
    assert metrics["net"] == ("conv" if data_name in ("cifar10", "svhn") else "mlp")


def test_the_conv_net_trains_on_28x28_grey_images(compose_cfg, idx_root, caplog) -> None:
    # model.arch=conv on Fashion-MNIST's shape: the generator starts at 256x7x7 (28 is not divisible by 8)
    cfg = compose_cfg(*_data_overrides("fashion_mnist", idx_root, Path(), Path(), Path()), "model=ssgan",
                      "model.arch=conv", "data.batch_size=10", *FAST)
    with caplog.at_level("WARNING", logger="ssgan.module"):
        metrics = train(cfg)
    assert metrics["net"] == "conv" and metrics["status"] == "ok" and 0.0 <= metrics["test/acc"] <= 1.0
    # at the MLP recipe's learning rate, which model.arch=conv alone keeps: the run says how to set the conv recipe
    assert any("set model.optimizer_d.lr=0.0003 model.optimizer_g.lr=0.0003 model.feature_matching=absolute, as "
               "experiment=cifar10_4000 does" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("model_name", ["ssgan", "supervised"])
@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_runs_under_fast_dev_run(compose_cfg, experiment, model_name, request) -> None:
    cfg = compose_cfg(f"experiment={experiment}", f"model={model_name}", *FAST)
    dataset, labels = experiment.rsplit("_", 1)  # e.g. fashion_mnist_100: 100 labels of Fashion-MNIST
    assert cfg.data.num_labeled == int(labels) and cfg.data.label_fraction is None
    if cfg.data.get("root") is not None:  # point the experiment at fixture files of its data set's format
        fixture = {"CIFAR10DataModule": "cifar_root", "SVHNDataModule": "svhn_root"}.get(
            cfg.data._target_.rsplit(".", 1)[-1], "idx_root")
        with open_dict(cfg):
            cfg.data.root, cfg.data.download = str(request.getfixturevalue(fixture)), False
            cfg.data.num_labeled, cfg.data.label_fraction, cfg.data.num_val = 20, None, 10
            if cfg.model.arch == "conv":  # keep the conv net small on 2 cores: 10 images a batch
                cfg.data.batch_size = 10
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["method"] == model_name and metrics["dataset"] == dataset
    assert metrics["net"] == ("conv" if dataset in ("cifar10", "svhn") else "mlp")


# the image shape of each data set that an experiment trains on
EXPERIMENT_IMAGES = {"DigitsDataModule": (1, 8, 8), "MNISTDataModule": (1, 28, 28), "FashionMNISTDataModule": (1, 28, 28),
                     "CIFAR10DataModule": (3, 32, 32), "SVHNDataModule": (3, 32, 32)}


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_has_its_supervised_baseline_on_the_same_net(compose_cfg, experiment) -> None:
    # model=supervised keeps the recipe's net, optimizer, schedule and EMA, and drops only its SSGAN settings
    gan = compose_cfg(f"experiment={experiment}")
    baseline = compose_cfg(f"experiment={experiment}", "model=supervised")
    assert gan.model._target_ == "ssgan.module.SSGAN" and baseline.model._target_ == "ssgan.module.SupervisedBaseline"
    shared = sorted(set(baseline.model) - {"_target_"})
    assert {key: baseline.model[key] for key in shared} == {key: gan.model[key] for key in shared}
    assert baseline.data == gan.data and baseline.trainer == gan.trainer
    model = hydra.utils.instantiate(baseline.model, _convert_="all", num_classes=10, class_names=[str(k) for k in range(10)],
                                    image_shape=EXPERIMENT_IMAGES[baseline.data._target_.rsplit(".", 1)[-1]])
    assert isinstance(model, SupervisedBaseline)


def test_an_experiments_ssgan_settings_reach_its_ssgan_run_alone(compose_cfg) -> None:
    assert compose_cfg("experiment=digits_50").model.unlabeled_weight == 3.0
    assert compose_cfg("data=digits").model.unlabeled_weight == 1.0
    cifar = compose_cfg("experiment=cifar10_4000")
    assert cifar.model.feature_matching == "absolute" and cifar.model.optimizer_g.lr == cifar.model.optimizer_d.lr == 3e-4
    # a command-line setting still wins over the experiment's
    assert compose_cfg("experiment=cifar10_4000", "model.feature_matching=squared").model.feature_matching == "squared"
    assert "feature_matching" not in compose_cfg("experiment=cifar10_4000", "model=supervised").model


# What each trainer config sets (README's config-group table): a new trainer config must be added here.
TRAINER_CONFIGS = {
    "default": {"accelerator": "auto", "devices": 1, "precision": "32-true", "strategy": "auto"},
    "cpu": {"accelerator": "cpu", "devices": 1, "precision": "32-true", "strategy": "auto"},
    "gpu": {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed", "strategy": "auto"},
    "ddp": {"accelerator": "gpu", "devices": -1, "precision": "bf16-mixed", "strategy": "ddp_find_unused_parameters_true"},
    "ddp_cpu": {"accelerator": "cpu", "devices": 2, "precision": "32-true", "strategy": "ddp_find_unused_parameters_true"},
}


def test_every_trainer_config_is_described() -> None:
    assert set(group_options("trainer")) == set(TRAINER_CONFIGS)


@pytest.mark.parametrize("trainer_name", sorted(TRAINER_CONFIGS))
def test_every_trainer_config_composes_to_its_devices_and_precision(compose_cfg, trainer_name) -> None:
    cfg = compose_cfg(f"trainer={trainer_name}")
    expected = TRAINER_CONFIGS[trainer_name]
    assert {key: cfg.trainer.get(key) for key in expected} == expected
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"


@pytest.mark.parametrize(("group", "option"), [(group, option) for group in ("model", "callbacks", "logger", "self_training",
                                                                             "hydra/launcher")
                                               for option in group_options(group)])
def test_every_config_group_option_composes(compose_cfg, group, option, tmp_path) -> None:
    from pytorch_lightning.callbacks import ModelCheckpoint

    from ssgan.train import build_trainer

    cfg = compose_cfg(f"{group}={option}")
    if group == "hydra/launcher":
        assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")
        return
    assert cfg.hydra.runtime.choices[group] == option
    if group in ("logger", "callbacks"):  # what the option does to the run's trainer
        trainer = build_trainer(cfg, tmp_path)
        loggers = sorted(type(logger).__name__ for logger in trainer.loggers)
        checkpoints = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]
        if group == "logger":
            assert loggers == {"none": [], "csv": ["CSVLogger"], "tensorboard": ["CSVLogger", "TensorBoardLogger"]}[option]
        else:
            assert bool(checkpoints) == (option != "none")
    elif group == "self_training":
        assert (cfg.self_training.rounds > 0) == (option != "none")
    else:
        assert cfg.model._target_ == {"ssgan": "ssgan.module.SSGAN", "supervised": "ssgan.module.SupervisedBaseline"}[option]


@pytest.mark.parametrize("sweep", group_options("sweep"))
def test_every_sweep_composes_to_a_grid_over_labels_methods_and_seeds(sweep) -> None:
    from hydra import compose, initialize_config_dir
    from ssgan.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"sweep={sweep}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert {"data.num_labeled", "model", "self_training", "data.split_seed"} <= set(params)
    assert set(str(params.model).split(",")) == {"supervised", "ssgan"}
    assert set(str(params.self_training).split(",")) == {"none", "default"}


def test_supervised_model_builds_the_same_discriminator(compose_cfg) -> None:
    import hydra

    ssgan_cfg, supervised_cfg = compose_cfg("model=ssgan"), compose_cfg("model=supervised")
    ssgan = hydra.utils.instantiate(ssgan_cfg.model, image_shape=(1, 8, 8), num_classes=10)
    supervised = hydra.utils.instantiate(supervised_cfg.model, image_shape=(1, 8, 8), num_classes=10)
    assert isinstance(ssgan, SSGAN) and isinstance(supervised, SupervisedBaseline)
    assert [p.shape for p in ssgan.discriminator.parameters()] == [p.shape for p in supervised.discriminator.parameters()]


def test_train_seconds_start_at_fits_setup_not_before_the_ranks_start(compose_cfg, monkeypatch) -> None:
    import time

    from pytorch_lightning.strategies import SingleDeviceStrategy

    # a clock that a slow start of the fit moves on by 1000 s: under DDP, the other ranks' start-up (their
    # imports, ~20 s here) happens there, in the strategy's setup_environment, before the callbacks' setup
    clock = [0.0]

    def perf_counter() -> float:
        clock[0] += 0.001
        return clock[0]

    def slow_start(self) -> None:
        clock[0] += 1000.0
        original(self)

    original = SingleDeviceStrategy.setup_environment
    monkeypatch.setattr(time, "perf_counter", perf_counter)
    monkeypatch.setattr(SingleDeviceStrategy, "setup_environment", slow_start)
    cfg = compose_cfg("trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "+trainer.limit_train_batches=2", "callbacks.sample_grid=null")
    metrics = train(cfg)
    assert clock[0] > 1000 and 0 < metrics["train_seconds"] < 1000  # it was 1000.x: the fit timed from before the start
    checkpoint = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    carried = next(state for key, state in checkpoint["callbacks"].items() if key.startswith("SpeedMonitor"))
    assert 0 < carried["train_seconds"] <= metrics["train_seconds"]  # a resume adds what the checkpoint carries


def test_a_run_with_limit_val_batches_0_keeps_no_best_checkpoint_and_no_warning_about_it(compose_cfg) -> None:
    import warnings

    cfg = compose_cfg("trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "+trainer.limit_train_batches=2", "trainer.limit_val_batches=0", "callbacks.sample_grid=null")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train(cfg)
    # the best checkpoint by val/acc had nothing to pick by, and Lightning warned each epoch that val/acc was missing
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    run = Path(cfg.paths.output_dir)
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "checkpoints" / "best.ckpt").exists()
    assert metrics["status"] == "ok" and metrics["tested"] == "last"


def test_a_short_run_writes_metrics_checkpoints_and_csv_log(compose_cfg) -> None:
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert metrics["epochs"] == 2 and metrics["best_epoch"] in (0, 1) and metrics["val/acc"] is not None
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "val/acc", "train/loss_supervised", "train/loss_unsupervised", "train/loss_generator"} <= set(header)
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1 and metrics["tested"] == "last"


def test_multirun_of_two_jobs_prints_a_summary_per_job(tmp_path: Path) -> None:
    result = train_in_fork("-m", "model=ssgan,supervised", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                           "data.num_labeled=20", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = [line for line in result.stdout.splitlines() if "| test acc" in line]
    assert len(summaries) == 2 and "ssgan" in summaries[0] and "supervised" in summaries[1]
    for job in ("0", "1"):
        metrics = json.loads((tmp_path / "sweep" / job / "metrics.json").read_text())
        assert metrics["status"] == "ok" and METRIC_KEYS <= set(metrics)


def test_single_run_prints_the_summary_as_its_last_line(tmp_path: Path) -> None:
    result = run_cli("trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.num_labeled=20", "data.num_val=0",
                     "model=supervised", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                     env={"PYTHONWARNINGS": "default"})  # warnings shown, as a user sees them
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("digits | 20 labels | supervised | test acc ")
    # digits has 12 batches an epoch, under Lightning's log_every_n_steps: its warning would not apply
    output = result.stdout + result.stderr
    # and no validation images: ssgan says so itself, Lightning's warning of an empty loader is noise
    for noise in ("is smaller than the logging interval", "Tip:", "LeafSpec", "across ranks is zero"):
        assert noise not in output, output[-2000:]
    # the baseline does not train on the unlabeled pool: the count of it says so
    assert re.search(r"training supervised on digits: 20 labeled, \d+ unlabeled \(which this method does not train "
                     r"on\), 0 validation images", output), output[-2000:]


def test_sample_grids_go_to_files_and_tensorboard(compose_cfg) -> None:
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                      "logger=tensorboard", "callbacks.sample_grid.every_n_epochs=1")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["epoch_0000.png", "epoch_0001.png"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "samples" in events.Tags()["images"] and len(events.Images("samples")) == 2


@pytest.mark.parametrize("rates", [{"fp32": 180.0, "bf16": 110.0}, {"fp32": 140.0, "bf16": 480.0}])
def test_bf16_on_a_cpu_that_multiplies_bf16_slowly_warns_to_use_fp32(compose_cfg, monkeypatch, caplog, tmp_path,
                                                                     rates) -> None:
    import logging

    import ssgan.train as train_module

    monkeypatch.setattr(train_module, "matmul_rates", lambda: rates)
    cfg = compose_cfg("trainer.precision=bf16-mixed", "trainer.accelerator=cpu")
    with caplog.at_level(logging.WARNING, logger="ssgan.train"):
        trainer = train_module.build_trainer(cfg, tmp_path)
    assert str(trainer.precision) == "bf16-mixed"
    warned = [r.getMessage() for r in caplog.records if "bf16" in r.getMessage()]
    # the first: an AVX-512-BF16 CPU measured at half its fp32 speed in bf16; the second: one with AMX
    assert warned == ([] if rates["bf16"] > rates["fp32"] else [
        "trainer.precision=bf16-mixed: this CPU multiplies bf16 matrices more slowly than fp32 ones (110 against 180 "
        "GFLOP/s, measured now), so bf16 makes training slower (docs/benchmarks.md); use trainer.precision=32-true here"])


@pytest.mark.parametrize("capability", [(7, 5), (8, 0)])
def test_bf16_on_a_gpu_older_than_ampere_warns_to_use_16_mixed(monkeypatch, caplog, capability) -> None:
    # no GPU here: a trainer's three attributes that the check reads, and torch's answers for a T4 or an A100
    import logging
    from types import SimpleNamespace

    import torch
    from pytorch_lightning.accelerators import CUDAAccelerator

    import ssgan.train as train_module

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "Tesla T4" if capability < (8, 0) else "A100")
    trainer = SimpleNamespace(precision="bf16-mixed", accelerator=CUDAAccelerator(), root_device=torch.device("cuda", 0),
                              strategy=SimpleNamespace(launcher=None))
    with caplog.at_level(logging.WARNING, logger="ssgan.train"):
        train_module.warn_if_bf16_is_slow(trainer)
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ([] if capability >= (8, 0) else [
        "trainer.precision=bf16-mixed: this GPU (Tesla T4, compute capability 7.5) has no bf16 units, so bf16 is "
        "emulated and slow; use trainer.precision=16-mixed (or 32-true) here"])
    # processes forked later could not use CUDA once it is started here: the GPU is not asked
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: asked.append(device) or capability)
    trainer.strategy.launcher = SimpleNamespace(_start_method="fork")
    train_module.warn_if_bf16_is_slow(trainer)
    assert asked == []


@pytest.mark.parametrize("error", [AssertionError("Torch not compiled with CUDA enabled"),
                                   RuntimeError("Found no NVIDIA driver on your system")])
def test_gpu_capability_is_none_where_torch_cannot_ask_a_gpu(monkeypatch, error: Exception) -> None:
    import torch

    from ssgan.train import gpu_capability

    def no_gpu(device):
        raise error

    monkeypatch.setattr(torch.cuda, "get_device_capability", no_gpu)
    assert gpu_capability(torch.device("cuda", 0)) is None


def test_matmul_rates_are_measured_on_this_cpu() -> None:
    import torch

    from ssgan.cpu import matmul_rates

    rates = matmul_rates(size=64, repeats=2)
    assert set(rates) == {"fp32", "bf16"} and all(0 < rate < float("inf") for rate in rates.values())
    # the operands come from a generator of its own: the training's random stream is left alone
    state = torch.random.get_rng_state()
    matmul_rates(size=64, repeats=1)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_val_acc_is_the_final_weights_even_when_the_last_epoch_is_not_a_validation_epoch(compose_cfg) -> None:
    import torch

    from ssgan.train import train

    tiny = ("trainer.max_epochs=3", "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", "logger=csv")
    every_epoch = train(compose_cfg(*tiny, "trainer.check_val_every_n_epoch=1"))
    every_other = train(compose_cfg(*tiny, "trainer.check_val_every_n_epoch=2", "overwrite=true"))
    # validation draws no random numbers, so both runs train the same weights; the second one validated
    # after epoch 1 only, and once reported that epoch's val/acc as the run's, with a last.ckpt of epoch 1
    assert every_other["test/acc"] == every_epoch["test/acc"]
    assert every_other["val/acc"] == every_epoch["val/acc"] <= every_other["val/best_acc"]
    last = torch.load(compose_cfg().paths.output_dir + "/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2 and every_other["val/best_acc"] == max(every_epoch["val/acc"], every_other["val/best_acc"])



def test_a_fit_that_max_steps_ends_inside_an_epoch_reports_that_epochs_share_and_its_weights_val_acc(compose_cfg) -> None:
    import csv

    from ssgan.train import train

    # digits, 50 labels: 12 batches an epoch, two optimizer steps a batch; max_steps=30 stops after 3 batches of epoch 1
    run = compose_cfg("trainer.max_epochs=5", "+trainer.max_steps=30", "+trainer.limit_val_batches=1",
                      "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", "logger=csv")
    metrics = train(run)
    # it said epochs 2 and the val/acc of epoch 0's end, while the test was of the weights after step 30
    assert metrics["steps"] == 15 and metrics["epochs"] == 1.25
    with open(Path(run.paths.output_dir) / "csv" / "metrics.csv", newline="") as handle:
        validations = [row for row in csv.DictReader(handle) if row.get("val/acc")]
    assert [row["step"] for row in validations] == ["11", "15"]  # epoch 0's end, then the last weights
    assert metrics["val/acc"] == pytest.approx(float(validations[-1]["val/acc"]))
    # stopped after its last checkpoint, before its metrics (e.g. Ctrl-C in the test): the resume trains nothing,
    # and writes what the run would have (it said epochs 1)
    (Path(run.paths.output_dir) / "metrics.json").unlink()
    resumed = train(compose_cfg("trainer.max_epochs=5", "+trainer.max_steps=30", "+trainer.limit_val_batches=1",
                                "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", "logger=csv",
                                "ckpt_path=last"))
    assert (resumed["epochs"], resumed["steps"], resumed["test/acc"]) == (1.25, 15, metrics["test/acc"])


def test_a_fit_that_max_steps_cut_inside_an_epoch_resumes_to_the_uninterrupted_run(compose_cfg) -> None:
    from ssgan.train import train

    tiny = ("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", "logger=csv")
    whole = train(compose_cfg(*tiny))
    cut = train(compose_cfg(*tiny, "+trainer.max_steps=30", "overwrite=true"))  # 15 of the 24 batches
    assert cut["epochs"] == 1.25
    # the end-of-epoch checkpoint of the cut epoch was resumed as a whole epoch: the run finished its batches,
    # then counted the epoch twice and stopped (an epoch of batches short), at the learning rate of the next epoch
    resumed = train(compose_cfg(*tiny, "ckpt_path=last"))
    assert (resumed["epochs"], resumed["steps"]) == (whole["epochs"], whole["steps"]) == (2, 24)
    assert resumed["test/acc"] == whole["test/acc"] and resumed["val/acc"] == whole["val/acc"]

@pytest.mark.parametrize(("overrides", "find_unused"), [
    (["trainer.devices=2"], True),  # Lightning alone picks plain DDP, which fails at the first GAN step
    (["trainer.devices=1"], None),
    (["trainer=ddp_cpu"], True),  # the config's own strategy
])
def test_several_devices_get_the_ddp_strategy_the_gan_needs(compose_cfg, tmp_path, overrides, find_unused) -> None:
    from pytorch_lightning.strategies import DDPStrategy

    import ssgan.train as train_module

    trainer = train_module.build_trainer(compose_cfg("trainer.accelerator=cpu", *overrides), tmp_path)
    if find_unused is None:
        assert not isinstance(trainer.strategy, DDPStrategy)
    else:
        assert isinstance(trainer.strategy, DDPStrategy) and trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True


def test_callbacks_none_writes_no_checkpoint_unless_the_trainer_asks_for_one(compose_cfg, tmp_path) -> None:
    import ssgan.train as train_module

    cfg = compose_cfg("callbacks=none", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.num_labeled=20")
    metrics = train(cfg)
    assert metrics["status"] == "ok" and (Path(cfg.paths.output_dir) / "metrics.json").is_file()
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))  # Lightning's own checkpoint is not added either
    asked = train_module.build_trainer(compose_cfg("callbacks=none", "+trainer.enable_checkpointing=true"), tmp_path)
    assert asked.checkpoint_callbacks  # an explicit trainer.enable_checkpointing=true is kept
    # a checkpoint callback of the user's own, of Lightning's base class: kept, and Lightning adds none
    own = train_module.build_trainer(compose_cfg("callbacks=none", "+callbacks.mine._target_=conftest.OwnCheckpoint"),
                                     tmp_path)
    assert [type(c).__name__ for c in own.checkpoint_callbacks] == ["OwnCheckpoint"]


@pytest.mark.parametrize("limit", ["0", "0.0"])
def test_no_validation_batches_are_named_as_the_user_wrote_them(compose_cfg, tmp_path, limit) -> None:
    import ssgan.train as train_module

    cfg = compose_cfg(f"trainer.limit_val_batches={limit}", "+callbacks.early_stop._target_=pytorch_lightning.callbacks.EarlyStopping",
                      "+callbacks.early_stop.monitor=val/acc")
    with pytest.raises(UserError, match=re.escape(f"no validation batches (trainer.limit_val_batches={limit}), so no val/")):
        train_module.build_trainer(cfg, tmp_path)


def test_refusing_fewer_epochs_counts_the_self_training_rounds() -> None:
    import ssgan.train as train_module

    # an end-of-epoch checkpoint after 9 epochs: Lightning has processed 9 and completed 8
    state = {"epoch": 8, "loops": {"fit_loop": {"epoch_progress": {"current": {"processed": 9, "completed": 8}}}}}
    train_module.refuse_fewer_epochs("last.ckpt", state, 5, 4, setting="trainer.max_epochs")  # 5 + 4 rounds' epochs
    train_module.refuse_fewer_epochs("last.ckpt", state, None, 0, setting="trainer.max_epochs")  # no limit
    with pytest.raises(UserError, match=r"^last.ckpt has trained 9 epochs, more than trainer.max_epochs=4 \+ 4 in "
                                        r"self-training rounds; resume with trainer.max_epochs=5 or more$"):
        train_module.refuse_fewer_epochs("last.ckpt", state, 4, 4, setting="trainer.max_epochs")


def test_settings_are_checked_against_the_init_types() -> None:
    from ssgan.config import check_argument_types
    from ssgan.data import DigitsDataModule
    from ssgan.errors import UserError

    check_argument_types(SSGAN, {"latent_dim": 10, "ema_decay": None, "unlabeled_weight": 1, "data_init": False}, "model")
    for arguments, message in [({"latent_dim": "abc"}, "model.latent_dim=abc is not a whole number; e.g. model.latent_dim=100"),
                               ({"latent_dim": 2.5}, "model.latent_dim=2.5 is not a whole number; e.g. model.latent_dim=100"),
                               ({"data_init": "yes"}, "model.data_init=yes is not true or false; e.g. model.data_init=true"),
                               ({"unlabeled_weight": True}, "model.unlabeled_weight=true is not a number; e.g. model.unlabeled_weight=1.0"),
                               ({"ema_decay": "x"}, "model.ema_decay=x is not a number; e.g. model.ema_decay=0.999")]:
        with pytest.raises(UserError) as raised:
            check_argument_types(SSGAN, arguments, "model")
        assert str(raised.value) == message
    # arguments taken through **kwargs are checked against the base class's __init__
    with pytest.raises(UserError, match=r"^data.batch_size=many is not a whole number; e.g. data.batch_size=100$"):
        check_argument_types(DigitsDataModule, {"batch_size": "many"}, "data")
    check_argument_types(DigitsDataModule, {"num_labeled": "2O"}, "data")  # left to the class's own, wordier check


def test_a_resume_is_checked_against_the_runs_recorded_settings(compose_cfg, tmp_path) -> None:
    from omegaconf import OmegaConf, open_dict

    from ssgan.errors import UserError
    from ssgan.train import check_resumed_settings

    record = tmp_path / "record"
    record.mkdir()
    (record / "overrides.yaml").write_text("- data.num_labeled=20\n- hydra.run.dir=/old/place\n- ckpt_path=last\n")
    earlier = compose_cfg("data.num_labeled=20")
    with open_dict(earlier):
        del earlier.model["skip_nonfinite_batches"]  # a run of an ssgan that had no such setting yet
        earlier.data.root = "/data/on/another/machine"
    (record / "config.yaml").write_text(OmegaConf.to_yaml(earlier))
    # a newer setting, another data.root, more epochs and gradient clipping: the same run
    check_resumed_settings(compose_cfg("data.num_labeled=20", "trainer.max_epochs=50", "model.gradient_clip_val=1.0"), record)
    for overrides, shown in [(["data.num_labeled=30"], "data.num_labeled: 20 -> 30"),
                             (["data.num_labeled=20", "model.net_kwargs.hidden_noise=0.7"],
                              "model.net_kwargs.hidden_noise: 0.3 -> 0.7"),
                             (["data.num_labeled=20", "+model.generator_kwargs.hidden=[250,250]"],
                              "model.generator_kwargs.hidden: (not set) -> [250, 250]"),
                             (["data.num_labeled=20", "model.ema_decay=null"], "model.ema_decay: 0.999 -> null")]:
        cfg = compose_cfg(*overrides)
        with pytest.raises(UserError) as refused:
            check_resumed_settings(cfg, record)
        assert str(refused.value) == (f"this run's checkpoint was trained with other settings ({shown}); resume it with its "
                                      f"own: ssgan-train data.num_labeled=20 hydra.run.dir={cfg.paths.output_dir} ckpt_path=last")


def test_resuming_a_checkpoint_of_other_nets_is_one_line(compose_cfg) -> None:
    # e.g. a conv run of an ssgan before its conv nets followed the reference more closely
    cfg = compose_cfg("trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.num_labeled=20")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=False)
    key = next(name for name in state["state_dict"] if name.startswith("generator.") and name.endswith("bias"))
    state["state_dict"][key] = torch.zeros(3)  # a layer of another size
    torch.save(state, last)
    resumed = compose_cfg("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "data.num_labeled=20",
                          "ckpt_path=last")
    with pytest.raises(UserError, match=r"^ckpt_path=last does not fit the nets this run builds \(size mismatch for "
                                        r"generator\.\S+: .+\); it is from another version of ssgan or other model "
                                        r"settings: resume with those, or start a new run$"):
        train(resumed)


def test_ssgan_trains_with_a_batch_of_one_image(compose_cfg) -> None:
    # the generator's batchnorm needs two images: it draws two fakes for the one unlabeled image
    cfg = compose_cfg("data.batch_size=1", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                      "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "callbacks.sample_grid=null",
                      "logger=csv")
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["steps"] == 3


def test_plain_ddp_is_refused_for_the_gan_by_any_of_its_names_and_allowed_for_the_baseline() -> None:
    from ssgan.errors import UserError
    from ssgan.train import refuse_plain_ddp

    for strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "ddp_find_unused_parameters_false",
                     "ddp_fork_find_unused_parameters_false"):
        base = strategy.removesuffix("_find_unused_parameters_false")
        with pytest.raises(UserError, match=f"use trainer.strategy={base}_find_unused_parameters_true$"):
            refuse_plain_ddp(strategy, True, "trainer.strategy")
        refuse_plain_ddp(strategy, False, "trainer.strategy")  # the supervised baseline uses every parameter
    refuse_plain_ddp("ddp_find_unused_parameters_true", True, "trainer.strategy")
    refuse_plain_ddp("auto", True, "trainer.strategy")


def test_runs_started_in_the_same_second_get_their_own_folders(compose_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    # two runs started together (`for s in 0 1; do ssgan-train seed=$s & done`) once shared one folder and
    # overwrote each other's record, checkpoints and metrics
    from datetime import datetime

    from hydra.core.hydra_config import HydraConfig

    clock = {}

    class Clock(datetime):  # Hydra's ${now:...} reads datetime.now(): here two starts 0.36 s apart
        @classmethod
        def now(cls, tz=None):
            return clock["now"]

    monkeypatch.setattr("hydra.core.utils.datetime", Clock)
    folders = []
    for start in (datetime(2026, 12, 2, 17, 20, 33, 120_000), datetime(2026, 12, 2, 17, 20, 33, 480_000)):
        clock["now"] = start
        compose_cfg()
        folders.append((HydraConfig.get().run.dir, HydraConfig.get().sweep.dir))
    assert folders[0][0] != folders[1][0] and folders[0][1] != folders[1][1], folders


@pytest.mark.parametrize("folder", ["/runs/plain", "/home/zoë/runs/a", "/runs/a,b", "/runs/it's (2)", '/runs/"q"'])
def test_a_run_folder_is_written_as_hydra_reads_it_back(folder: str) -> None:
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ssgan.command_line import _command_line_settings
    from ssgan.train import resume_command

    command = shlex.split(resume_command(["seed=1"], folder))  # as the shell passes the printed command on
    assert command[0] == "ssgan-train" and command[-1] == "ckpt_path=last"
    given = [arg for arg in command if arg.startswith("hydra.run.dir=")]
    assert len(given) == 1
    assert OverridesParser.create().parse_override(given[0]).value() == folder  # Hydra's reading: no sweep, no error
    assert _command_line_settings(command[1:])["hydra.run.dir"] == folder  # and ssgan's, which finds the run's record


def test_the_last_setting_of_a_key_on_the_command_line_wins_sweep_or_not() -> None:
    from ssgan.command_line import _command_line_settings

    # the earlier plain value once won over the later sweep of the same key
    assert _command_line_settings(["hydra.mode=RUN", "hydra.mode=RUN,MULTIRUN", "+seed=1", "seed=2"]) == {
        "hydra.mode": "RUN,MULTIRUN", "seed": "2"}
    assert _command_line_settings(["seed=1,2", "seed=3", "hydra.run.dir='/runs/a,b'"]) == {
        "seed": "3", "hydra.run.dir": "/runs/a,b"}


def test_batch_limits_are_checked_against_each_process_shard_under_ddp() -> None:
    from types import SimpleNamespace

    from ssgan.errors import UserError
    from ssgan.train import check_batch_limits

    # 100 validation images in batches of 50: 2 batches in one process, 1 in each of two (Lightning limits each)
    datamodule = SimpleNamespace(split=SimpleNamespace(unlabeled=range(1250), val=range(100)), batch_size=100,
                                 eval_batch_size=50, has_test_set=False)
    check_batch_limits({"limit_val_batches": 0.5}, datamodule, lambda key: f"trainer.{key}")
    with pytest.raises(UserError, match=r"^trainer.limit_val_batches=0.5 keeps 0.5 of this data's 1 val batch per "
                                        r"process, which is none; give a fraction of at least 1 or a number"):
        check_batch_limits({"limit_val_batches": 0.5}, datamodule, lambda key: f"trainer.{key}", world_size=2)
    # 12 training batches: 6 a process
    with pytest.raises(UserError, match=r"keeps 0.1 of this data's 6 train batches per process"):
        check_batch_limits({"limit_train_batches": 0.1}, datamodule, lambda key: f"trainer.{key}", world_size=2)
    check_batch_limits({"limit_train_batches": 0.1}, datamodule, lambda key: f"trainer.{key}")
    # under fast_dev_run Lightning runs its own number of batches: the limits are not checked
    check_batch_limits({"limit_train_batches": 0.01, "fast_dev_run": True}, datamodule, lambda key: f"trainer.{key}")


@pytest.mark.parametrize("flag", [["--help"], ["--cfg", "job", "data=digits"], ["--info", "config"]])
def test_flags_that_only_show_something_print_it_without_importing_torch(tmp_path, flag) -> None:
    # the seconds of torch's and Lightning's imports (9-21 s here) came before ssgan-train --help printed a line
    code = ("import atexit, sys\n"
            f"sys.argv = ['ssgan-train', *{flag!r}]\n"
            "atexit.register(lambda: print('imported:', sorted({'torch', 'pytorch_lightning'} & set(sys.modules))))\n"
            "from ssgan.command_line import main\n"
            "main()\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip().splitlines()[-1] == "imported: []"
    expected = {"--help": "== Configuration groups ==", "--cfg": "\ndata:\n", "--info": "Config search path"}[flag[0]]
    assert expected in shown.stdout
    assert list(tmp_path.iterdir()) == []  # no run folder either


def test_ctrl_c_before_the_run_began_is_one_line_with_status_130(monkeypatch, capsys) -> None:
    # during the checks or the seconds of torch's imports: once a 35-line KeyboardInterrupt traceback
    import ssgan.command_line as command_line

    def interrupted(args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(command_line, "check_multirun_processes", interrupted)
    monkeypatch.setattr(command_line.sys, "argv", ["ssgan-train", "trainer.max_epochs=1"])
    try:
        with pytest.raises(SystemExit) as exited:
            command_line.main()
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C left ssgan-train as a traceback")
    assert exited.value.code == 130 and capsys.readouterr().err == "error: stopped by Ctrl-C\n"


@pytest.mark.parametrize("when", ["checks", "after the imports"])
def test_sigterm_before_the_run_began_is_one_line_with_status_143(tmp_path: Path, when: str) -> None:
    # Python's default ended the process without a word (a shell showed status 143 and nothing else)
    stop = "os.kill(os.getpid(), signal.SIGTERM)"
    hook = (f"command_line.check_multirun_processes = lambda args: {stop}\n" if when == "checks" else
            "import ssgan.train as train\n"
            "save = train._RunRecord.save.__func__\n"
            f"train._RunRecord.save = classmethod(lambda cls, args: (save(cls, args), {stop}))\n")
    code = ("import os, signal, sys\n"
            "import ssgan.command_line as command_line\n"
            f"sys.argv = ['ssgan-train', 'hydra.run.dir={tmp_path / 'run'}']\n" + hook +
            "command_line.main()\n"
            "print('went on')\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    stopped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                             env={**os.environ, "TMPDIR": str(scratch)})
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr == "error: stopped by SIGTERM\n" and stopped.stdout == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tmp"] and list(scratch.iterdir()) == []  # nor the record's copy


def test_a_validation_interval_beyond_the_epochs_batches_is_refused_before_fit(compose_cfg) -> None:
    # Lightning refused it only inside fit, with a traceback (and ssgan-cli left its log folder)
    import ssgan.train as train_module

    cfg = compose_cfg("data.num_labeled=20")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    settings = {"limit_train_batches": 2, "val_check_interval": 3}
    with pytest.raises(UserError, match=re.escape("trainer.val_check_interval=3 is more than the 2 training batches of an "
                                                  "epoch; give at most 2, or a fraction of the epoch, e.g. "
                                                  "trainer.val_check_interval=0.5")):
        train_module.check_batch_limits(settings, datamodule, lambda key: f"trainer.{key}")
    for fine in ({"limit_train_batches": 2, "val_check_interval": 2}, {"val_check_interval": 0.5},
                 {"limit_train_batches": 2, "val_check_interval": 3, "check_val_every_n_epoch": None}):
        train_module.check_batch_limits(fine, datamodule, lambda key: f"trainer.{key}")


def test_a_callback_folder_that_cannot_be_written_is_refused_before_any_training(compose_cfg, tmp_path) -> None:
    # the checkpoint's or the sample grid's write failed inside fit with a traceback, and left the run's folder
    import ssgan.train as train_module

    (tmp_path / "a_file").write_text("")
    cfg = compose_cfg(f"callbacks.sample_grid.dirpath={tmp_path / 'a_file' / 'samples'}")
    with pytest.raises(UserError, match=re.escape(
            f"cannot write callbacks.sample_grid.dirpath={tmp_path / 'a_file' / 'samples'}: {tmp_path / 'a_file'} is a "
            "file, not a folder; give callbacks.sample_grid.dirpath=<a folder you can write to>")):
        train_module.build_trainer(cfg, tmp_path / "run")


@pytest.mark.parametrize(("override", "message"), [
    ("+callbacks.foo._target_=builtins.dict", "callbacks.foo builds a dict, not a Lightning callback; give a "
     "pytorch_lightning.callbacks class (or a subclass of pytorch_lightning.Callback) as callbacks.foo._target_"),
    ("+callbacks.foo=5", "callbacks.foo is no callback's config; give its class, e.g. "
     "+callbacks.foo._target_=pytorch_lightning.callbacks.EarlyStopping, or remove it"),
])
def test_an_extra_callback_that_is_none_is_a_one_line_error(compose_cfg, tmp_path, override: str, message: str) -> None:
    # Lightning (or Hydra's instantiate) stopped with a traceback
    import ssgan.train as train_module

    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        train_module.build_trainer(compose_cfg(override), tmp_path)


@pytest.mark.parametrize(("override", "group"), [("+trainer.logger=false", "logger=none (no logs), logger=csv or "
                                                                           "logger=tensorboard"),
                                                 ("+trainer.callbacks=[]", "callbacks=none, or "
                                                                           "+callbacks.<name>._target_=<class>")])
def test_a_trainer_setting_that_its_group_sets_is_refused_not_ignored(compose_cfg, tmp_path, override: str,
                                                                       group: str) -> None:
    # +trainer.logger=false once wrote csv/ all the same
    import ssgan.train as train_module

    key = override.split("=")[0].split(".")[-1]
    with pytest.raises(UserError, match=f"^{re.escape(f'trainer.{key} is set by the {key} group, so it would be ignored; use {group}')}$"):
        train_module.build_trainer(compose_cfg(override), tmp_path)


def test_a_whole_float_validation_interval_is_left_to_lightning_which_takes_it_as_batches() -> None:
    # 2.0 is 2 batches to Lightning (pl.Trainer(val_check_interval=2.0).val_check_interval == 2): not refused
    import pytorch_lightning as pl

    from ssgan.train import check_batch_limit_values

    check_batch_limit_values({"val_check_interval": 2.0}, lambda key: f"trainer.{key}")
    assert pl.Trainer(val_check_interval=2.0, logger=False, enable_checkpointing=False).val_check_interval == 2
    with pytest.raises(UserError, match=r"^trainer.val_check_interval=2.5 is neither a fraction"):
        check_batch_limit_values({"val_check_interval": 2.5}, lambda key: f"trainer.{key}")


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_cache_dir_variable_counts_as_unset_not_as_the_root(value: str, monkeypatch) -> None:
    # SSGAN_CACHE_DIR= ssgan-train wrote its splits to /splits (the configs read the empty value as "")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from ssgan.command_line import empty_cache_dir_is_unset

    monkeypatch.setenv("SSGAN_CACHE_DIR", value)
    empty_cache_dir_is_unset()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="train")
        assert OmegaConf.select(cfg, "paths.cache_dir") == ".cache/ssgan"
    finally:
        GlobalHydra.instance().clear()
    monkeypatch.setenv("SSGAN_CACHE_DIR", "/data/cache")
    empty_cache_dir_is_unset()
    assert os.environ["SSGAN_CACHE_DIR"] == "/data/cache"
