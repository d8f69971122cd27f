"""``ssgan-cli``: a ``LightningCLI`` over the same module and datamodule classes that Hydra builds.

    ssgan-cli fit --config conf/cli/digits_ssgan.yaml [--trainer.max_epochs=20]
    ssgan-cli test --config conf/cli/digits_ssgan.yaml --ckpt_path <run>/checkpoints/last.ckpt

There is no second schema: the options are the ``__init__`` arguments of ``SSGAN`` /
``SupervisedBaseline`` and of the datamodules (``ssgan-cli fit --help``). The model's image
shape, class count and class names come from the datamodule, as in ``ssgan-train``.
Self-training rounds are the ``ssgan.self_training.SelfTraining`` callback (``trainer.callbacks``).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import io
import logging
import re
import shlex
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.plugins.io import CheckpointIO
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from ssgan.atomic import checkpoint_in_folder, unwritable_reason
from ssgan.callbacks import (AtomicCheckpointIO, KeepBestAcrossFolders, SyncedSigterm, ctrl_c_ignored,
                             sigterm_stops_outside_lightning)
from ssgan.data.datamodule import SemiSupervisedDataModule
from ssgan.config import class_path, config_text, import_class, init_arguments, recorded_class
from ssgan.cpu import keep_freed_memory
from ssgan.errors import UserError
from ssgan.module import ClassifierModule, DivergenceError, diverged_message
from ssgan.self_training import SelfTraining, refuse_changed_schedule, refuse_mismatched_rounds

log = logging.getLogger("ssgan.cli")  # not "__main__" under python -m ssgan.cli

# Lightning's names for a checkpoint that it finds itself (not a file's path)
LIGHTNING_CHECKPOINT_NAMES = ("last", "best", "hpc")

# the model settings that come from the datamodule (linked), not from --model.init_args
LINKED_MODEL_ARGUMENTS = ("image_shape", "num_classes", "class_names")


class FitConfigKeptSaveConfigCallback(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` writer, but without a logger (``--trainer.logger=false``) only ``fit``
    writes it: every command then shares one folder, and a ``test`` would replace the record of how the
    checkpoint was trained with its own settings. (With a logger each command has its own ``version_N``.)"""

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        if trainer.logger is None and stage != "fit":
            return
        super().setup(trainer, pl_module, stage)


