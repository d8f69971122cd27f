"""``ssgan-cli``: the LightningCLI builds what Hydra builds, from the same classes, and runs through ``main([...])``."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shlex
import shutil
import signal
import time
import warnings
from pathlib import Path

import hydra
import pytest
import torch
import yaml

from conftest import write_image_folder
from ssgan.callbacks import AtomicCheckpointIO, KeepBestAcrossFolders, SyncedSigterm
from ssgan.cli import build_cli, find_user_error, main, show_progress_messages
from ssgan.config import CONFIG_DIR, init_arguments
from ssgan.data.folder import FolderDataModule
from ssgan.errors import UserError
from ssgan.module import SSGAN, DivergenceError, SupervisedBaseline
from ssgan.self_training import SelfTraining
from ssgan.tools import load_module
from ssgan.tools import main as tools_main

CLI_DIR = CONFIG_DIR / "cli"


def _plain(hparams) -> dict:
    """Hyperparameters without LightningCLI's bookkeeping keys, with tuples as lists."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in hparams.items()
            if key not in ("_class_path", "_instantiator")}


def _optimizer_settings(model) -> list[tuple[str, dict]]:
    optimizers, _ = model.configure_optimizers()
    return [(type(opt).__name__, {k: v for k, v in opt.defaults.items()}) for opt in optimizers]


# each CLI config and the ssgan-train overrides whose composition it mirrors
HYDRA_TWIN = {
    "digits_ssgan.yaml": ("experiment=digits_50",),
    "digits_supervised_self_training.yaml": ("data=digits", "model=supervised", "self_training=default"),
    "folder.yaml": ("data=folder",),
}

# the callbacks that Lightning adds itself (set by the trainer settings compared on their own),
# LightningCLI's config.yaml writer, and the SIGTERM stop that both entry points add to any config's
NOT_CONFIGURED = ("ProgressBar", "ModelSummary", "SaveConfigCallback", "SyncedSigterm", "KeepBestAcrossFolders")


def _callback_settings(callback) -> tuple[str, dict]:
    """A callback's class and ``__init__`` settings, as it keeps them (where it writes aside: Hydra's
    run folder against the CLI's log folder)."""
    settings = {}
    for name in sorted(init_arguments(type(callback)) - {"dirpath"}):
        settings[name] = getattr(callback, name, getattr(callback, f"_{name}", "(not kept)"))
    return type(callback).__name__, settings


def _configured_callbacks(trainer) -> list[tuple[str, dict]]:
    return [_callback_settings(c) for c in trainer.callbacks
            if not any(base.__name__.endswith(NOT_CONFIGURED) for base in type(c).__mro__)]


