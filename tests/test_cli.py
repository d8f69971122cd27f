"""``ssgan-cli``: the LightningCLI builds what Hydra builds, from the same classes, and runs through ``main([...])``."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import pytest
import torch

from ssgan.cli import build_cli, main, show_progress_messages
from ssgan.config import CONFIG_DIR
from ssgan.module import SSGAN, SupervisedBaseline
from ssgan.self_training import SelfTraining
from ssgan.tools import main as tools_main

CLI_DIR = CONFIG_DIR / "cli"


def _plain(hparams) -> dict:
    """Hyperparameters without LightningCLI's bookkeeping keys, with tuples as lists."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in hparams.items()
            if key not in ("_class_path", "_instantiator")}


def _optimizer_settings(model) -> list[tuple[str, dict]]:
    optimizers, _ = model.configure_optimizers()
    return [(type(opt).__name__, {k: v for k, v in opt.defaults.items()}) for opt in optimizers]


def test_cli_and_hydra_build_the_same_experiment(compose_cfg, tmp_path: Path) -> None:
    cache = str(tmp_path / "splits")
    cli = build_cli(["--config", str(CLI_DIR / "digits_ssgan.yaml"), f"--data.init_args.split_cache_dir={cache}"], run=False)

    cfg = compose_cfg("experiment=digits_50", f"data.split_cache_dir={cache}")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(cfg.model, _convert_="all", image_shape=datamodule.image_shape,
                                    num_classes=datamodule.num_classes, class_names=list(datamodule.classes))

    assert type(cli.model) is type(model) is SSGAN
    assert _plain(cli.model.hparams) == _plain(model.hparams)
    assert _optimizer_settings(cli.model) == _optimizer_settings(model)
    assert type(cli.datamodule) is type(datamodule) and _plain(cli.datamodule.hparams) == _plain(datamodule.hparams)
    assert cli.trainer.max_epochs == cfg.trainer.max_epochs


def test_cli_builds_self_training_as_a_callback(tmp_path: Path) -> None:
    cli = build_cli(["--config", str(CLI_DIR / "digits_supervised_self_training.yaml"),
                     f"--trainer.default_root_dir={tmp_path}"], run=False)
    assert isinstance(cli.model, SupervisedBaseline)
    rounds = [c for c in cli.trainer.callbacks if isinstance(c, SelfTraining)]
    assert len(rounds) == 1 and rounds[0].rounds == 3


@pytest.mark.parametrize("config", sorted(p.name for p in CLI_DIR.glob("*.yaml")))
def test_every_cli_config_fits_under_fast_dev_run(config: str, tmp_path: Path, image_folder: Path) -> None:
    args = ["fit", "--config", str(CLI_DIR / config), "--trainer.fast_dev_run=true",
            "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}",
            f"--data.init_args.split_cache_dir={tmp_path / 'splits'}"]
    if config == "folder.yaml":
        args += [f"--data.init_args.root={image_folder}", f"--data.init_args.image_cache_dir={tmp_path / 'images'}"]
    main(args)


def test_cli_fit_then_test_from_the_checkpoint(tmp_path: Path, image_folder: Path) -> None:
    common = ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}"]
    main(["fit", *common, "--trainer.max_epochs=1"])
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert checkpoints
    cli = build_cli(["test", *common, f"--ckpt_path={checkpoints[-1]}"])
    assert 0.0 <= float(cli.trainer.callback_metrics["test/acc"]) <= 1.0
    assert list(tmp_path.rglob("confusion_matrix.png"))  # drawn in the trainer's log folder
    validated = build_cli(["validate", *common, f"--ckpt_path={checkpoints[-1]}"])
    assert 0.0 <= float(validated.trainer.callback_metrics["val/acc"]) <= 1.0
    predicted = build_cli(["predict", *common, f"--ckpt_path={checkpoints[-1]}"])
    probabilities = torch.cat(predicted.trainer.predict_loop.predictions)  # (9 test images, 3 classes)
    assert probabilities.shape == (9, 3) and torch.allclose(probabilities.sum(dim=1), torch.ones(9))
    # the ssgan tools take the CLI's checkpoint too (its hyperparameters carry LightningCLI's _class_path)
    assert "_class_path" in torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["hyper_parameters"]
    predictions = tmp_path / "predictions.csv"
    tools_main(["predict", str(checkpoints[-1]), str(image_folder / "test"), "--out", str(predictions)])
    assert len(predictions.read_text().splitlines()) == 1 + 9
    tools_main(["extract", str(checkpoints[-1]), "--out", str(tmp_path / "features.npz")])  # rebuilds the datamodule
    assert (tmp_path / "features.npz").is_file()


def test_cli_writes_sample_grids_in_its_log_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no default_root_dir: the trainer logs under ./lightning_logs/version_0
    main(["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), "--trainer.max_epochs=1",
          "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
          f"--data.init_args.split_cache_dir={tmp_path / 'splits'}"])
    assert list((tmp_path / "lightning_logs" / "version_0" / "samples").glob("epoch_*.png"))
    assert not (tmp_path / "samples").exists()


def test_cli_prints_ssgan_progress_messages_unless_logging_is_set_up(monkeypatch) -> None:
    ssgan_logger = logging.getLogger("ssgan")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # a bare `ssgan-cli` process
    monkeypatch.setattr(ssgan_logger, "handlers", [])
    monkeypatch.setattr(ssgan_logger, "level", logging.NOTSET)
    show_progress_messages()
    assert ssgan_logger.isEnabledFor(logging.INFO)
    assert [type(handler) for handler in ssgan_logger.handlers] == [logging.StreamHandler]
    show_progress_messages()  # once only
    assert len(ssgan_logger.handlers) == 1
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])  # the caller's own logging
    monkeypatch.setattr(ssgan_logger, "handlers", [])
    show_progress_messages()
    assert ssgan_logger.handlers == []
    monkeypatch.undo()
    ssgan_logger.setLevel(ssgan_logger.level)  # clears logging's cached levels