class SSGANCLI(LightningCLI):
    """Links the datamodule's image shape and classes into the model's arguments."""

    built_trainer: Trainer | None = None  # the last trainer built: main() names its checkpoint when a run is stopped

    def add_arguments_to_parser(self, parser) -> None:
        _read_whole_numbers_as_counts(parser)
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.init_args.class_names", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """Checks ``--ckpt_path`` and the log folder as soon as they are parsed: before anything is
        built or seeded, so a wrong setting is one line and leaves no log folder behind."""
        given = sys.argv[1:] if args is None else list(args) if isinstance(args, (list, tuple)) else []
        printing = any(str(arg) == "--print_config" or str(arg).startswith("--print_config=") for arg in given)
        if printing:
            # --print_config prints once a --ckpt_path's hyperparameters are applied (_parse_ckpt_path), not from
            # inside the parse: it showed a model class that the run would not build. A parse that fails (a template
            # asked for, its required arguments unset) prints from inside after all, as jsonargparse does.
            parser_messages = io.StringIO()
            try:
                with contextlib.redirect_stderr(parser_messages), _print_config_postponed():
                    super().parse_arguments(parser, args)
                sys.stderr.write(parser_messages.getvalue())  # its warnings
            except SystemExit as exited:
                if exited.code in (0, None):
                    raise
                printing = False
        if not printing:
            self._parse_and_condense_errors(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand) if subcommand else None
        seed = (config if config is not None else self.config).get("seed_everything")
        if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < 2**32:  # numpy's range
            raise UserError(f"--seed_everything={seed} is not a seed; use a whole number from 0 to 4294967295, "
                            "true (a random one) or false (none)")
        if config is not None and (config.get("ckpt_path") or not printing):  # a config printed needs none
            _check_ckpt_path(subcommand, config.get("ckpt_path"), config.get("trainer.default_root_dir"))
        if config is not None and not printing:  # printing a config writes no log
            _check_log_folder(config.get("trainer.default_root_dir"))

    def _parse_and_condense_errors(self, parser, args) -> None:
        """LightningCLI's parse, with jsonargparse's error report condensed to one line."""
        parser_messages = io.StringIO()
        condensed = False
        try:
            with contextlib.redirect_stderr(parser_messages):
                super().parse_arguments(parser, args)
        except SystemExit as exited:
            if exited.code not in (0, None):  # not --help and the like, whose output stays as it was
                condensed = True
                raise UserError(condensed_parser_error(parser_messages.getvalue())) from None
            raise
        finally:
            if not condensed:  # help, warnings of a parse that went through, anything before a crash
                sys.stderr.write(parser_messages.getvalue())

    def _parse_ckpt_path(self) -> None:
        """Applies the checkpoint's hyperparameters (below), then prints the config if ``--print_config`` asked."""
        with _print_config_postponed():
            self._apply_checkpoint_hyperparameters()
        print_config = _print_config_action()
        if print_config is not None:
            print_config.print_config_if_requested(self.parser, self.config)

    def _apply_checkpoint_hyperparameters(self) -> None:
        """Applies the hyperparameters saved in ``--ckpt_path`` to the model's config, as Lightning's own
        method does, for the checkpoints of both entry points: the model class is LightningCLI's
        ``_class_path`` entry or, in the checkpoints of ``ssgan-train``, which lack it, their
        ``ssgan_module`` entry. (Lightning's method knows only the first, and it skips a path that
        starts with ``~``.) Hyperparameters that do not fit are one line, not a parser dump.

        The checkpoint's hyperparameters win over the config's ``--model.init_args`` (a checkpoint of
        ``ssgan-train`` must load with any config); the settings they change are logged as a warning."""
        subcommand = self.config.get("subcommand")
        checkpoint = self._read_checkpoint() if subcommand else None
        hyper_parameters = dict((checkpoint or {}).get("hyper_parameters") or {})
        hyper_parameters.pop("_instantiator", None)
        if not hyper_parameters:
            return
        class_path = hyper_parameters.pop("_class_path", None) or checkpoint.get("ssgan_module")
        ckpt_path = self.config[subcommand].get("ckpt_path")
        if class_path:
            # jsonargparse passes dict_kwargs on unchecked: a key the class no longer takes would end in
            # a TypeError when the model is built
            try:
                model_class = recorded_class(class_path, ClassifierModule, ckpt_path, "model")
            except UserError:
                model_class = None
            if not (isinstance(model_class, type) and issubclass(model_class, ClassifierModule)):
                raise UserError(f"--ckpt_path={ckpt_path}: its model class {class_path} is not an ssgan model in this "
                                "version of ssgan; give a checkpoint that ssgan-train or ssgan-cli wrote")
            unknown = sorted(set(hyper_parameters) - init_arguments(model_class))
            if unknown:
                raise UserError(f"--ckpt_path={ckpt_path}: its saved hyperparameters do not fit the model "
                                f"({class_path} takes no {', '.join(unknown)}); give a checkpoint that this "
                                "version of ssgan wrote")
        self._warn_of_replaced_settings(ckpt_path, class_path, hyper_parameters)
        model = {"class_path": class_path, "dict_kwargs": hyper_parameters} if class_path else hyper_parameters
        parser_messages = io.StringIO()
        try:
            with contextlib.redirect_stderr(parser_messages):
                self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
        except SIGTERMException:  # a SystemExit too: a stop by SIGTERM here, not the parser's
            raise
        except SystemExit:
            lines = [line.strip() for line in parser_messages.getvalue().splitlines() if line.strip()]
            reason = next((line for line in lines if "not accepted" in line or "required" in line),
                          lines[-1] if lines else "")
            raise UserError(f"--ckpt_path={ckpt_path}: its saved hyperparameters do not fit the model ({reason}); "
                            "give a checkpoint that this version of ssgan wrote") from None

    def _warn_of_replaced_settings(self, ckpt_path: str, class_path: str | None, saved: dict[str, Any]) -> None:
        """Logs the ``--model`` settings whose config value the checkpoint's ``saved`` hyperparameters
        replace (e.g. ``unlabeled_weight: 5.0 (config) -> 3.0 (checkpoint)``), so none changes silently."""
        given = self.config[self.config["subcommand"]].get("model")
        given_class = given.get("class_path") if given is not None else None
        init_args = given.get("init_args") if given is not None and given_class else given
        changes = []
        if class_path and given_class and class_path != given_class:
            changes.append(f"the model class: {given_class} (config) -> {class_path} (checkpoint)")
        for key, value in saved.items():
            if key in LINKED_MODEL_ARGUMENTS or init_args is None or key not in init_args:
                continue  # the data's image shape and classes are checked against the checkpoint's on their own
            configured = init_args[key]
            if _plain_value(configured) != _plain_value(value):
                changes.append(f"{key}: {config_text(_plain_value(configured))} (config) -> "
                               f"{config_text(_plain_value(value))} (checkpoint)")
        if changes:
            log.warning("--ckpt_path=%s: the checkpoint's model settings are used, not the config's: %s",
                        ckpt_path, ", ".join(changes))

    def instantiate_classes(self) -> None:
        """Lightning's, with a class that needs a package which is not installed (e.g. a logger's)
        reported in one line instead of jsonargparse's chained tracebacks."""
        try:
            super().instantiate_classes()
        except UserError:  # already one line (e.g. instantiate_trainer's)
            raise
        except Exception as error:
            missing = _missing_package_error(error)
            if missing is not None:
                raise missing from None
            refused = _refused_setting(error)
            if refused is None:
                raise
            # e.g. a callback's mode=maximum, as ssgan-train's "callbacks.<name> does not build: ..."
            raise UserError(f"a class of the configuration does not build: {refused} (check the init_args of "
                            "--trainer.callbacks, --model and --data)") from None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        from ssgan.train import (_several_processes, check_accelerator, check_batch_limit_values, check_kept_checkpoints,
                                 check_monitored_metric, no_validation_reason, trainer_setup_error)

        trainer_config = self._get(self.config_init, "trainer", default={})
        check_accelerator(trainer_config.get("accelerator", "auto"), "--trainer.accelerator")  # ssgan-train's list and words
        check_batch_limit_values(trainer_config, lambda key: f"--trainer.{key}")
        if str(trainer_config.get("strategy", "auto")) == "auto" and _several_processes(trainer_config):
            # as in ssgan-train: plain DDP, Lightning's default for several devices, stops at the first GAN
            # step, where each optimizer's step leaves the other net's parameters without gradients
            kwargs.setdefault("strategy", "ddp_find_unused_parameters_true")
        kwargs.setdefault("callbacks", self._callbacks_for_the_data(trainer_config.get("callbacks")))
        kwargs.setdefault("plugins", _with_atomic_checkpoints(trainer_config.get("plugins")))
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except UserError:
            raise
        except Exception as error:  # Lightning's MisconfigurationException/ValueError for bad devices etc.
            raise trainer_setup_error(error, "the --trainer.* arguments", "--trainer.accelerator") from None
        if self.subcommand is not None:  # a run writes logs (build_cli(run=False) only builds)
            _check_logger_folders(trainer)
        if self.subcommand == "fit":  # a monitored val/ metric the model does not log, before an epoch of training
            logged = getattr(self.model, "validation_metrics", ("val/acc",))
            # without validation no val/ metric is logged at all (ssgan-train's words, in this entry point's spelling)
            no_validation = no_validation_reason(getattr(self.datamodule, "num_val", None) != 0,
                                                 trainer_config.get("limit_val_batches"),
                                                 lambda key: f"--data.init_args.{key}", lambda key: f"--trainer.{key}")
            for callback in trainer.callbacks:
                # a checkpoint by val/acc then saves no best.ckpt, as in ssgan-train; early stopping would fail
                unlogged = no_validation and not isinstance(callback, ModelCheckpoint)
                check_monitored_metric(callback, () if unlogged else logged,
                                       f"the {type(callback).__name__} callback's init_args.monitor", *no_validation)
                check_kept_checkpoints(callback, f"the {type(callback).__name__} callback's init_args.save_top_k")
        # whatever the config's callbacks, as in ssgan-train: a DDP run stops on SIGTERM instead of hanging
        trainer.callbacks.append(SyncedSigterm())
        trainer.callbacks.append(KeepBestAcrossFolders())  # fit --ckpt_path into a new version_N keeps the best.ckpt
        SSGANCLI.built_trainer = trainer
        return trainer

    def _callbacks_for_the_data(self, callbacks: Callback | list[Callback] | None) -> list[Callback]:
        """The config's callbacks, as ``ssgan-train`` keeps them: without validation images
        (``num_val=0``), no checkpoint that picks the best epoch by a validation metric (it would
        warn every epoch, and there is nothing to pick by)."""
        callbacks = [] if callbacks is None else list(callbacks) if isinstance(callbacks, list) else [callbacks]
        # only a fit saves checkpoints (validate, test and predict keep the callbacks whose state the
        # checkpoint holds, which Lightning otherwise warns of)
        if self.subcommand not in (None, "fit") or getattr(self.datamodule, "num_val", None) != 0:
            return callbacks
        by_validation = [c for c in callbacks if isinstance(c, ModelCheckpoint) and str(c.monitor).startswith("val/")]
        if by_validation:
            log.info("no validation images (--data.init_args.num_val=0): no best.ckpt is kept")
        return [c for c in callbacks if not any(c is dropped for dropped in by_validation)]

    def _refuse_a_folder_of_earlier_checkpoints(self) -> None:
        """A new fit without a logger (``--trainer.logger=false``) saves into ``default_root_dir/checkpoints``, as the
        fit before it did: its best.ckpt and last.ckpt were replaced without a word. (With a logger each fit has a
        ``version_N`` of its own.) Refused, as ssgan-train refuses a new run in the folder of an earlier one."""
        if self.trainer.logger is not None:
            return
        for callback in self.trainer.callbacks:
            if not isinstance(callback, ModelCheckpoint):
                continue
            folder = Path(callback.dirpath) if callback.dirpath else Path(self.trainer.default_root_dir) / "checkpoints"
            earlier = sorted(path.name for path in folder.glob("*.ckpt")) if folder.is_dir() else []
            if earlier:
                last = folder / "last.ckpt" if "last.ckpt" in earlier else folder / earlier[-1]
                raise UserError(f"{folder} holds an earlier fit's checkpoints ({', '.join(earlier)}), which this fit would "
                                f"replace; resume it with --ckpt_path={last}, or fit into another "
                                "--trainer.default_root_dir")

    def before_fit(self) -> None:
        from ssgan.module import (SSGAN, refuse_another_optimizer, refuse_low_precision_weights,
                                  warn_if_the_conv_net_gets_a_high_lr)
        from ssgan.train import (check_trainer_counts, refuse_another_split, refuse_fewer_epochs, refuse_plain_ddp,
                                 warn_if_bf16_is_slow)

        # ssgan-train's checks of the same settings, before fit makes a log folder
        trainer_config = self.config["fit"]["trainer"]
        check_trainer_counts(trainer_config, lambda key: f"--trainer.{key}",
                             lambda key: "--{}.init_args.{}".format(*key.split(".", 1)))
        refuse_plain_ddp(trainer_config.get("strategy"), isinstance(self.model, SSGAN), "--trainer.strategy")
        refuse_low_precision_weights(trainer_config.get("precision") or "32-true")
        if self.trainer.is_global_zero:
            warn_if_the_conv_net_gets_a_high_lr(  # optimizer_d.lr is spelt optimizer_d.init_args.lr here
                self.model, lambda setting, value: f"--model.init_args.{setting.replace('.lr', '.init_args.lr')}={value}")
        checkpoint = self._read_checkpoint()
        self._require_a_fitting_checkpoint(checkpoint)
        if not self.config["fit"].get("ckpt_path"):  # a new fit (hpc, s3://... and the like are resumes too)
            self._refuse_a_folder_of_earlier_checkpoints()
        if checkpoint is not None:  # Lightning's own check is a traceback from inside fit
            refuse_another_optimizer(f"--ckpt_path={self.config['fit']['ckpt_path']}", checkpoint, self.model,
                                     lambda setting, cls: f"--model.init_args.{setting}={cls}")  # before any data is read
            refuse_another_split(f"--ckpt_path={self.config['fit']['ckpt_path']}", checkpoint, self.datamodule,
                                 lambda key: f"--data.init_args.{key}", lambda cls: f"--data={class_path(cls)}")
            self_training = [c for c in self.trainer.callbacks if isinstance(c, SelfTraining)]
            for callback in self_training:
                refuse_changed_schedule(self.config["fit"]["ckpt_path"], checkpoint, self.trainer.max_epochs,
                                        callback.epochs_per_round,
                                        settings=("--trainer.max_epochs={}",
                                                  "epochs_per_round: {} in the SelfTraining callback's init_args"))
            refuse_mismatched_rounds(
                self.config["fit"]["ckpt_path"], checkpoint, self.trainer.max_epochs,
                sum(c.rounds for c in self_training), self_training[0].epochs_per_round if self_training else 1,
                settings={"max_epochs": "--trainer.max_epochs={}", "rounds": "rounds: {} in the SelfTraining callback's init_args",
                          "on": "the SelfTraining callback in --trainer.callbacks"})
            round_epochs = sum(c.rounds * c.epochs_per_round for c in self_training)
            refuse_fewer_epochs(self.config["fit"]["ckpt_path"], checkpoint, self.trainer.max_epochs, round_epochs,
                                setting="--trainer.max_epochs")
        self.datamodule.setup("fit")  # reads the data now, as ssgan-train does (Lightning's setup then returns at once)
        self._check_batch_limits("fit")
        keep_freed_memory()  # as ssgan-train does (ssgan.cpu)
        warn_if_bf16_is_slow(self.trainer)

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """The ``--ckpt_path`` file's contents, memory-mapped (no weights read); None without a local file,
        or for a checkpoint that torch's safe loader refuses for a class in it (the Trainer's own load then
        reports it). A file that is no checkpoint at all (not a zip archive), or a damaged one, is a one-line error."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or _is_checkpoint_keyword(str(ckpt_path)) or not Path(ckpt_path).expanduser().is_file():
            return None
        import zipfile

        import torch

        from ssgan.tools import cut_short, foreign_archive, other_checkpoint_advice

        # fit may start afresh; test, validate and predict need a checkpoint (and resume nothing)
        fallback = ("start it again without --ckpt_path" if subcommand == "fit"
                    else "give a whole .ckpt file that a run wrote")
        use = "resume from" if subcommand == "fit" else "use"
        path = Path(ckpt_path).expanduser()
        if not zipfile.is_zipfile(path):  # torch saves checkpoints as zip archives
            if cut_short(path):  # the start of one, whose end (the archive's directory) is missing
                raise UserError(f"--ckpt_path={ckpt_path} is damaged or cut short (no end to its zip archive); "
                                f"{other_checkpoint_advice(path, '--ckpt_path', fallback, use, quote=shlex.quote)}")
            raise UserError(f"--ckpt_path={ckpt_path} is not a checkpoint (not a zip archive, as torch saves them); "
                            "give a .ckpt file that a run wrote (e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
        problem = foreign_archive(path)
        if problem:
            raise UserError(f"--ckpt_path={ckpt_path} {problem}; give a .ckpt file that a run wrote "
                            "(e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # one that needs the unsafe loader (older torch's default), or a damaged one
            if _damaged_checkpoint(path):  # the Trainer's own load would stop with a traceback
                raise UserError(f"--ckpt_path={ckpt_path} is damaged or cut short ({type(error).__name__}); "
                                f"{other_checkpoint_advice(path, '--ckpt_path', fallback, use, quote=shlex.quote)}") from None
            return None  # the Trainer loads it as its torch release does
        from ssgan.train import NOT_A_TRAINING_CHECKPOINT, is_training_checkpoint

        if not is_training_checkpoint(checkpoint):
            raise UserError(f"--ckpt_path={ckpt_path} {NOT_A_TRAINING_CHECKPOINT}; give a .ckpt file that a run wrote "
                            "(e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
        return checkpoint

    def _require_a_fitting_checkpoint(self, checkpoint: dict[str, Any] | None) -> None:
        """A ``--ckpt_path`` (``checkpoint``: its contents) of other images (another shape or class count)
        is one line, not a traceback from loading its weights into a net of another size."""
        saved = (checkpoint or {}).get("hyper_parameters") or {}
        if "image_shape" not in saved or "num_classes" not in saved:
            return
        trained_on = (tuple(saved["image_shape"]), int(saved["num_classes"]))
        given = (tuple(self.datamodule.image_shape), int(self.datamodule.num_classes))
        if trained_on != given:
            raise UserError(f"--ckpt_path={self.config[self.subcommand].get('ckpt_path')} was trained on {trained_on[1]} "
                            f"classes of {trained_on[0]} images, but these data are {given[1]} classes of {given[0]}; "
                            "give a --config and --data of the images it was trained on")

    def before_validate(self) -> None:
        _quiet_the_checkpoint_folder_warning()
        self._require_a_fitting_checkpoint(self._read_checkpoint())
        self.datamodule.setup("validate")  # loads the data once: Lightning's own setup() then returns at once
        self._check_batch_limits("validate")
        if self._checkpoint_validation_count() == 0:
            raise UserError("the checkpoint's split holds no validation images (its run had data.num_val=0), and "
                            "validate uses that split: `ssgan-cli validate` has nothing to validate; fit with "
                            "--data.init_args.num_val=N (labeled images held out for validation)")
        if len(self.datamodule.split.val) == 0:
            raise UserError("no validation images (data.num_val=0): `ssgan-cli validate` has nothing to validate; "
                            "add --data.init_args.num_val=N (labeled images held out for validation)")

    def _check_batch_limits(self, subcommand: str) -> None:
        """ssgan-train's check: a limit fraction that keeps no batch, in one line before any log folder (Lightning's
        own refusal is a traceback, under ``fit`` after an epoch of training)."""
        from ssgan.train import check_batch_limits

        check_batch_limits(self.config[subcommand]["trainer"], self.datamodule, lambda key: f"--trainer.{key}",
                           self.trainer.world_size)
        if subcommand in ("validate", "test", "predict"):  # a limit of 0: Lightning runs nothing and exits 0
            key = f"limit_{'val' if subcommand == 'validate' else subcommand}_batches"
            limit = self.config[subcommand]["trainer"].get(key)
            if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit == 0:
                raise UserError(f"--trainer.{key}={limit} keeps no batch, so `ssgan-cli {subcommand}` would do nothing; "
                                f"leave --trainer.{key} out, or give a fraction or a number of batches, e.g. "
                                f"--trainer.{key}=1")

    def _checkpoint_validation_count(self) -> int | None:
        """Validation images in the split of ``--ckpt_path``, which restores it over the one drawn now
        (``SemiSupervisedDataModule.load_state_dict``); None without a checkpoint split."""
        checkpoint = self._read_checkpoint()
        if checkpoint is None:
            return None
        saved = self.datamodule.split_in(checkpoint)
        return len(saved["val"]) if saved is not None else None

    def before_test(self) -> None:
        _quiet_the_checkpoint_folder_warning()
        self._require_test_images("test")

    def before_predict(self) -> None:
        _quiet_the_checkpoint_folder_warning()
        self._require_test_images("predict")

    def after_predict(self) -> None:
        """Says what ``predict`` did: Lightning keeps the predictions in memory and writes nothing."""
        batches = self.trainer.predict_loop.predictions or []
        count = sum(len(batch) for batch in batches if hasattr(batch, "__len__"))
        log.info("predicted the class probabilities of %d test images, and wrote them nowhere: `ssgan predict %s "
                 "<image folder> --out predictions.csv` writes predictions to a file", count,
                 self.config["predict"].get("ckpt_path"))

    def _require_test_images(self, subcommand: str) -> None:
        """``test`` and ``predict`` read the test images: without them they would end silently with nothing.
        Their checkpoint must fit the data too."""
        self._require_a_fitting_checkpoint(self._read_checkpoint())
        self.datamodule.setup(subcommand)
        self._check_batch_limits(subcommand)
        if not self.datamodule.has_test_set:
            root = getattr(self.datamodule, "root", None)
            where = f"add {root / 'test'}/<class name>/ images" if isinstance(root, Path) else "give a dataset with test images"
            raise UserError(f"no test images (a folder without test/, or none of its images could be read): "
                            f"`ssgan-cli {subcommand}` has nothing to "
                            f"{subcommand}; {where}")


def _read_whole_numbers_as_counts(parser) -> None:
    """Makes ``--trainer.limit_train_batches=1`` one batch, as in ``ssgan-train``, not the whole epoch.

    Lightning types the ``limit_*_batches`` settings ``Union[float, int, None]``, so jsonargparse reads 1
    as the fraction 1.0; an int means a number of batches, a float a fraction, so the order decides what
    a run does. With int first, ``1`` is one batch and ``1.0`` the whole epoch, from the command line or
    a config. (The other trainer settings typed so, such as ``gradient_clip_val``, keep the number as given.)
    """
    for action in parser._actions:  # jsonargparse keeps a typed argument's type in ``_typehint``
        typehint = getattr(action, "_typehint", None)
        if not str(getattr(action, "dest", "")).startswith("trainer.") or typing.get_origin(typehint) is not typing.Union:
            continue
        members = typing.get_args(typehint)
        if float in members and int in members and members.index(float) < members.index(int):
            action._typehint = typing.Union[tuple([int, *(member for member in members if member is not int)])]


def condensed_parser_error(text: str) -> str:
    """jsonargparse's error output (usage, a tip, and for a Union or class argument a nested report of
    each member) as one line: the argument as it is given, what it takes, what it got, and ``--help``.

    ``error: Parser key "data": ... Problem with given class_path 'X': Option 'roo' is not accepted``
    becomes ``--data (X): Option 'roo' is not accepted; see ssgan-cli fit --help``.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    help_hint = next((line.split("run:", 1)[1].strip() for line in lines
                      if line.startswith("tip:") and "run:" in line), "ssgan-cli --help")
    start = next((index for index, line in enumerate(lines) if line.startswith("error:")), None)
    if start is None:
        return f"the arguments do not parse; see {help_hint}"
    error = lines[start].removeprefix("error:").strip()
    body = [line for line in lines[start + 1:] if not line.startswith(("tip:", "usage:"))]
    key = re.match(r'Parser key "([^"]+)":?$', error)
    if key is None:  # one message, perhaps continued (e.g. a yaml error and where it is)
        trainer_option = re.match(r"unrecognized arguments: --trainer\.(\w+)", error)
        if trainer_option:  # a mistyped Trainer argument, e.g. --trainer.max_epoch=3
            error += _did_you_mean(f"Option '{trainer_option.group(1)}' is not accepted",
                                   "pytorch_lightning.Trainer", "--trainer.")
        return "; ".join([error, *(line.strip() for line in body)]) + f"; see {help_hint}"
    return f"{_argument_error(key.group(1), body)}; see {help_hint}"