def test_every_cli_config_mirrors_its_hydra_twin(compose_cfg, tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    # the CLI configs carry ssgan-train's values: model, data (and the cache folder that SSGAN_CACHE_DIR
    # sets for both), trainer settings and callbacks; a key added to Hydra's trainer config must be there too
    from ssgan.train import build_trainer

    monkeypatch.setenv("SSGAN_CACHE_DIR", str(tmp_path / "cache"))  # compose_cfg's paths.cache_dir
    for config, overrides in HYDRA_TWIN.items():
        root = ["--data.init_args.root", str(image_folder)] if config == "folder.yaml" else []
        cli = build_cli(["--config", str(CLI_DIR / config), f"--trainer.default_root_dir={tmp_path}", *root], run=False)

        cfg = compose_cfg(*overrides, *([f"data.root={image_folder}"] if root else []))
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        model = hydra.utils.instantiate(cfg.model, _convert_="all", image_shape=datamodule.image_shape,
                                        num_classes=datamodule.num_classes, class_names=list(datamodule.classes))
        trainer = build_trainer(cfg, tmp_path / "run", has_validation=datamodule.num_val > 0)

        assert cli.config.seed_everything == cfg.seed, config
        assert type(cli.model) is type(model), config
        assert _plain(cli.model.hparams) == _plain(model.hparams), config
        assert _optimizer_settings(cli.model) == _optimizer_settings(model), config
        assert type(cli.datamodule) is type(datamodule), config
        assert _plain(cli.datamodule.hparams) == _plain(datamodule.hparams), config
        trainer_keys = sorted(set(cfg.trainer) - {"_target_"})
        assert {key: cli.config.trainer[key] for key in trainer_keys} == {key: cfg.trainer[key] for key in trainer_keys}, config
        assert _configured_callbacks(cli.trainer) == _configured_callbacks(trainer), config


def test_cli_builds_self_training_as_a_callback(tmp_path: Path) -> None:
    cli = build_cli(["--config", str(CLI_DIR / "digits_supervised_self_training.yaml"),
                     f"--trainer.default_root_dir={tmp_path}"], run=False)
    assert isinstance(cli.model, SupervisedBaseline)
    rounds = [c for c in cli.trainer.callbacks if isinstance(c, SelfTraining)]
    assert len(rounds) == 1 and rounds[0].rounds == 3
    # beside the config's callbacks, as in ssgan-train: a DDP run stops on SIGTERM (tests/test_ddp.py)
    assert sum(isinstance(c, SyncedSigterm) for c in cli.trainer.callbacks) == 1
    assert sum(isinstance(c, KeepBestAcrossFolders) for c in cli.trainer.callbacks) == 1  # fit --ckpt_path into a new version_N


@pytest.mark.parametrize("given", ["conf/cli/digits_ssgan.yaml", "digits_ssgan", "digits_ssgan.yaml", "--config=digits_ssgan",
                                   "-c=digits_ssgan", "-c digits_ssgan"])
def test_the_shipped_cli_configs_are_found_from_any_folder(given: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository: README's conf/cli/... path is not there
    args = [given] if "=" in given else given.split() if given.startswith("-c") else ["--config", given]
    cli = build_cli([*args, f"--data.init_args.split_cache_dir={tmp_path}"], run=False)
    assert type(cli.model) is SSGAN and cli.trainer.max_epochs == 200
    own = (CLI_DIR / "digits_ssgan.yaml").read_text().replace("max_epochs: 200", "max_epochs: 7")
    (tmp_path / "digits_ssgan.yaml").write_text(own)  # a file of the user's of that name comes first
    assert build_cli(["--config", "digits_ssgan.yaml", f"--data.init_args.split_cache_dir={tmp_path}"],
                     run=False).trainer.max_epochs == 7
    # inline YAML longer than a file name may be: passed on as it is, not looked up as a file
    inline = "{trainer: {max_epochs: 4, default_root_dir: " + str(tmp_path / ("logs" * 70)) + "}}"
    assert len(inline) > 255
    assert build_cli(["--config", str(CLI_DIR / "digits_ssgan.yaml"), "--config", inline,
                      f"--data.init_args.split_cache_dir={tmp_path}"], run=False).trainer.max_epochs == 4


def test_a_config_name_that_is_no_file_nor_shipped_lists_the_shipped_ones(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = ", ".join(sorted(p.stem for p in CLI_DIR.glob("*.yaml")))
    # jsonargparse said only: File does not exist
    assert _one_line_error(capsys, ["fit", "--config", "digits_sgan"]) == (
        f"error: --config digits_sgan: no such file, nor a config that ssgan ships; did you mean --config digits_ssgan? "
        f"give a YAML file, or one of: {shipped}")
    assert _one_line_error(capsys, ["fit", "--config=my_settings.yaml"]) == (
        f"error: --config my_settings.yaml: no such file, nor a config that ssgan ships; give a YAML file, or one of: "
        f"{shipped}")
    assert not any(tmp_path.iterdir())


def test_a_config_file_that_is_no_yaml_mapping_is_one_line_naming_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.yaml").write_text("trainer:\n  max_epochs: 2\nmodel: {init_args: {lr: 1\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "list.yaml").write_text("- trainer\n- model\n")
    (tmp_path / "latin1.yaml").write_bytes("# settings\ntrainer: {default_root_dir: caf\xe9}\n".encode("latin-1"))
    (tmp_path / "folder").mkdir()
    # jsonargparse said "Problems parsing config: ... in "<unicode string>", line 3", "Unexpected config:", or
    # gave a UnicodeDecodeError traceback
    assert _one_line_error(capsys, ["fit", "--config", "broken.yaml"]) == (
        'error: --config broken.yaml is not valid YAML: while parsing a flow mapping; in "broken.yaml", line 3, column 20; '
        "expected ',' or '}', but got '<stream end>'; in \"broken.yaml\", line 4, column 1; fix the file there")
    assert _one_line_error(capsys, ["fit", "-c=empty.yaml"]) == (
        "error: --config empty.yaml is empty; write settings in it (e.g. trainer: {max_epochs: 20}), or leave out --config")
    assert _one_line_error(capsys, ["fit", "--config", "list.yaml"]) == (
        "error: --config list.yaml holds a list, not settings; write it as a mapping, e.g. trainer: {max_epochs: 20}")
    assert _one_line_error(capsys, ["fit", "--config=latin1.yaml"]) == (
        "error: --config latin1.yaml is not UTF-8 text (invalid continuation byte on line 2); save it as UTF-8")
    assert _one_line_error(capsys, ["fit", "--config", "folder"]) == (
        "error: --config folder is a folder; give a YAML file, e.g. --config folder/config.yaml")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.yaml", "empty.yaml", "folder", "latin1.yaml", "list.yaml"]


@pytest.mark.parametrize("config", sorted(p.name for p in CLI_DIR.glob("*.yaml")))
def test_every_cli_config_fits_under_fast_dev_run(config: str, tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    import ssgan.train

    args = ["fit", "--config", str(CLI_DIR / config), "--trainer.fast_dev_run=true",
            "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}",
            f"--data.init_args.split_cache_dir={tmp_path / 'splits'}"]
    if config == "folder.yaml":
        args += [f"--data.init_args.root={image_folder}", f"--data.init_args.image_cache_dir={tmp_path / 'images'}"]
    trainers = []  # main() hands its trainer to close_process_group when the run is over
    monkeypatch.setattr(ssgan.train, "close_process_group", trainers.append)
    main(args)
    settings = yaml.safe_load((CLI_DIR / config).read_text())
    (trainer,) = trainers
    assert trainer.state.finished and trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1
    assert f"{type(trainer.lightning_module).__module__}.{type(trainer.lightning_module).__name__}" == \
        settings["model"]["class_path"]
    rounds = [c.rounds for c in trainer.callbacks if isinstance(c, SelfTraining)]
    assert rounds == [c["init_args"]["rounds"] for c in settings["trainer"].get("callbacks", [])
                      if c["class_path"].endswith("SelfTraining")]
    # fast_dev_run writes no logs or checkpoints, and no sample grid either (it once wrote samples/ here)
    assert {path.name for path in tmp_path.iterdir()} <= {"splits", "images"}


@pytest.mark.parametrize("config", sorted(p.name for p in CLI_DIR.glob("*.yaml")))
def test_every_cli_config_keeps_the_last_checkpoint_that_the_readme_tests(config: str, tmp_path: Path,
                                                                           image_folder: Path) -> None:
    # README: ssgan-cli test --config <the yaml> --ckpt_path lightning_logs/version_N/checkpoints/last.ckpt
    args = ["--config", str(CLI_DIR / config), f"--trainer.default_root_dir={tmp_path}",
            f"--data.init_args.split_cache_dir={tmp_path / 'splits'}"]
    if config == "folder.yaml":
        args += [f"--data.init_args.root={image_folder}", f"--data.init_args.image_cache_dir={tmp_path / 'images'}"]
    cli = build_cli(args, run=False)
    assert any(c.filename == "last" and c.monitor is None for c in cli.trainer.checkpoint_callbacks)


def test_cli_warns_of_a_conv_net_at_the_mlp_learning_rate_in_its_own_spelling(tmp_path: Path, image_folder: Path,
                                                                               caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="ssgan"):
        main(["fit", "--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.batch_size=10",
              "--model.init_args.arch=conv", "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}"])
    [warning] = [record.getMessage() for record in caplog.records if "the conv net trains" in record.getMessage()]
    assert warning.endswith("; set --model.init_args.optimizer_d.init_args.lr=0.0003 "
                            "--model.init_args.optimizer_g.init_args.lr=0.0003 --model.init_args.feature_matching=absolute")


def test_cli_refuses_a_callback_folder_that_cannot_be_written_before_fit(tmp_path: Path, image_folder: Path,
                                                                         capsys) -> None:
    (tmp_path / "a_file").write_text("")
    config = (CLI_DIR / "folder.yaml").read_text().replace(  # last.ckpt's callback (best.ckpt's goes without validation)
        "init_args: {filename: last, monitor: null, save_top_k: 1, enable_version_counter: false, save_on_train_epoch_end",
        f"init_args: {{dirpath: {tmp_path / 'a_file' / 'ckpts'}, filename: last, monitor: null, save_top_k: 1, "
        "enable_version_counter: false, save_on_train_epoch_end")
    assert str(tmp_path / "a_file") in config
    (tmp_path / "folder.yaml").write_text(config)
    with pytest.raises(SystemExit) as exited:
        main(["fit", "--config", str(tmp_path / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", f"--trainer.default_root_dir={tmp_path}",
              "--trainer.max_epochs=1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (f"error: cannot write the ModelCheckpoint callback's dirpath="
                                       f"{tmp_path / 'a_file' / 'ckpts'}: {tmp_path / 'a_file'} is a file, not a folder; "
                                       "give it a folder you can write to in its init_args\n")
    assert not (tmp_path / "lightning_logs").exists()


def test_cli_fit_then_test_from_the_checkpoint(tmp_path: Path, image_folder: Path, caplog) -> None:
    common = ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}"]
    main(["fit", *common, "--trainer.max_epochs=2"])
    run = tmp_path / "lightning_logs" / "version_0"  # folder.yaml has digits_ssgan.yaml's callbacks
    # with validation images (num_val=3) the best epoch by val/acc too, as in ssgan-train data=folder
    assert sorted(path.name for path in tmp_path.rglob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    assert list((run / "samples").glob("epoch_*.png"))
    checkpoints = [run / "checkpoints" / "last.ckpt"]
    with pytest.raises(UserError, match=r"has trained 2 epochs, more than --trainer.max_epochs=1; resume with "
                                        r"--trainer.max_epochs=2 or more$"):  # not Lightning's traceback from fit
        build_cli(["fit", *common, "--trainer.max_epochs=1", f"--ckpt_path={checkpoints[-1]}"])
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        cli = build_cli(["test", *common, f"--ckpt_path={checkpoints[-1]}"])
    assert 0.0 <= float(cli.trainer.callback_metrics["test/acc"]) <= 1.0
    # test logs to a new version folder: Lightning's note that a fit's best-checkpoint records are not
    # reloaded from the checkpoint's folder says nothing of a test
    assert not [w for w in shown if "dirpath has changed" in str(w.message)]
    assert list(tmp_path.rglob("confusion_matrix.png"))  # drawn in the trainer's log folder
    validated = build_cli(["validate", *common, f"--ckpt_path={checkpoints[-1]}"])
    assert 0.0 <= float(validated.trainer.callback_metrics["val/acc"]) <= 1.0
    with caplog.at_level(logging.INFO, logger="ssgan"):
        predicted = build_cli(["predict", *common, f"--ckpt_path={checkpoints[-1]}"])
    probabilities = torch.cat(predicted.trainer.predict_loop.predictions)  # (9 test images, 3 classes)
    assert probabilities.shape == (9, 3) and torch.allclose(probabilities.sum(dim=1), torch.ones(9))
    # Lightning keeps them in memory only: the line says so, and which command writes them to a file
    assert caplog.messages[-1] == (f"predicted the class probabilities of 9 test images, and wrote them nowhere: "
                                   f"`ssgan predict {checkpoints[-1]} <image folder> --out predictions.csv` writes "
                                   "predictions to a file")
    # the ssgan tools take the CLI's checkpoint too (its hyperparameters carry LightningCLI's _class_path)
    assert "_class_path" in torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["hyper_parameters"]
    predictions = tmp_path / "predictions.csv"
    tools_main(["predict", str(checkpoints[-1]), str(image_folder / "test"), "--out", str(predictions)])
    assert len(predictions.read_text().splitlines()) == 1 + 9
    tools_main(["extract", str(checkpoints[-1]), "--out", str(tmp_path / "features.npz")])  # rebuilds the datamodule
    assert (tmp_path / "features.npz").is_file()


@contextlib.contextmanager
def sigterm_recorded():
    """A recorder in place of SIGTERM's handler (the default one would end this test process) for the block;
    yields the signals it received, and checks that the block put it back as it found it."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    recorder = signal.getsignal(signal.SIGTERM)
    try:
        yield received
        assert signal.getsignal(signal.SIGTERM) is recorder
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_cli_stopped_by_sigterm_exits_143_naming_the_checkpoint_to_resume_from(tmp_path: Path, image_folder: Path,
                                                                              capsys) -> None:
    common = ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=2"]
    # the SIGTERM lands in the second epoch, under Lightning's handler, which fit installs beside the one it
    # finds and takes away after
    with sigterm_recorded() as received, pytest.raises(SystemExit) as stopped:
        main(["fit", *common, "--trainer.callbacks+=kill_switch.KillAt", "--trainer.callbacks.epoch=1",
              "--trainer.callbacks.batch=1", "--trainer.callbacks.signal_name=SIGTERM"])
    assert received == [signal.SIGTERM]
    # Lightning's own exit has status 0, and a scheduler would have taken the run for a finished one
    assert stopped.value.code == 143
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: stopped by SIGTERM before the run finished; resume it with the same command and --ckpt_path {last}")
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 0  # epoch 0's, at its end
    resumed = build_cli(["fit", *common, f"--ckpt_path={last}"])
    assert resumed.trainer.current_epoch == 2


def test_cli_predict_stopped_by_sigterm_exits_143_after_the_current_batch(tmp_path: Path, image_folder: Path,
                                                                          capsys) -> None:
    common = ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}"]
    main(["fit", *common, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1"])
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    with sigterm_recorded() as received, pytest.raises(SystemExit) as stopped:
        # 9 test images in batches of 4: the signal lands in the first of 3 batches
        main(["predict", *common, "--data.init_args.eval_batch_size=4", f"--ckpt_path={last}",
              "--trainer.callbacks+=kill_switch.KillAt", "--trainer.callbacks.epoch=-1",
              "--trainer.callbacks.batch=0", "--trainer.callbacks.signal_name=SIGTERM"])
    assert received == [signal.SIGTERM]
    # without the stop, Lightning's prediction loop ran on to its end and the program exited 0 (no SystemExit)
    assert stopped.value.code == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: stopped by SIGTERM before the run finished; run the same command again")


def test_cli_stopped_by_sigterm_before_fit_exits_143_in_one_line(tmp_path: Path, image_folder: Path, capsys,
                                                                 monkeypatch) -> None:
    import ssgan.cli

    def stopped_early() -> None:  # once the data are read, before fit installs Lightning's handler
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises in here

    monkeypatch.setattr(ssgan.cli, "keep_freed_memory", stopped_early)
    # the recorder stands in for the default handler, which killed the process there
    with sigterm_recorded() as received, pytest.raises(SystemExit) as stopped:
        main(["fit", "--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1"])
    assert received == [signal.SIGTERM]
    assert stopped.value.code == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: stopped by SIGTERM before the run finished; run the same command again")
    assert not list(tmp_path.rglob("*.ckpt"))


def test_cli_writes_sample_grids_in_its_log_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no default_root_dir: the trainer logs under ./lightning_logs/version_0
    # digits' 100 validation images are one batch (eval_batch_size 1000). (--trainer.limit_val_batches=1
    # would not say so: jsonargparse reads 1 as the fraction 1.0, all batches.)
    main(["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), "--trainer.max_epochs=1",
          "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false",
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


def _folder_args(root: Path, tmp_path: Path) -> list[str]:
    return ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={root}",
            f"--data.init_args.split_cache_dir={tmp_path / 'splits'}",
            f"--data.init_args.image_cache_dir={tmp_path / 'images'}", "--trainer.enable_progress_bar=false"]


def _one_line_error(capsys, args: list[str]) -> str:
    """Runs ``main(args)``, which must exit with status 2 and a last stderr line ``error: ...``."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in "\n".join(lines)
    return lines[-1]


@pytest.mark.parametrize("given, message", [
    ([], "error: --data (ssgan.data.FolderDataModule) needs --data.init_args.root=..."),
    (["--data.init_args.root=x", "--data.init_args.roo=x"],
     "error: --data (ssgan.data.FolderDataModule): Option 'roo' is not accepted (did you mean --data.init_args.root?)"),
    (["--data.init_args.root=x", "--data.init_args.zzz=x"],  # nothing close: nothing guessed
     "error: --data (ssgan.data.FolderDataModule): Option 'zzz' is not accepted"),
    (["--data.init_args.root=x", "--trainer.max_epochs=abc"],
     "error: --trainer.max_epochs=abc: expected int or NoneType"),
    (["--data.init_args.root=x", "--trainer.max_epochs=n"],  # a value inside a type's name hid that type
     "error: --trainer.max_epochs=n: expected int or NoneType"),
    (["--data.init_args.root=x", "--data.init_args.image_size=abc"],  # a Union argument inside a class
     "error: --data.init_args.image_size=abc: expected int or Sequence"),
    (["--data.init_args.root=x", "--trainer.logger.init_args.nope=1"],
     "error: --trainer.logger: its option 'nope' is not accepted here"),
    (["--data.init_args.root=x", "--model.init_args.latent_dim=abc"],  # jsonargparse's words were kept
     "error: --model.init_args.latent_dim=abc: expected int"),
    (["--data.init_args.root=x", "--model.init_args.generator_loss=wgan"],
     "error: --model.init_args.generator_loss=wgan: expected one of ['feature_matching', 'non_saturating']"),
    (["--data.init_args.root=x", "--bogus"], "error: unrecognized arguments: --bogus"),
    # the optimizer factories: jsonargparse's report ended in their whole value, or blamed the wrong option
    (["--data.init_args.root=x", "--model.init_args.optimizer_d.init_args.lr=abc"],
     "error: --model.init_args.optimizer_d.init_args.lr=abc: expected float"),
    (["--data.init_args.root=x", "--model.init_args.optimizer_d.init_args.betas=[0.5]"],
     "error: --model.init_args.optimizer_d.init_args.betas=[0.5]: expected tuple with 2 elements"),
    (["--data.init_args.root=x", "--model.init_args.optimizer_d.class_path=torch.optim.Adamm"],
     "error: --model.init_args.optimizer_d.class_path=torch.optim.Adamm: torch.optim has no Adamm (did you mean "
     "torch.optim.Adam?)"),
    (["--data.init_args.root=x", "--model.init_args.optimizer_g.init_args.lrr=0.1"],
     "error: --model.init_args.optimizer_g (torch.optim.Adam): Option 'lrr' is not accepted (did you mean "
     "--model.init_args.optimizer_g.init_args.lr?)"),
    # a class name that names no class: jsonargparse's report kept only "expected NoneType"
    (["--data.init_args.root=x", "--model=SSGANN"], "error: --model=SSGANN names no ClassifierModule class (did you mean SSGAN?)"),
    (["--data.init_args.root=x", "--trainer.callbacks+=EarlyStoping"],
     "error: --trainer.callbacks=EarlyStoping names no Callback class (did you mean EarlyStopping?)"),
    (["--data.init_args.root=x", "--trainer.logger=CSVLoger"],
     "error: --trainer.logger=CSVLoger names no Logger class (did you mean CSVLogger?)"),
    # a list of a Union of classes (typing.Union is no class to choose a subclass of: once a traceback)
    (["--data.init_args.root=x", "--trainer.plugins=MixedPrecisionn"],
     "error: --trainer.plugins=MixedPrecisionn names no Precision or ClusterEnvironment or CheckpointIO or LayerSync "
     "class (did you mean MixedPrecision?)"),
    # a prefix of an option's name is a typo, not that option (argparse took it for max_epochs)
    (["--data.init_args.root=x", "--trainer.max_epoch=2"],
     "error: unrecognized arguments: --trainer.max_epoch=2 (did you mean --trainer.max_epochs?)"),
])
def test_cli_argument_errors_are_one_line_naming_the_argument(given: list[str], message: str, tmp_path: Path,
                                                              monkeypatch, capsys) -> None:
    # jsonargparse itself prints the usage, a tip and a nested report of each Union member
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["fit", "--config", str(CLI_DIR / "folder.yaml"), *given])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith(message + "; see ") and err.endswith(" --help\n")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_interpolation_that_cannot_be_resolved_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    # the README's ${oc.env:SSGAN_DATA_DIR,data} without its default, or a ${key} the config lacks: a traceback
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSGAN_NOT_SET", raising=False)
    (tmp_path / "env.yaml").write_text("data:\n  init_args:\n    split_cache_dir: ${oc.env:SSGAN_NOT_SET}\n")
    (tmp_path / "key.yaml").write_text("trainer:\n  max_epochs: ${epochs}\n")
    digits = ["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), "--trainer.fast_dev_run=true"]
    assert _one_line_error(capsys, [*digits, "--config", "env.yaml"]) == (
        "error: data.init_args.split_cache_dir: environment variable SSGAN_NOT_SET is not set; set it, or give a "
        "default: ${oc.env:SSGAN_NOT_SET,<default>}")
    assert _one_line_error(capsys, [*digits, "--config", "key.yaml"]) == (
        "error: trainer.max_epochs: cannot resolve its interpolation (Interpolation key 'epochs' not found); give the "
        "value itself, or a key that the config has")
    assert _one_line_error(capsys, [*digits, "--data.init_args.split_cache_dir=${oc.env:SSGAN_NOT_SET}"]).endswith(
        "environment variable SSGAN_NOT_SET is not set; set it, or give a default: ${oc.env:SSGAN_NOT_SET,<default>}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["env.yaml", "key.yaml"]  # no log folder left


def test_cli_help_still_prints_in_full(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and "--data.help" in out and "--trainer.max_epochs" in out


def test_cli_datamodule_user_errors_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    empty_class = write_image_folder(tmp_path / "bad_empty", test_per_class=0)
    (empty_class / "labeled" / "cat").mkdir()
    # jsonargparse wraps the datamodule's UserError in "Does not validate against any of the Union subtypes"
    assert _one_line_error(capsys, ["fit", *_folder_args(tmp_path / "nope", tmp_path)]) == (
        f"error: data.root={tmp_path / 'nope'} does not exist; point it at a folder holding labeled/<class>/ images")
    assert "labeled/cat holds no images" in _one_line_error(capsys, ["fit", *_folder_args(empty_class, tmp_path)])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad_empty"]  # nothing left behind


def test_cli_missing_checkpoint_is_one_line_and_leaves_no_log_folder(tmp_path: Path, image_folder: Path,
                                                                      monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for subcommand in ("fit", "test"):
        line = _one_line_error(capsys, [subcommand, *_folder_args(image_folder, tmp_path), "--ckpt_path=nope.ckpt"])
        assert line.startswith("error: --ckpt_path=nope.ckpt does not exist") and "last.ckpt" in line
    assert list(tmp_path.iterdir()) == []  # checked before the data is read or a lightning_logs/version_N is made


def test_cli_batch_limits_that_keep_no_batch_are_one_line_before_any_log_folder(
        tmp_path: Path, folder_checkpoint: Path, image_folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(folder_checkpoint, tmp_path / "run.ckpt")
    # it once ran to Lightning's traceback and left a lightning_logs/version_N behind
    # fit's ran an epoch of training first
    for subcommand, key in (("test", "limit_test_batches"), ("validate", "limit_val_batches"), ("fit", "limit_val_batches")):
        checkpoint = ["--ckpt_path=run.ckpt"] if subcommand != "fit" else []
        line = _one_line_error(capsys, [subcommand, *_folder_args(image_folder, tmp_path), *checkpoint,
                                        "--data.init_args.num_val=3", f"--trainer.{key}=0.5"])
        assert line.startswith(f"error: --trainer.{key}=0.5 keeps 0.5 of this data's 1 ") and line.endswith(
            f"e.g. --trainer.{key}=1"), line
    assert not (tmp_path / "lightning_logs").exists()
    # under fast_dev_run Lightning runs its own batches, whatever the limits: not refused
    main(["fit", *_folder_args(image_folder, tmp_path), "--trainer.fast_dev_run=true", "--trainer.limit_val_batches=0.5",
          "--data.init_args.num_val=3"])


def test_cli_tests_a_checkpoint_that_ssgan_train_wrote(tmp_path: Path, folder_checkpoint: Path, image_folder: Path,
                                                        monkeypatch) -> None:
    # ssgan-train's checkpoints lack LightningCLI's _class_path; their ssgan_module entry names the
    # class, here another one than folder.yaml's SSGAN: a supervised baseline
    monkeypatch.chdir(tmp_path)
    gan = load_module(folder_checkpoint)
    baseline = SupervisedBaseline(image_shape=gan.image_shape, num_classes=gan.num_classes, class_names=gan.class_names,
                                  data_init=False)
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    checkpoint.update(hyper_parameters=dict(baseline.hparams), state_dict=baseline.state_dict(),
                      ssgan_module="ssgan.module.SupervisedBaseline")
    torch.save(checkpoint, tmp_path / "baseline.ckpt")
    cli = build_cli(["test", *_folder_args(image_folder, tmp_path), "--ckpt_path=baseline.ckpt"])
    assert type(cli.model) is SupervisedBaseline and cli.trainer.callback_metrics["test/acc"] >= 0
    weights = "classifier.direction"
    assert torch.equal(cli.model.classifier.state_dict()[weights], baseline.classifier.state_dict()[weights])


def test_cli_saved_hyperparameters_that_do_not_fit_are_one_line(tmp_path: Path, folder_checkpoint: Path,
                                                                image_folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"]["hidden_size"] = 7  # an argument SSGAN does not take (another version's)
    torch.save(checkpoint, tmp_path / "other.ckpt")
    line = _one_line_error(capsys, ["test", *_folder_args(image_folder, tmp_path), "--ckpt_path=other.ckpt"])
    assert line.startswith("error: --ckpt_path=other.ckpt: its saved hyperparameters do not fit the model (")
    assert "hidden_size" in line and line.endswith("give a checkpoint that this version of ssgan wrote")
    checkpoint["hyper_parameters"] = {"_class_path": "torch.nn.Linear", "in_features": 2, "out_features": 3}
    torch.save(checkpoint, tmp_path / "foreign.ckpt")
    line = _one_line_error(capsys, ["test", *_folder_args(image_folder, tmp_path), "--ckpt_path=foreign.ckpt"])
    assert line == ("error: --ckpt_path=foreign.ckpt: its model class torch.nn.Linear is not an ssgan model in this "
                    "version of ssgan; give a checkpoint that ssgan-train or ssgan-cli wrote")


def test_cli_checkpoint_of_other_images_is_one_line_and_leaves_no_log_folder(tmp_path: Path, folder_checkpoint: Path,
                                                                              monkeypatch, capsys) -> None:
    # the tools' checkpoint: 3 classes of 28x28 grey images; digits are 10 classes of 8x8
    monkeypatch.chdir(tmp_path)
    for subcommand in ("fit", "validate", "test", "predict"):
        line = _one_line_error(capsys, [subcommand, "--config", str(CLI_DIR / "digits_ssgan.yaml"),
                                        f"--data.init_args.split_cache_dir={tmp_path / 'splits'}",
                                        f"--ckpt_path={folder_checkpoint}"])
        assert line == (f"error: --ckpt_path={folder_checkpoint} was trained on 3 classes of (1, 28, 28) images, but "
                        "these data are 10 classes of (1, 8, 8); give a --config and --data of the images it was trained on")
    assert sorted(path.name for path in tmp_path.iterdir()) in ([], ["splits"])  # no lightning_logs/version_N


def test_cli_test_predict_validate_without_their_images_are_errors(tmp_path: Path, folder_checkpoint: Path,
                                                                   monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    no_test = write_image_folder(tmp_path / "no_test", test_per_class=0)
    trained = f"--ckpt_path={folder_checkpoint}"  # of images like these (its split holds validation images)
    for subcommand in ("test", "predict"):
        line = _one_line_error(capsys, [subcommand, *_folder_args(no_test, tmp_path), trained])
        assert line == (f"error: no test images (a folder without test/, or none of its images could be read): "
                        f"`ssgan-cli {subcommand}` has nothing to "
                        f"{subcommand}; add {no_test / 'test'}/<class name>/ images")
    assert "--data.init_args.num_val=N" in _one_line_error(capsys, ["validate", *_folder_args(no_test, tmp_path), trained])
    # validation images asked for now, but the checkpoint's split (which validate restores) has none
    checkpoint = tmp_path / "no_val.ckpt"
    torch.save({"pytorch-lightning_version": "2.6.0", "state_dict": {},  # a training checkpoint, as runs write them
                "FolderDataModule": {"split": {"labeled": torch.arange(3), "val": torch.arange(0),
                                               "unlabeled": torch.arange(3, 9)}}}, checkpoint)
    line = _one_line_error(capsys, ["validate", *_folder_args(no_test, tmp_path), "--data.init_args.num_val=3",
                                    f"--ckpt_path={checkpoint}"])
    assert line.startswith("error: the checkpoint's split holds no validation images (its run had data.num_val=0)")
    assert not (tmp_path / "lightning_logs").exists()


def test_cli_other_errors_keep_their_traceback(tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    def bug(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr(FolderDataModule, "_scan", bug)
    with pytest.raises(ValueError) as raised:  # jsonargparse's wrapper, as before: not a one-line exit
        main(["fit", *_folder_args(image_folder, tmp_path)])
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_find_user_error_follows_wrappers_but_not_errors_raised_while_handling() -> None:
    user_error = UserError("bad input")
    try:
        try:
            raise user_error
        except UserError as inner:
            raise ValueError(f"Does not validate: {inner}") from inner
    except ValueError as wrapped:
        assert find_user_error(wrapped) is user_error
    try:
        try:
            raise user_error
        except UserError as inner:
            raise TypeError(f"Parser key: {inner}")  # a re-wrap without `from`
    except TypeError as rewrapped:
        assert find_user_error(rewrapped) is user_error
    try:
        try:
            raise user_error
        except UserError:
            raise KeyError("a bug in an error handler")
    except KeyError as bug:
        assert find_user_error(bug) is None


@pytest.mark.parametrize("given, message", [
    (["--trainer.max_epochs=0"], "error: --trainer.max_epochs=0 is not a number of epochs; use 1 or more, e.g. "
                                 "--trainer.max_epochs=20 (the learning-rate schedule needs a fixed end)"),
    (["--trainer.max_epochs=-1"], "error: --trainer.max_epochs=-1 is not a number of epochs; use 1 or more, e.g. "
                                  "--trainer.max_epochs=20 (the learning-rate schedule needs a fixed end)"),
    (["--trainer.check_val_every_n_epoch=0"], "error: --trainer.check_val_every_n_epoch=0 is not a number of epochs; "
                                              "use 1 or more, e.g. --trainer.check_val_every_n_epoch=1"),
    (["--trainer.precision=bf16-true"], "error: trainer.precision=bf16-true is not supported (the weights must stay "
                                        "fp32); use trainer.precision=bf16-mixed (or 16-mixed on a GPU) for "
                                        "lower-precision compute, or 32"),
    (["--trainer.gradient_clip_val=1"], "error: --trainer.gradient_clip_val=1 is Lightning's automatic clipping, which "
                                        "these modules' manual optimization does not take; clip with "
                                        "--model.init_args.gradient_clip_val=1 instead"),
    # ssgan-train's list (with gpu), not Lightning's (without it)
    (["--trainer.accelerator=tpux"], "error: unknown accelerator 'tpux'; use --trainer.accelerator= one of auto, cpu, gpu, "
                                     "cuda, mps, tpu"),
    # Lightning's MisconfigurationException, which is no ValueError
    (["--trainer.devices=0"], "error: Lightning refuses the trainer settings: `Trainer(devices='0')` value is "
                              "not a valid input ..."),
    # a conflict of settings, not of the machine (it said "do not work on this machine")
    (["--trainer.enable_checkpointing=false"], "error: Lightning refuses the trainer settings: Trainer was configured with "
                                               "`enable_checkpointing=False` but found `ModelCheckpoint` in callbacks list. ..."),
    pytest.param(["--trainer.accelerator=gpu"], "error: the trainer settings do not work on this machine: No supported "
                 "gpu backend found! (use --trainer.accelerator=cpu, or --trainer.accelerator=auto to take a GPU where "
                 "there is one)",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_cli_refuses_the_trainer_settings_that_ssgan_train_refuses(given: list[str], message: str, tmp_path: Path,
                                                                   image_folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["fit", *_folder_args(image_folder, tmp_path), *given])
    head, _, _ = message.partition("...")
    assert line == message if not message.endswith("...") else line.startswith(head)
    assert not (tmp_path / "lightning_logs").exists()  # refused before fit makes its log folder


class _RunsWhenUnpickled:
    """Pickles as a call that writes a file: unpickling it runs code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_cli_refuses_a_checkpoint_path_that_is_no_checkpoint_or_of_another_split(tmp_path: Path, image_folder: Path,
                                                                                  folder_checkpoint: Path,
                                                                                  monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "run").mkdir()
    folder_args = _folder_args(image_folder, tmp_path)
    assert _one_line_error(capsys, ["fit", *folder_args, "--ckpt_path=run"]) == (
        "error: --ckpt_path=run is a folder; give the path of a .ckpt file that a run wrote "
        "(e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"")
    # a folder holding a checkpoint: its file, not the newest run's (the log folder's example)
    assert _one_line_error(capsys, ["test", *folder_args, "--ckpt_path=run/checkpoints"]) == (
        "error: --ckpt_path=run/checkpoints is a folder; give the path of a .ckpt file that a run wrote "
        "(e.g. run/checkpoints/last.ckpt)")
    assert _one_line_error(capsys, ["test", *folder_args, "--ckpt_path=notes.txt"]) == (
        "error: --ckpt_path=notes.txt is not a checkpoint (not a zip archive, as torch saves them); give a .ckpt "
        "file that a run wrote (e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
    # zip archives, but no checkpoints: torch's loader failed inside Lightning, after the log folder was made
    from test_bad_input import write_npz, write_torchscript

    for path, problem in ((write_torchscript(tmp_path / "last.pt"), "a TorchScript model (as ssgan export writes it), "
                                                                     "not a training checkpoint"),
                          (write_npz(tmp_path / "features.npz"), "a zip archive that torch did not save (e.g. an .npz), "
                                                                  "not a checkpoint")):
        for subcommand in ("fit", "test"):
            assert _one_line_error(capsys, [subcommand, *folder_args, f"--ckpt_path={path.name}"]) == (
                f"error: --ckpt_path={path.name} is {problem}; give a .ckpt file that a run wrote "
                "(e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
        path.unlink()
    # a torch file, but no Lightning checkpoint: a KeyError traceback from Lightning's resume, and a log folder left
    torch.save({"weights": torch.zeros(3)}, tmp_path / "weights.ckpt")
    for subcommand in ("fit", "test"):
        assert _one_line_error(capsys, [subcommand, *folder_args, "--ckpt_path=weights.ckpt"]) == (
            "error: --ckpt_path=weights.ckpt is a torch file, but no checkpoint of a training run (no Lightning state in "
            "it); give a .ckpt file that a run wrote (e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
    (tmp_path / "weights.ckpt").unlink()
    # a checkpoint whose pickle is damaged: once a 51-line traceback from Lightning's load, and a log folder left
    import zipfile

    damaged = tmp_path / "damaged.ckpt"
    with zipfile.ZipFile(folder_checkpoint) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            target.writestr(item, b"garbage" if item.filename.endswith("data.pkl") else source.read(item))
    # fit may start afresh; test, validate and predict need a checkpoint
    for subcommand, otherwise in (("fit", "start it again without --ckpt_path"),
                                  ("test", "give a whole .ckpt file that a run wrote")):
        line = _one_line_error(capsys, [subcommand, *folder_args, f"--ckpt_path={damaged.name}"])
        assert line.startswith(f"error: --ckpt_path={damaged.name} is damaged or cut short (") and line.endswith(
            f"); the run has no other readable checkpoint; {otherwise}")
    damaged.unlink()
    # a last.ckpt cut short (a full disk, a killed copy) beside a whole checkpoint of its run: that one is named,
    # with its epoch (quoted for the shell); another run's checkpoint copied beside it is not
    checkpoints = tmp_path / "version 0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    shutil.copy(folder_checkpoint, checkpoints / "copied.ckpt")
    (checkpoints / "last.ckpt").write_bytes(folder_checkpoint.read_bytes()[:5000])
    given = "--ckpt_path=version 0/checkpoints/last.ckpt"
    assert _one_line_error(capsys, ["fit", *folder_args, given]) == (
        "error: --ckpt_path=version 0/checkpoints/last.ckpt is damaged or cut short (no end to its zip archive); the "
        "run has no other readable checkpoint; start it again without --ckpt_path")
    checkpoint = torch.load(folder_checkpoint, map_location="cpu", weights_only=False)
    for state in checkpoint["callbacks"].values():
        if "dirpath" in state:
            state["dirpath"] = str(checkpoints)
    torch.save(checkpoint, checkpoints / "best.ckpt")
    best = shlex.quote(str(checkpoints.resolve() / "best.ckpt"))
    assert _one_line_error(capsys, ["fit", *folder_args, given]) == (
        "error: --ckpt_path=version 0/checkpoints/last.ckpt is damaged or cut short (no end to its zip archive); resume "
        f"from the run's other checkpoint, saved in epoch {checkpoint['epoch']}: --ckpt_path={best}")
    assert _one_line_error(capsys, ["test", *folder_args, given]).endswith(
        f"(no end to its zip archive); use the run's other checkpoint, saved in epoch {checkpoint['epoch']}: "
        f"--ckpt_path={best}")
    shutil.rmtree(tmp_path / "version 0")
    # one that needs the unsafe loader is not unpickled here to tell it from a damaged one: its code never runs
    from ssgan.cli import _damaged_checkpoint

    ran = tmp_path / "ran"
    torch.save({"state_dict": {}, "payload": _RunsWhenUnpickled(str(ran))}, tmp_path / "foreign.ckpt")
    assert not _damaged_checkpoint(tmp_path / "foreign.ckpt") and not ran.exists()
    # nor is a whole one of a later pickle protocol, which torch's reader of the globals cannot read
    torch.save({"state_dict": {}, "payload": _RunsWhenUnpickled(str(ran))}, tmp_path / "foreign.ckpt", pickle_protocol=4)
    assert not _damaged_checkpoint(tmp_path / "foreign.ckpt") and not ran.exists()
    (tmp_path / "foreign.ckpt").unlink()
    # the checkpoint's split would be restored over the one asked for, and reported as it
    line = _one_line_error(capsys, ["fit", *folder_args, "--data.init_args.num_val=3", "--data.init_args.split_seed=5",
                                    "--trainer.max_epochs=4", f"--ckpt_path={folder_checkpoint}"])
    assert line == (f"error: --ckpt_path={folder_checkpoint} was trained on another split (--data.init_args.split_seed: "
                    "0 -> 5); resume it with its own (--data.init_args.split_seed=0), or start a new run from scratch")
    # or with another optimizer class, whose state Lightning would load into the wrong optimizer
    line = _one_line_error(capsys, ["fit", *folder_args, "--model.init_args.optimizer_d=torch.optim.SGD",
                                    "--trainer.max_epochs=4", f"--ckpt_path={folder_checkpoint}"])
    assert line == (f"error: --ckpt_path={folder_checkpoint} was trained with torch.optim.Adam as model.optimizer_d, and "
                    "this run builds torch.optim.SGD, whose state it cannot take; resume with "
                    "--model.init_args.optimizer_d=torch.optim.Adam (and its settings), or start a new run from scratch")
    assert sorted(path.name for path in tmp_path.iterdir()) in (["notes.txt", "run"], ["notes.txt", "run", "splits"])


def test_cli_seed_outside_numpys_range_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for seed in ("-1", "4294967296"):  # once an 18-line traceback from seed_everything
        assert _one_line_error(capsys, ["fit", "--config", "digits_ssgan", f"--seed_everything={seed}"]) == (
            f"error: --seed_everything={seed} is not a seed; use a whole number from 0 to 4294967295, true (a random "
            "one) or false (none)")
    assert not any(tmp_path.iterdir())


def test_cli_from_the_command_line_gives_lightning_no_cause_to_warn(monkeypatch, capsys) -> None:
    import warnings

    monkeypatch.setattr("sys.argv", ["ssgan-cli", "fit", "--config", "digits_ssgan", "--print_config"])
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as exited:
        warnings.simplefilter("always")
        main()
    assert exited.value.code == 0 and "class_path: ssgan.module.SSGAN" in capsys.readouterr().out
    assert not [w for w in caught if "args parameter" in str(w.message)]


def test_cli_divergence_is_one_line_naming_the_last_good_checkpoint(tmp_path: Path, image_folder: Path, monkeypatch,
                                                                   capsys) -> None:
    # as ssgan-train's line, in the CLI's spelling; not the DivergenceError's traceback (exit 1)
    monkeypatch.chdir(tmp_path)
    common = ["fit", *_folder_args(image_folder, tmp_path), "--data.init_args.batch_size=10",
              "--trainer.limit_train_batches=2", "--trainer.max_epochs=2"]
    line = _one_line_error(capsys, [*common, "--model.init_args.optimizer_d.init_args.lr=1e30",
                                    "--model.init_args.optimizer_g.init_args.lr=1e30"])
    assert line.startswith("error: training diverged: ") and line.endswith(
        "; no checkpoint was saved before it (try a lower learning rate or --model.init_args.gradient_clip_val)")
    # a run that diverges in its second epoch: epoch 0's last.ckpt is the last good one
    step = SSGAN.optimizer_step_block

    def diverge_in_epoch_1(self, *args, **kwargs):
        if self.current_epoch == 1:
            raise DivergenceError("discriminator_loss became nan at epoch 1, batch 0")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SSGAN, "optimizer_step_block", diverge_in_epoch_1)
    last = tmp_path / "lightning_logs" / "version_1" / "checkpoints" / "last.ckpt"
    assert _one_line_error(capsys, common) == (
        f"error: training diverged: discriminator_loss became nan at epoch 1, batch 0; the last good checkpoint is "
        f"{last} (try a lower learning rate or --model.init_args.gradient_clip_val, resuming from it in a new folder)")
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 0


@pytest.mark.parametrize("subcommand, given, message", [
    ("fit", "last", "error: --ckpt_path=last finds no checkpoint of an earlier run (each ssgan-cli command logs to a new "
                    "lightning_logs/version_N); give the checkpoint's path, e.g. "
                    "--ckpt_path=lightning_logs/version_3/checkpoints/last.ckpt"),
    ("fit", "best", "error: --ckpt_path=best finds no checkpoint of an earlier run (each ssgan-cli command logs to a new "
                    "lightning_logs/version_N); give the checkpoint's path, e.g. "
                    "--ckpt_path=lightning_logs/version_3/checkpoints/last.ckpt"),
    ("fit", "hpc", "error: --ckpt_path=hpc finds no hpc_ckpt_*.ckpt in . (Lightning's SLURM requeue saves them there); "
                   "give the checkpoint's path, e.g. --ckpt_path=lightning_logs/version_3/checkpoints/last.ckpt"),
    ("test", "last", "error: --ckpt_path=last finds no checkpoint of an earlier run (each ssgan-cli command logs to a new "
                     "lightning_logs/version_N); give the checkpoint's path, e.g. "
                     "--ckpt_path=lightning_logs/version_3/checkpoints/last.ckpt"),
    ("fit", "", "error: --ckpt_path is empty; give the path of a .ckpt file that a run wrote "
                "(e.g. lightning_logs/version_3/checkpoints/last.ckpt)"),
])
def test_cli_refuses_lightnings_checkpoint_names(subcommand: str, given: str, message: str, tmp_path: Path,
                                                 image_folder: Path, monkeypatch, capsys) -> None:
    # Lightning's "last" would look in this command's new version_N, find nothing and train from scratch;
    # the line names the newest last.ckpt there is instead
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "lightning_logs" / "version_3" / "checkpoints" / "last.ckpt"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"")
    assert _one_line_error(capsys, [subcommand, *_folder_args(image_folder, tmp_path), "--trainer.max_epochs=1",
                                    f"--ckpt_path={given}"]) == message
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lightning_logs"]
    assert [path.name for path in (tmp_path / "lightning_logs").iterdir()] == ["version_3"]


@pytest.mark.parametrize("subcommand, does", [("validate", "validate"), ("test", "test"), ("predict", "predict with")])
def test_cli_validate_test_predict_need_a_checkpoint(subcommand: str, does: str, tmp_path: Path, image_folder: Path,
                                                     monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, [subcommand, *_folder_args(image_folder, tmp_path), "--data.init_args.num_val=3"])
    assert line == (f"error: `ssgan-cli {subcommand}` needs --ckpt_path <a checkpoint>, e.g. "
                    f"lightning_logs/version_0/checkpoints/last.ckpt (without one it would {does} untrained weights)")
    assert list(tmp_path.iterdir()) == []  # refused before anything is logged or written


def test_cli_warns_of_the_model_settings_that_the_checkpoint_replaces(tmp_path: Path, folder_checkpoint: Path,
                                                                      image_folder: Path, monkeypatch, caplog) -> None:
    # the checkpoint's hyperparameters win (a checkpoint of ssgan-train loads with any config), but not silently
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ssgan"):
        cli = build_cli(["test", *_folder_args(image_folder, tmp_path), f"--ckpt_path={folder_checkpoint}",
                         "--model.init_args.unlabeled_weight=5", "--model.init_args.net_kwargs={hidden_noise: 0.1}"])
    assert cli.model.hparams.unlabeled_weight == 1.0 and cli.model.hparams.net_kwargs == {}
    # folder.yaml's other settings are the checkpoint's (ssgan-train data=folder): not listed
    assert [r.getMessage() for r in caplog.records if r.name == "ssgan.cli" and r.levelno == logging.WARNING] == [
        f"--ckpt_path={folder_checkpoint}: the checkpoint's model settings are used, not the config's: "
        "unlabeled_weight: 5.0 (config) -> 1.0 (checkpoint), net_kwargs: {'hidden_noise': 0.1} (config) -> {} (checkpoint)"]


def test_cli_checkpoints_are_written_atomically(tmp_path: Path) -> None:
    # as ssgan-train's (AtomicCheckpointIO): beside the plugins the user gives, unless one of them writes checkpoints
    from pytorch_lightning.plugins import TorchCheckpointIO
    from pytorch_lightning.plugins.environments import LightningEnvironment

    common = ["--config", str(CLI_DIR / "digits_ssgan.yaml"), f"--trainer.default_root_dir={tmp_path}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}"]
    assert type(build_cli(common, run=False).trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    with_environment = build_cli([*common, "--trainer.plugins=LightningEnvironment"], run=False).trainer
    assert type(with_environment.strategy.checkpoint_io) is AtomicCheckpointIO
    assert type(with_environment._accelerator_connector.cluster_environment) is LightningEnvironment
    own = build_cli([*common, "--trainer.plugins=pytorch_lightning.plugins.TorchCheckpointIO"], run=False).trainer
    assert type(own.strategy.checkpoint_io) is TorchCheckpointIO


def test_cli_keeps_no_best_checkpoint_without_validation_images(tmp_path: Path) -> None:
    # as ssgan-train: a val/acc checkpoint without validation data would warn every epoch and pick nothing
    common = ["--config", str(CLI_DIR / "digits_ssgan.yaml"), f"--trainer.default_root_dir={tmp_path}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}"]

    def monitors(*args: str) -> list:
        return [c.monitor for c in build_cli([*common, *args], run=False).trainer.checkpoint_callbacks]

    assert "val/acc" in monitors()
    assert "val/acc" not in monitors("--data.init_args.num_val=0") and None in monitors("--data.init_args.num_val=0")


def test_cli_logger_without_its_package_is_one_line(tmp_path: Path, image_folder: Path, monkeypatch, capsys) -> None:
    # Lightning's TensorBoardLogger refuses to start without tensorboard (here: as if it were not installed)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lightning_fabric.loggers.tensorboard._TENSORBOARD_AVAILABLE", False)
    monkeypatch.setattr("lightning_fabric.loggers.tensorboard._TENSORBOARDX_AVAILABLE", False)
    line = _one_line_error(capsys, ["fit", *_folder_args(image_folder, tmp_path), "--trainer.logger=TensorBoardLogger",
                                    "--trainer.logger.init_args.save_dir=logs"])
    assert line.startswith("error: pytorch_lightning.loggers.") and line.endswith(
        "TensorBoardLogger needs a package that is not installed (Neither tensorboard nor tensorboardX is available); "
        "pip install 'ssgan[tensorboard]', or use --trainer.logger=CSVLogger")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_cli_logger_of_another_package_names_its_install(tmp_path: Path, image_folder: Path, monkeypatch,
                                                         capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["fit", *_folder_args(image_folder, tmp_path), "--trainer.logger=WandbLogger"])
    assert line.startswith("error: pytorch_lightning.loggers.") and "WandbLogger needs a package that is not installed" in line
    assert "pip install -U 'wandb" in line and line.endswith(", or use --trainer.logger=CSVLogger")
    assert list(tmp_path.iterdir()) == []


def test_cli_log_folder_that_cannot_be_made_is_one_line(tmp_path: Path, image_folder: Path, monkeypatch,
                                                        capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a file")
    line = _one_line_error(capsys, ["fit", *_folder_args(image_folder, tmp_path),
                                    f"--trainer.default_root_dir={tmp_path / 'notes.txt' / 'runs'}"])
    assert line == (f"error: cannot write --trainer.default_root_dir={tmp_path / 'notes.txt' / 'runs'}: "
                    f"{tmp_path / 'notes.txt'} is a file, not a folder; give --trainer.default_root_dir=<a folder you "
                    "can write to>")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_stopped_by_ctrl_c_exits_130_naming_the_checkpoint_to_resume_from(tmp_path: Path, image_folder: Path,
                                                                              capsys) -> None:
    common = [*_folder_args(image_folder, tmp_path), "--data.init_args.batch_size=10",
              f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=2"]
    # Ctrl-C in the second epoch, after epoch 0's last.ckpt; Lightning ignores SIGINT during its clean-up, main()
    # during its own, and each puts the handler back
    previous, blocked = signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:  # SIGINT as in a program started from a shell, whatever this worker's state (see conftest's run_cli)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        with pytest.raises(SystemExit) as stopped:
            main(["fit", *common, "--trainer.callbacks+=kill_switch.KillAt", "--trainer.callbacks.epoch=1",
                  "--trainer.callbacks.batch=1", "--trainer.callbacks.signal_name=SIGINT"])
        # as it found it: a program or notebook that called main() can be interrupted again
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    assert stopped.value.code == 130  # Lightning's own exit has status 1, as after a crash, and says nothing
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: stopped by Ctrl-C before the run finished; resume it with the same command and --ckpt_path {last}")


def test_cli_configs_follow_ssgan_cache_dir(tmp_path: Path, monkeypatch, capsys) -> None:
    # as ssgan-train's paths.cache_dir; --print_config writes the value it resolved to, which reads back the same
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSGAN_CACHE_DIR", str(tmp_path / "cache"))
    for config in sorted(p.name for p in CLI_DIR.glob("*.yaml")):
        with pytest.raises(SystemExit):
            main(["fit", "--config", config, "--print_config"])
        printed = capsys.readouterr().out
        assert f"split_cache_dir: {tmp_path / 'cache' / 'splits'}\n" in printed, config
        assert "${" not in printed and ".cache/ssgan" not in printed, config
        (tmp_path / "printed.yaml").write_text(printed)
        with pytest.raises(SystemExit):
            main(["fit", "--config", str(tmp_path / "printed.yaml"), "--print_config"])
        assert capsys.readouterr().out == printed, config
    monkeypatch.delenv("SSGAN_CACHE_DIR")  # unset: ssgan-train's default, under the working folder
    with pytest.raises(SystemExit):
        main(["fit", "--config", "digits_ssgan", "--print_config"])
    assert "split_cache_dir: .cache/ssgan/splits\n" in capsys.readouterr().out


def test_cli_callbacks_monitoring_a_metric_that_is_not_logged_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    digits = ["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), f"--data.init_args.split_cache_dir={tmp_path / 'splits'}",
              "--trainer.enable_progress_bar=false", "--trainer.max_epochs=1", "--trainer.limit_train_batches=1",
              "--trainer.callbacks+=EarlyStopping"]
    # a val/ name: refused before any training or log folder, as in ssgan-train
    assert _one_line_error(capsys, [*digits, "--trainer.callbacks.monitor=val/loss"]) == (
        "error: the EarlyStopping callback's init_args.monitor=val/loss is not a metric this model logs; validation "
        "logs val/acc: set the EarlyStopping callback's init_args.monitor=val/acc")
    assert list(tmp_path.iterdir()) == []
    # a train/ name: Lightning's error after the first epoch, in one line with the names it could be
    line = _one_line_error(capsys, [*digits, "--trainer.callbacks.monitor=train/nope"])
    assert line.startswith("error: Early stopping conditioned on metric train/nope which is not available.")
    assert "train/loss_generator" in line and line.endswith("; set the callback's monitor to one of those, e.g. val/acc")
    # several best checkpoints under one file name: each save overwrote best.ckpt with the latest epoch
    config = tmp_path / "top_2.yaml"
    config.write_text((CLI_DIR / "digits_ssgan.yaml").read_text().replace("save_top_k: 1,", "save_top_k: 2,", 1))
    written = sorted(tmp_path.rglob("*"))
    assert _one_line_error(capsys, [*digits[:-1], "--config", str(config)]) == (
        "error: the ModelCheckpoint callback's init_args.save_top_k=2 would keep 2 checkpoints under the one name "
        "best.ckpt, each overwriting the last, so it would hold the latest epoch, not the best; use the ModelCheckpoint "
        "callback's init_args.save_top_k=1, or a filename with {epoch} in it")
    assert sorted(tmp_path.rglob("*")) == written  # refused before any log folder


def test_cli_whole_batch_limits_are_counts_and_decimal_ones_fractions(tmp_path: Path) -> None:
    # Lightning types them Union[float, int]: jsonargparse read 1 as 1.0, the whole epoch, where ssgan-train trains one batch
    def limits(*args: str) -> list:
        trainer = build_cli(["--config", str(CLI_DIR / "digits_ssgan.yaml"), f"--trainer.default_root_dir={tmp_path}",
                             *args], run=False).trainer
        return [trainer.limit_train_batches, trainer.limit_val_batches, trainer.limit_test_batches]

    counts = limits("--trainer.limit_train_batches=1", "--trainer.limit_val_batches=2", "--trainer.limit_test_batches=1")
    assert counts == [1, 2, 1] and all(type(limit) is int for limit in counts)
    fractions = limits("--trainer.limit_train_batches=1.0", "--trainer.limit_val_batches=0.5", "--trainer.limit_test_batches=1.0")
    assert fractions == [1.0, 0.5, 1.0] and all(type(limit) is float for limit in fractions)
    config = tmp_path / "limits.yaml"
    config.write_text("trainer:\n  limit_train_batches: 1\n  limit_val_batches: 1.0\n")  # a config file, likewise
    from_file = limits("--config", str(config))
    assert [type(limit) for limit in from_file[:2]] == [int, float]
    # above 1 and not whole: Lightning's error came as settings that "do not work on this machine"
    with pytest.raises(UserError, match=r"^--trainer.limit_val_batches=2.5 is neither a fraction of the batches in "
                                        r"\[0, 1\] nor a whole number of batches; give e.g. --trainer.limit_val_batches=0.5 "
                                        r"or --trainer.limit_val_batches=2$"):
        limits("--trainer.limit_val_batches=2.5")
    assert limits("--trainer.limit_train_batches=3.0")[0] == 3  # a whole number, which Lightning takes as 3 batches


def test_cli_tests_and_predicts_after_the_training_images_changed(tmp_path: Path, folder_checkpoint: Path,
                                                                   image_folder: Path, monkeypatch) -> None:
    # the test images do not depend on the split: test and predict were refused (after making a version_N)
    monkeypatch.chdir(tmp_path)
    changed = tmp_path / "changed"
    shutil.copytree(image_folder, changed)
    added = next((changed / "unlabeled").rglob("*.png"))
    shutil.copyfile(added, added.with_name("added_" + added.name))
    tested = {}
    for root in (image_folder, changed):
        cli = build_cli(["test", *_folder_args(root, tmp_path / root.name), f"--ckpt_path={folder_checkpoint}"])
        tested[root.name] = float(cli.trainer.callback_metrics["test/acc"])
    assert tested[changed.name] == tested[image_folder.name]
    cli = build_cli(["predict", *_folder_args(changed, tmp_path / "predict"), f"--ckpt_path={folder_checkpoint}"])
    assert sum(len(batch) for batch in cli.trainer.predict_loop.predictions) == 9  # the 3 x 3 test images


def test_cli_print_config_shows_the_model_a_checkpoint_run_builds(tmp_path: Path, image_folder: Path,
                                                                   folder_checkpoint: Path, monkeypatch, capsys) -> None:
    # the checkpoint (SSGAN's) names the model class, over the config's model=SupervisedBaseline; --print_config
    # printed the config's before the checkpoint's hyperparameters were applied
    import yaml

    monkeypatch.chdir(tmp_path)
    args = ["test", *_folder_args(image_folder, tmp_path), "--model=ssgan.module.SupervisedBaseline",
            f"--ckpt_path={folder_checkpoint}", "--print_config"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "ssgan.module.SSGAN" and printed["ckpt_path"] == str(folder_checkpoint)
    assert not (tmp_path / "lightning_logs").exists()
    # a bad --ckpt_path is its one line, not a printed config
    assert _one_line_error(capsys, ["test", *_folder_args(image_folder, tmp_path), "--ckpt_path=nope.ckpt",
                                    "--print_config"]).startswith("error: --ckpt_path=nope.ckpt does not exist")


def test_cli_without_a_logger_keeps_the_fits_config_when_testing(tmp_path: Path, image_folder: Path) -> None:
    # with --trainer.logger=false every command writes in one folder: the test replaced the fit's config.yaml
    common = ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false", "--trainer.logger=false",
              f"--trainer.default_root_dir={tmp_path}"]
    main(["fit", *common, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1"])
    fit_config = (tmp_path / "config.yaml").read_text()
    assert "max_epochs: 1\n" in fit_config
    main(["test", *common, f"--ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}"])
    assert (tmp_path / "config.yaml").read_text() == fit_config and (tmp_path / "confusion_matrix.png").is_file()


def test_cli_a_class_name_that_is_close_to_none_lists_the_classes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["fit", "--config", str(CLI_DIR / "folder.yaml"), "--data.init_args.root=x",
                                    "--model=Banana"])
    assert line.startswith("error: --model=Banana names no ClassifierModule class; use one of: ")
    listed = line.partition("use one of: ")[2].partition(";")[0].split(", ")
    # ssgan's models, and any other subclass imported so far (a test's own, in this process)
    assert {"SSGAN", "SupervisedBaseline"} <= set(listed) and "ClassifierModule" not in listed


def test_cli_print_config_with_a_checkpoint_and_no_model_prints_the_template(tmp_path: Path, folder_checkpoint: Path,
                                                                           monkeypatch, capsys) -> None:
    # with its required arguments unset, the printed config is jsonargparse's template, as without --ckpt_path
    import yaml

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["fit", f"--ckpt_path={folder_checkpoint}", "--print_config"])
    assert exited.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"] is None and printed["ckpt_path"] == str(folder_checkpoint)
    # a checkpoint named in a config file: the config printed is the one the run builds, too
    (tmp_path / "checkpoint.yaml").write_text(f"ckpt_path: {folder_checkpoint}\n")
    with pytest.raises(SystemExit) as exited:
        main(["test", "--config", str(CLI_DIR / "folder.yaml"), "--config", str(tmp_path / "checkpoint.yaml"),
              "--data.init_args.root=x", "--model=ssgan.module.SupervisedBaseline", "--print_config"])
    assert exited.value.code == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["class_path"] == "ssgan.module.SSGAN"
    assert not any(tmp_path.glob("lightning_logs"))


def test_cli_evaluation_limits_that_keep_no_batch_are_one_line(tmp_path: Path, image_folder: Path, folder_checkpoint: Path,
                                                                monkeypatch, capsys) -> None:
    # a limit of 0 ran nothing and exited 0 (with a new log folder); predict's fraction of one batch was a traceback
    monkeypatch.chdir(tmp_path)
    folder_args = _folder_args(image_folder, tmp_path)
    for subcommand, key, value in (("test", "limit_test_batches", "0"), ("validate", "limit_val_batches", "0.0"),
                                   ("predict", "limit_predict_batches", "0")):
        line = _one_line_error(capsys, [subcommand, *folder_args, f"--ckpt_path={folder_checkpoint}", f"--trainer.{key}={value}"])
        assert line == (f"error: --trainer.{key}={value} keeps no batch, so `ssgan-cli {subcommand}` would do nothing; leave "
                        f"--trainer.{key} out, or give a fraction or a number of batches, e.g. --trainer.{key}=1")
    line = _one_line_error(capsys, ["predict", *folder_args, f"--ckpt_path={folder_checkpoint}",
                                    "--trainer.limit_predict_batches=0.5"])
    assert line == ("error: --trainer.limit_predict_batches=0.5 keeps 0.5 of this data's 1 predict batch, which is none; give "
                    "a fraction of at least 1 or a number of batches, e.g. --trainer.limit_predict_batches=1")
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("given", [["--model.init_args.num_classes=5"], ["--model.class_names", "[a,b]"]])
def test_cli_model_arguments_that_come_from_the_data_are_one_line(given: list[str], tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    # the link put the data's values over them: accepted, and unused without a word
    monkeypatch.chdir(tmp_path)
    name = given[0].partition("=")[0]
    assert _one_line_error(capsys, ["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), *given]) == (
        f"error: {name} comes from the data (its image shape and classes), not from a setting; leave it out, and choose "
        "the data with --data (or --data.init_args.root for your own images)")
    assert list(tmp_path.iterdir()) == []


def test_cli_a_callback_that_does_not_build_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    # it was an 84-line jsonargparse dump ("Does not validate against any of the Union subtypes")
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"),
                                    "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/acc",
                                    "--trainer.callbacks.mode=maximum"])
    assert line == ("error: a class of the configuration does not build: mode can be min, max, got maximum (check the "
                    "init_args of --trainer.callbacks, --model and --data)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("given", "why"), [
    (["--data.init_args.num_val=0"], "no validation images (--data.init_args.num_val=0), so no val/ metric is logged; hold "
                                     "some out, e.g. --data.init_args.num_val=100"),
    (["--trainer.limit_val_batches=0"], "no validation batches (--trainer.limit_val_batches=0), so no val/ metric is logged; "
                                        "leave --trainer.limit_val_batches out"),
])
def test_cli_early_stopping_on_val_acc_without_validation_is_one_line_before_training(given: list[str], why: str,
                                                                                      tmp_path: Path, monkeypatch,
                                                                                      capsys) -> None:
    # Lightning's own error came after an epoch of training, and left the run's log folder
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), *given,
                                    "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/acc"])
    assert line == f"error: the EarlyStopping callback's init_args.monitor=val/acc, but this run has {why}, or monitor a train/ metric"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("given", "message"), [
    (["--data=mnist"], "--data=mnist is ssgan-train's name; --data takes a datamodule class: --data=MNISTDataModule (one of "
                       "DigitsDataModule, MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule, SVHNDataModule, "
                       "FolderDataModule)"),
    (["--model", "supervised"], "--model=supervised is ssgan-train's name; --model takes a model class: "
                                "--model=SupervisedBaseline (one of SSGAN, SupervisedBaseline)"),
])
def test_cli_ssgan_train_config_names_are_answered_with_the_class(given: list[str], message: str, tmp_path: Path,
                                                                  monkeypatch, capsys) -> None:
    # jsonargparse said "--data=mnist: expected NoneType"
    monkeypatch.chdir(tmp_path)
    assert _one_line_error(capsys, ["fit", *given]) == f"error: {message}"
    # the classes' own short names are taken as they were
    cli = build_cli(["--data=DigitsDataModule", "--data.init_args.num_labeled=50", "--model", "SSGAN"], run=False)
    assert type(cli.model).__name__ == "SSGAN"


def test_cli_a_second_fit_without_a_logger_does_not_replace_the_first_ones_checkpoints(tmp_path: Path, monkeypatch,
                                                                                         capsys) -> None:
    # both saved into default_root_dir/checkpoints: the second replaced best.ckpt and last.ckpt without a word
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(CLI_DIR / "digits_ssgan.yaml"), "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path / 'run'}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false"]
    main(args)
    checkpoints = tmp_path / "run" / "checkpoints"
    before = {path.name: path.read_bytes() for path in checkpoints.iterdir()}
    assert _one_line_error(capsys, args) == (
        f"error: {checkpoints} holds an earlier fit's checkpoints (best.ckpt, last.ckpt), which this fit would replace; "
        f"resume it with --ckpt_path={checkpoints / 'last.ckpt'}, or fit into another --trainer.default_root_dir")
    assert {path.name: path.read_bytes() for path in checkpoints.iterdir()} == before
    main([*args[:-4], "--trainer.max_epochs=2", *args[-3:], f"--ckpt_path={checkpoints / 'last.ckpt'}"])  # the resume it names
    assert torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False)["epoch"] == 1


def test_cli_on_a_disk_that_fills_up_mid_run_is_one_line_naming_the_checkpoint_to_resume_from(
        tmp_path: Path, image_folder: Path, monkeypatch, capsys) -> None:
    # a failed checkpoint write was a traceback of 60 lines and more
    import errno

    from ssgan.callbacks import AtomicCheckpointIO

    common = ["--config", str(CLI_DIR / "folder.yaml"), f"--data.init_args.root={image_folder}",
              f"--data.init_args.split_cache_dir={tmp_path / 'splits'}", "--data.init_args.num_val=3",
              "--data.init_args.batch_size=10", "--trainer.enable_progress_bar=false",
              f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=2"]
    save = AtomicCheckpointIO.save_checkpoint

    def fills_up(self, checkpoint, path, storage_options=None) -> None:
        if checkpoint["epoch"] >= 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", fills_up)
    with pytest.raises(SystemExit) as stopped:
        main(["fit", *common])
    assert stopped.value.code == 2
    folder = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert logging.raiseExceptions  # put back: a test after this one still fails on a broken log call
    assert line.startswith(f"error: cannot write {folder}") and line.endswith(
        f": No space left on device; free some space; the run stopped, resume it with the same command and "
        f"--ckpt_path {folder / 'last.ckpt'}")