def _indented_under(block: list[str], index: int) -> list[str]:
    """The lines of ``block`` after ``block[index]`` that are indented deeper than it: its own report."""
    depth = len(block[index]) - len(block[index].lstrip())
    inner = []
    for later in block[index + 1:]:
        if len(later) - len(later.lstrip()) <= depth:
            break
        inner.append(later)
    return inner


def _without_factory_value(text: str) -> str:
    """``text`` without the whole factory's value that jsonargparse appends to its errors about a factory
    argument (``. Got value: Namespace(class_path=..., init_args=...)``)."""
    return re.sub(r"\. Got value: Namespace\(.*$", "", text)


def _factory_error(name: str, reason: str, inner: list[str], class_path: str | None) -> str:
    """One line for jsonargparse's report on a factory argument (an optimizer: ``class_path`` and ``init_args``
    of a callable), whose reason is the class that does not import or the report on one of its arguments."""
    nested = re.match(r'Parser key "([^"]+)":?$', reason)
    if nested:  # e.g. lr=abc: its own report, named as it is given
        return _argument_error(f"{name}.init_args.{nested.group(1)}", inner)
    missing = re.match(r"module '([\w.]+)' has no attribute '(\w+)'", reason)
    if missing:  # a class_path naming nothing, e.g. torch.optim.Adamm
        try:
            names = [attribute for attribute in dir(importlib.import_module(missing.group(1))) if not attribute.startswith("_")]
        except Exception:  # a module that does not import: jsonargparse's own words stand
            names = []
        close = difflib.get_close_matches(missing.group(2), names, n=1)
        hint = f" (did you mean {missing.group(1)}.{close[0]}?)" if close else ""
        return f"--{name}.class_path={missing.group(1)}.{missing.group(2)}: {missing.group(1)} has no {missing.group(2)}{hint}"
    shown = f" ({class_path})" if class_path else ""
    return f"--{name}{shown}: {reason}" + (_did_you_mean(reason, class_path, f"--{name}.init_args.") if class_path else "")


def _argument_error(name: str, block: list[str]) -> str:
    """One line for the report (indented ``block``) under jsonargparse's ``Parser key "name":``."""
    for index, line in enumerate(block):
        factory = re.match(r"- Type .+ expects a function or a callable class: (.+)$", line.strip())
        if factory:
            given_class = re.search(r"\. Got value: Namespace\(class_path='([^']+)'", line)
            return _factory_error(name, _without_factory_value(factory.group(1)), _indented_under(block, index),
                                  given_class.group(1) if given_class else None)
        if line.strip().startswith("- Problem with given class_path"):  # the class the config names
            class_path = re.search(r"class_path '([^']+)'", line)
            class_name = class_path.group(1) if class_path else "its class"
            inner = _indented_under(block, index)
            reason = _without_factory_value(inner[0].strip()) if inner else "does not validate"
            required = re.match(r"the following arguments are required: (.+)", reason)
            if required:
                names = [argument.strip() for argument in required.group(1).split(",")]
                return f"--{name} ({class_name}) needs " + " ".join(f"--{name}.init_args.{a}=..." for a in names)
            nested = re.match(r'Parser key "([^"]+)":?$', reason)
            if nested:  # an argument of that class: its own report, named as it is given
                return _argument_error(f"{name}.init_args.{nested.group(1)}", inner[1:])
            return f"--{name} ({class_name}): {reason}" + _did_you_mean(reason, class_name, f"--{name}.init_args.")
    stripped = [_without_factory_value(line.strip()) for line in block]
    given_type = next((line for line in stripped if line.startswith("Given value type:")), "")
    given = next((line.removeprefix("Given value:").strip() for line in stripped if line.startswith("Given value:")), None)
    nested_key = re.search(r"NestedArg\(key='([^']+)'", given or "") if "NestedArg" in given_type else None
    if nested_key:
        return f"--{name}: its option '{nested_key.group(1)}' is not accepted here"
    subtypes = next((line for line in stripped if line.startswith("Subtypes:")), "")
    if (given is not None and re.fullmatch(r"(?:[A-Za-z_]\w*\.)*[A-Z]\w*", given)  # written as a class: Name, a.b.Name
            and any(line.startswith("- Expected a dot import path string:") for line in stripped)
            and not re.search(r"<class '(?:int|float|str)'>", subtypes)):  # a number's option: its type's words stand
        return _unknown_class_error(name, given, block)
    expected: list[str] = []
    for line in stripped:
        if not line.startswith("- ") or "Does not validate against" in line:
            continue
        what = _readable_type(line[2:].removeprefix("Expected ").removeprefix("a "))
        if what.startswith(("path but ", "dot import path string")):  # readings of the value as a path or an import
            continue
        if what not in expected:
            expected.append(what)
    if given is not None:
        return f"--{name}={given}: expected " + (" or ".join(expected) if expected else "another value")
    single = re.fullmatch(r"Expected an? (.+)\. Got value: (.*)", " ".join(stripped))  # a float, a Literal, ...
    if single:
        return f"--{name}={single.group(2)}: expected {_readable_type(single.group(1))}"
    return f"--{name}: " + ("; ".join(stripped) if stripped else "does not validate")


def _damaged_checkpoint(path: Path) -> bool:
    """Whether a checkpoint that torch's safe loader refused is damaged, rather than one that needs the unsafe
    loader (a class of its own in the pickle). Read without unpickling it, where torch can: its code must not
    run here."""
    import pickletools
    import zipfile

    import torch

    find_unsafe = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch >= 2.5
    if find_unsafe is None:  # an older torch, whose default load (the Trainer's too) is the unsafe one anyway
        try:
            torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except Exception:
            return True
        return False
    try:
        return not find_unsafe(path)  # refused, with no class that the safe loader does not allow: damaged
    except Exception:  # its reader knows pickle protocol 2's opcodes only: a whole pickle of a later one is not damaged
        try:
            with zipfile.ZipFile(path) as archive:
                pickled = next(name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl")
                for _ in pickletools.genops(archive.read(pickled)):  # reads the opcodes, runs nothing
                    pass
        except Exception:
            return True
        return False


def _did_you_mean(reason: str, class_path: str, prefix: str) -> str:
    """`` (did you mean --model.init_args.unlabeled_weight?)`` for jsonargparse's "Option 'unlabled_weight' is
    not accepted", from the arguments the class takes; "" when none is close or the class does not import."""
    unknown = re.match(r"Option '([^']+)' is not accepted", reason)
    if unknown is None:
        return ""
    try:
        accepted = sorted(init_arguments(import_class(class_path)))
    except Exception:  # a class that does not import: jsonargparse's own words stand
        return ""
    close = difflib.get_close_matches(unknown.group(1), accepted, n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _print_config_action() -> Any:
    """jsonargparse's ``--print_config`` action class (a private one), or None where a release lacks it."""
    from jsonargparse import _actions

    action = getattr(_actions, "_ActionPrintConfig", None)
    return action if hasattr(action, "skip_print_config") and hasattr(action, "print_config_if_requested") else None


def _print_config_postponed() -> contextlib.AbstractContextManager:
    """A context in which a parse does not print (and exit for) ``--print_config``; it stays requested."""
    action = _print_config_action()
    return action.skip_print_config() if action is not None else contextlib.nullcontext()


def _unknown_class_error(name: str, given: str, block: list[str]) -> str:
    """``--model=SSGANN names no ClassifierModule class (did you mean SSGAN?)``: for a class name that
    jsonargparse resolved to nothing, the closest of the imported subclasses of the types the option takes."""
    bases = []
    for line in block:
        if line.strip().startswith("Subtypes:"):
            for path in re.findall(r"\b([A-Za-z_]\w*(?:\.\w+)+)", line):  # the dotted names: classes, typing.Union, ...
                with contextlib.suppress(Exception):
                    found = import_class(path)
                    # a class to choose a subclass of: not typing.Union, Iterable and the like
                    if isinstance(found, type) and found.__module__ not in ("typing", "collections.abc", "builtins") \
                            and found not in bases:
                        bases.append(found)
    candidates: dict[str, str] = {}  # the name a user may give (short or dotted) -> the class path
    pending = list(bases)
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls not in bases and not cls.__name__.startswith("_") and not getattr(cls, "__abstractmethods__", None):
            path = class_path(cls)
            candidates.setdefault(cls.__name__, path)
            candidates.setdefault(path, path)
    kind = " or ".join(dict.fromkeys(base.__name__ for base in bases)) or "known"
    close = difflib.get_close_matches(given, [key for key in candidates if ("." in key) == ("." in given)], n=1, cutoff=0.6)
    short = sorted(key for key in candidates if "." not in key)
    hint = (f" (did you mean {close[0]}?)" if close else
            f"; use one of: {', '.join(short)}" if 0 < len(short) <= 8 else "; give a class's import path")
    return f"--{name}={given} names no {kind} class{hint}"


def _readable_type(what: str) -> str:
    """jsonargparse's name of a type as a user reads it: ``<class 'int'>`` -> ``int``,
    ``typing.Literal['a', 'b']`` -> ``one of ['a', 'b']``."""
    what = re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>$", r"\1", what)
    return re.sub(r"^typing\.Literal(\[.*\])$", r"one of \1", what)


def _is_checkpoint_keyword(ckpt_path: str) -> bool:
    """Whether Lightning resolves ``ckpt_path`` itself (``last``, ``best``, ``hpc``, ``registry``) or
    reads it through fsspec (``s3://...``), rather than from a local file."""
    lowered = ckpt_path.lower()
    return ckpt_path in LIGHTNING_CHECKPOINT_NAMES or lowered == "registry" or lowered.startswith("registry:") \
        or "://" in ckpt_path


def _check_ckpt_path(subcommand: str, ckpt_path: Any, default_root_dir: str | None) -> None:
    """One-line errors for a ``--ckpt_path`` that names no checkpoint of an earlier run, and for
    ``validate``, ``test`` and ``predict`` without one (they would run untrained weights)."""
    example = _checkpoint_example(default_root_dir)
    if ckpt_path is None:
        if subcommand != "fit":
            does = {"validate": "validate", "test": "test", "predict": "predict with"}.get(subcommand, "run")
            raise UserError(f"`ssgan-cli {subcommand}` needs --ckpt_path <a checkpoint>, e.g. {example} (without one "
                            f"it would {does} untrained weights)")
        return
    ckpt_path = str(ckpt_path)
    if not ckpt_path.strip():
        raise UserError(f"--ckpt_path is empty; give the path of a .ckpt file that a run wrote (e.g. {example})")
    root = Path(default_root_dir or ".").expanduser()
    if ckpt_path == "hpc" and not any(root.glob("hpc_ckpt_*.ckpt")):
        # Lightning's SLURM requeue saves hpc_ckpt_N.ckpt in the root folder, where "hpc" looks (not in a version_N)
        raise UserError(f"--ckpt_path=hpc finds no hpc_ckpt_*.ckpt in {root} (Lightning's SLURM requeue saves them "
                        f"there); give the checkpoint's path, e.g. --ckpt_path={example}")
    if ckpt_path in ("last", "best"):
        raise UserError(f"--ckpt_path={ckpt_path} finds no checkpoint of an earlier run (each ssgan-cli command logs to a "
                        f"new lightning_logs/version_N); give the checkpoint's path, e.g. --ckpt_path={example}")
    if not _is_checkpoint_keyword(ckpt_path) and not Path(ckpt_path).expanduser().is_file():
        if Path(ckpt_path).expanduser().is_dir():
            raise UserError(f"--ckpt_path={ckpt_path} is a folder; give the path of a .ckpt file that a run wrote (e.g. "
                            f"{checkpoint_in_folder(Path(ckpt_path).expanduser()) or example})")
        raise UserError(f"--ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file that a run wrote (e.g. {example})")


def _checkpoint_example(default_root_dir: str | None) -> str:
    """A checkpoint path for a message: the newest ``last.ckpt`` under the log folder, else the
    one that the first fit there would write."""
    logs = Path(default_root_dir or ".").expanduser() / "lightning_logs"
    try:
        found = sorted(logs.glob("version_*/checkpoints/last.ckpt"), key=lambda path: path.stat().st_mtime)
    except OSError:  # an unreadable folder: the generic example
        found = []
    return str(found[-1] if found else logs / "version_0" / "checkpoints" / "last.ckpt")


def _check_log_folder(default_root_dir: str | None) -> None:
    """A one-line error for a ``--trainer.default_root_dir`` (by default the working folder) where the
    run's log folder cannot be made; Lightning would stop with a traceback from inside ``fit``."""
    reason = unwritable_reason(default_root_dir or Path.cwd())
    if reason:
        where = f"--trainer.default_root_dir={default_root_dir}" if default_root_dir else \
            "the working folder (--trainer.default_root_dir is not given)"
        raise UserError(f"cannot write {where}: {reason}; give --trainer.default_root_dir=<a folder you can write to>")


def _check_logger_folders(trainer: Trainer) -> None:
    """The same check for the folder of each logger that has its own (``--trainer.logger.init_args.save_dir``),
    and of each callback that has its own (a ``dirpath`` in its ``init_args``)."""
    from ssgan.train import check_callback_folder, check_logger_folder

    for logger in trainer.loggers:
        check_logger_folder(logger, "--trainer.logger.init_args.save_dir")
    for callback in trainer.callbacks:
        check_callback_folder(callback, f"the {type(callback).__name__} callback's dirpath",
                              "give it a folder you can write to in its init_args")


def _with_atomic_checkpoints(plugins: Any) -> list[Any]:
    """The Trainer's ``plugins`` plus ``AtomicCheckpointIO``, as ``ssgan-train`` gives it (a run killed
    while saving keeps its previous checkpoint whole); a checkpoint plugin of the user's is kept instead."""
    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


def _missing_package_error(error: BaseException) -> UserError | None:
    """For a class of the config (e.g. ``--trainer.logger=WandbLogger``) that needs a package which is
    not installed: one line naming the class and how to install the package; else None."""
    chain, current = [], error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    missing = next((link for link in chain if isinstance(link, ModuleNotFoundError)), None)
    if missing is None:
        return None
    class_path = next((found.group(1) for link in chain
                       if (found := re.search(r"class_path '([^']+)'", str(link)))), None)
    # Lightning's: "Requirement 'wandb>=0.12.10' not met. HINT: Try running `pip install -U 'wandb>=0.12.10'`"
    # or "Neither `tensorboard` nor `tensorboardX` is available. Try `pip install`ing either. ..."
    message = str(missing).strip().splitlines()[0] if str(missing).strip() else type(missing).__name__
    what = message.split(". ")[0].replace("`", "").rstrip(".")  # its first sentence
    install = re.search(r"`(pip install [^`]+)`", message)
    name = class_path.rsplit(".", 1)[-1] if class_path else None
    if name == "TensorBoardLogger":
        fix = "pip install 'ssgan[tensorboard]'"
    else:
        fix = install.group(1) if install else f"install {missing.name}" if missing.name else "install it"
    needs = f"{class_path} needs" if class_path else "a class of the config needs"
    instead = ", or use --trainer.logger=CSVLogger" if name and name.endswith("Logger") else ""
    return UserError(f"{needs} a package that is not installed ({what}); {fix}{instead}")


def _plain_value(value: Any) -> Any:
    """A config or checkpoint value in plain types (jsonargparse's Namespace a dict, a tuple a list), for comparing."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {key: _plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(item) for item in value]
    return value


def _quiet_the_checkpoint_folder_warning() -> None:
    """Hides Lightning's "The dirpath has changed ... won't be reloaded" for validate, test and predict: it
    speaks of the best-checkpoint bookkeeping of a fit, which they neither use nor change (a fit keeps it)."""
    import warnings

    warnings.filterwarnings("ignore", message=r"The dirpath has changed from")


def shipped_config(path: str) -> str:
    """``path`` itself if it exists, else the example config of that name that ssgan ships (``conf/cli/``).

    So ``--config conf/cli/digits_ssgan.yaml`` (as README writes it) and ``--config digits_ssgan`` work
    from any folder, and after an install without the repository.
    """
    from ssgan.config import CONFIG_DIR

    try:
        if Path(path).exists():
            check_config_file(path)
            return path
    except OSError:  # not a file name: inline YAML or JSON, which jsonargparse also takes
        return path
    name = Path(path).name if Path(path).parent.as_posix() in (".", "conf/cli") else None
    for candidate in ((name, f"{name}.yaml") if name else ()):
        if (CONFIG_DIR / "cli" / candidate).is_file():
            return str(CONFIG_DIR / "cli" / candidate)
    if any(mark in path for mark in "{}[]:\n"):
        return path  # inline YAML or JSON: jsonargparse reads it

    shipped = sorted(config.stem for config in (CONFIG_DIR / "cli").glob("*.yaml"))
    close = difflib.get_close_matches(Path(path).stem, shipped, n=1)
    guess = f"did you mean --config {close[0]}? " if close else ""
    raise UserError(f"--config {path}: no such file, nor a config that ssgan ships; {guess}give a YAML file, or one of: "
                    f"{', '.join(shipped)}")


def check_config_file(path: str) -> None:
    """A ``--config`` file that is no YAML mapping of settings is one line naming the file and the fix.

    jsonargparse's own words name neither (``Problems parsing config: ... in "<unicode string>"``), and a
    file that is not UTF-8 text is a ``UnicodeDecodeError`` traceback."""
    import yaml

    if Path(path).is_dir():
        raise UserError(f"--config {path} is a folder; give a YAML file, e.g. --config {Path(path) / 'config.yaml'}")
    try:
        with open(path, encoding="utf-8") as config_file:  # the stream names the file in YAML's messages
            content = yaml.safe_load(config_file)
    except UnicodeDecodeError as error:
        line = Path(path).read_bytes()[:error.start].count(b"\n") + 1
        raise UserError(f"--config {path} is not UTF-8 text ({error.reason} on line {line}); "
                        "save it as UTF-8") from None
    except OSError as error:
        raise UserError(f"cannot read --config {path} ({error.strerror or error}); "
                        "ask for read access to it, or give a copy you can read") from None
    except yaml.YAMLError as error:
        where = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise UserError(f"--config {path} is not valid YAML: {where}; fix the file there") from None
    if content is None:
        raise UserError(f"--config {path} is empty; write settings in it (e.g. trainer: {{max_epochs: 20}}), or leave out --config")
    if not isinstance(content, dict):
        raise UserError(f"--config {path} holds a {type(content).__name__}, not settings; "
                        "write it as a mapping, e.g. trainer: {max_epochs: 20}")


def with_shipped_configs(args: Sequence[str]) -> list[str]:
    """``args`` with each ``--config`` (or ``-c``) value passed through ``shipped_config``."""
    resolved, args = [], list(args)
    for index, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        if equals and flag in ("--config", "-c"):
            arg = f"{flag}={shipped_config(value)}"
        elif index > 0 and args[index - 1] in ("--config", "-c"):
            arg = shipped_config(arg)
        resolved.append(arg)
    return resolved


def build_cli(args: Sequence[str] | None = None, run: bool = True) -> SSGANCLI:
    """The CLI object (``run=False`` only instantiates the model, datamodule and trainer)."""
    if args is None:  # from the command line: LightningCLI warns when it is given args as well as sys.argv
        sys.argv[1:] = with_shipped_configs(sys.argv[1:])
    return SSGANCLI(
        ClassifierModule, SemiSupervisedDataModule, subclass_mode_model=True, subclass_mode_data=True,
        args=None if args is None else with_shipped_configs(args), run=run, auto_configure_optimizers=False,
        save_config_callback=FitConfigKeptSaveConfigCallback, save_config_kwargs={"overwrite": True},
        # no prefixes of option names: --trainer.max_epoch=2 is a typo to report, not max_epochs
        parser_kwargs={"parser_mode": "omegaconf", "allow_abbrev": False,
                       **{subcommand: {"allow_abbrev": False} for subcommand in ("fit", "validate", "test", "predict")}},
    )


def show_progress_messages() -> None:
    """Prints ssgan's INFO messages (e.g. each self-training round's line) to stderr, as ``ssgan-train``
    does through Hydra's logging, unless the program that runs the CLI has set up logging itself."""
    ssgan_logger = logging.getLogger("ssgan")
    if logging.getLogger().handlers or ssgan_logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    ssgan_logger.addHandler(handler)
    ssgan_logger.setLevel(logging.INFO)


def _interpolation_message(error: Exception) -> str:
    """The one line for an ``${...}`` in a config (``--config`` file or command line) that cannot be resolved."""
    import re

    where = getattr(error, "full_key", None) or "a setting"
    reason = str(getattr(error, "msg", None) or error).strip().splitlines()[0]
    variable = re.search(r"Environment variable '([^']+)' not found", reason)
    if variable:
        name = variable.group(1)
        return (f"{where}: environment variable {name} is not set; set it, or give a default: "
                f"${{oc.env:{name},<default>}}")
    return f"{where}: cannot resolve its interpolation ({reason}); give the value itself, or a key that the config has"


def find_user_error(error: BaseException) -> UserError | None:
    """The ``UserError`` that ``error`` is, or wraps.

    jsonargparse wraps what a class's ``__init__`` raises (e.g. the datamodule's ``UserError`` for a bad
    ``data.root``) in its own ``ValueError``/``TypeError`` (``Does not validate against any of the Union
    subtypes``), raised ``from`` the original. So the chain is followed through ``__cause__`` (an explicit
    ``raise ... from``) and through ``__context__`` only where the outer error repeats the inner one's
    message (a re-wrap), never where another error merely happened while one was handled (a bug).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    from omegaconf.errors import InterpolationResolutionError

    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        if isinstance(current, InterpolationResolutionError):  # a config's ${...} that names nothing: a traceback
            return UserError(_interpolation_message(current))
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
        elif (context := current.__context__) is not None and not current.__suppress_context__ \
                and str(context) and str(context) in str(current):
            current = context
        else:
            current = None
    return None


def _refused_setting(error: BaseException) -> str | None:
    """The first line of the ``MisconfigurationException`` a class raised for one of its arguments, found in the
    chain of jsonargparse's errors around it (its "Does not validate against any of the Union subtypes" dump)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MisconfigurationException):
            return str(error).strip().splitlines()[0].replace("`", "") if str(error).strip() else None
        error = error.__cause__ or error.__context__
    return None


# ssgan-train's names of the data and model configs, and the classes ssgan-cli takes for them
CLASSES_BY_CONFIG_NAME = {
    "--data": {"digits": "DigitsDataModule", "mnist": "MNISTDataModule", "fashion_mnist": "FashionMNISTDataModule",
               "cifar10": "CIFAR10DataModule", "svhn": "SVHNDataModule", "folder": "FolderDataModule"},
    "--model": {"ssgan": "SSGAN", "supervised": "SupervisedBaseline"},
}


def _refuse_short_class_names(args: list[str]) -> None:
    """A one-line ``UserError`` for ``--data=mnist`` or ``--model=supervised`` (ssgan-train's config names), which
    jsonargparse reported as "expected NoneType"; it names the class that ``ssgan-cli`` takes."""
    for index, item in enumerate(args):
        flag, equals, value = item.partition("=")
        if flag not in CLASSES_BY_CONFIG_NAME:
            continue
        if not equals:
            value = args[index + 1] if index + 1 < len(args) else ""
        classes = CLASSES_BY_CONFIG_NAME[flag]
        if value.lower() in classes and value not in classes.values():  # SSGAN is the class, ssgan the config
            kind = "a datamodule class" if flag == "--data" else "a model class"
            raise UserError(f"{flag}={value} is ssgan-train's name; {flag} takes {kind}: {flag}={classes[value.lower()]} "
                            f"(one of {', '.join(classes.values())})")


def _refuse_linked_model_arguments(args: list[str]) -> None:
    """A one-line ``UserError`` for a model argument that comes from the data (``LINKED_MODEL_ARGUMENTS``) given on
    the command line: the link replaces it with the data's, so ``--model.init_args.num_classes=5`` went unused unseen."""
    names = {f"--model.{prefix}{key}": key for key in LINKED_MODEL_ARGUMENTS for prefix in ("init_args.", "")}
    for item in args:
        name = item.partition("=")[0]
        if name in names:
            raise UserError(f"{name} comes from the data (its image shape and classes), not from a setting; leave it out, "
                            "and choose the data with --data (or --data.init_args.root for your own images)")


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point ``ssgan-cli``."""
    from ssgan.command_line import empty_cache_dir_is_unset, escape_unencodable_output
    from ssgan.train import (close_process_group, failed_write_message, hide_lightning_noise, leave_process_group,
                             log_write_errors_quiet, monitored_metric_error)

    escape_unencodable_output()
    empty_cache_dir_is_unset()
    show_progress_messages()
    hide_lightning_noise()
    SSGANCLI.built_trainer = None
    try:
        given = list(sys.argv[1:] if args is None else args)
        _refuse_linked_model_arguments(given)
        _refuse_short_class_names(given)
        with sigterm_stops_outside_lightning(), log_write_errors_quiet():  # a stop while the data are read: one line
            close_process_group(build_cli(args).trainer)
    except SIGTERMException:  # Lightning stops the loop on SIGTERM with a SystemExit of status 0
        _exit_stopped("SIGTERM", 15)
    except SystemExit as stop:
        if not isinstance(stop.__context__, KeyboardInterrupt):
            raise  # --help, a parser error: their own exit
        _exit_stopped("Ctrl-C", 2)  # Lightning's handler turns Ctrl-C into a bare exit(1), as after a crash
    except KeyboardInterrupt:  # Ctrl-C outside Lightning's loops (e.g. while the data are read)
        _exit_stopped("Ctrl-C", 2)
    except DivergenceError as error:
        print(f"error: {_divergence_message(error, SSGANCLI.built_trainer)}", file=sys.stderr)
        leave_process_group()
        sys.exit(2)
    except Exception as error:
        trainer = SSGANCLI.built_trainer
        failure = None
        if isinstance(error, OSError):  # a write that failed mid-run (a full disk): one line and how to go on
            failure = failed_write_message(error, Path(trainer.log_dir or trainer.default_root_dir) if trainer else Path.cwd())
        if failure is not None:
            print(f"error: {failure}; the run stopped, {_resume_advice(trainer)}", file=sys.stderr)
            leave_process_group()
            sys.exit(2)
        user_error = find_user_error(error) or monitored_metric_error(error)
        if user_error is None:
            raise  # a bug or a crash: keeps its traceback
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(2)
    finally:
        SSGANCLI.built_trainer = None  # nothing keeps the run's model and data alive


def _exit_stopped(how: str, signal_number: int) -> None:
    """Ends a run stopped by a signal with one line saying how to go on, and the signal's exit status
    (as a process killed by it: a scheduler or ``&&`` sees that it did not finish)."""
    from ssgan.train import leave_process_group

    with ctrl_c_ignored():  # a second Ctrl-C must not cut this short
        print(f"error: stopped by {how} before the run finished; {_resume_advice(SSGANCLI.built_trainer)}", file=sys.stderr)
        leave_process_group()
    sys.exit(128 + signal_number)


def _is_fitting(trainer: Trainer | None) -> bool:
    from pytorch_lightning.trainer.states import TrainerFn

    return trainer is not None and trainer.state.fn == TrainerFn.FITTING


def _newest_checkpoint(trainer: Trainer) -> Path | None:
    """The newest checkpoint file that ``trainer``'s checkpoint callbacks saved, if any."""
    saved = {Path(path) for callback in trainer.checkpoint_callbacks
             for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")) if path}
    # the newest; of two saved together (best and last at an epoch's end), last.ckpt
    saved = sorted((path for path in saved if path.is_file()),
                   key=lambda path: (path.stat().st_mtime, path.name.startswith("last")))
    return saved[-1] if saved else None


def _resume_advice(trainer: Trainer | None) -> str:
    """How to go on after a stop: for a fit, the newest checkpoint this run saved, if any."""
    if not _is_fitting(trainer):
        return "run the same command again"  # validate, test or predict: nothing to resume
    newest = _newest_checkpoint(trainer)
    if newest is None:
        return "it saved no checkpoint, so start it again"
    return f"resume it with the same command and --ckpt_path {newest}"


def _divergence_message(error: DivergenceError, trainer: Trainer | None) -> str:
    """``ssgan-train``'s line for a run that diverged, in ``ssgan-cli``'s spelling."""
    if not _is_fitting(trainer):  # validate or test of a checkpoint whose outputs are not finite
        return f"the checkpoint's outputs are not finite ({error}); give the checkpoint of a run that did not diverge"
    return diverged_message(error, _newest_checkpoint(trainer), "--model.init_args.gradient_clip_val")


if __name__ == "__main__":
    main()
