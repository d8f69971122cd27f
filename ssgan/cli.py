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
import io
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ssgan.callbacks import SyncedSigterm
from ssgan.data.datamodule import SemiSupervisedDataModule
from ssgan.config import import_class, init_arguments
from ssgan.cpu import keep_freed_memory
from ssgan.errors import UserError
from ssgan.module import ClassifierModule
from ssgan.self_training import SelfTraining, refuse_changed_schedule, refuse_mismatched_rounds


class SSGANCLI(LightningCLI):
    """Links the datamodule's image shape and classes into the model's arguments."""

    built_trainer: Trainer | None = None  # the last trainer built: main() names its checkpoint when a run is stopped

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.init_args.class_names", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """Checks ``--ckpt_path`` as soon as it is parsed: before anything is built or seeded, so a
        wrong path is one line and leaves no log folder behind."""
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
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand) if subcommand else None
        ckpt_path = config.get("ckpt_path") if config is not None else None
        if ckpt_path is not None and not _is_checkpoint_keyword(str(ckpt_path)) and not Path(ckpt_path).expanduser().is_file():
            what = "is a folder" if Path(ckpt_path).expanduser().is_dir() else "does not exist"
            raise UserError(f"--ckpt_path={ckpt_path} {what}; give the path of a .ckpt file that a run wrote "
                            "(e.g. lightning_logs/version_0/checkpoints/last.ckpt)")

    def _parse_ckpt_path(self) -> None:
        """Applies the hyperparameters saved in ``--ckpt_path`` to the model's config, as Lightning's own
        method does, for the checkpoints of both entry points: the model class is LightningCLI's
        ``_class_path`` entry or, in the checkpoints of ``ssgan-train``, which lack it, their
        ``ssgan_module`` entry. (Lightning's method knows only the first, and it skips a path that
        starts with ``~``.) Hyperparameters that do not fit are one line, not a parser dump."""
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
                model_class = import_class(class_path)
            except (ImportError, AttributeError, ValueError):
                model_class = None
            if not (isinstance(model_class, type) and issubclass(model_class, ClassifierModule)):
                raise UserError(f"--ckpt_path={ckpt_path}: its model class {class_path} is not an ssgan model in this "
                                "version of ssgan; give a checkpoint that ssgan-train or ssgan-cli wrote")
            unknown = sorted(set(hyper_parameters) - init_arguments(model_class))
            if unknown:
                raise UserError(f"--ckpt_path={ckpt_path}: its saved hyperparameters do not fit the model "
                                f"({class_path} takes no {', '.join(unknown)}); give a checkpoint that this "
                                "version of ssgan wrote")
        model = {"class_path": class_path, "dict_kwargs": hyper_parameters} if class_path else hyper_parameters
        parser_messages = io.StringIO()
        try:
            with contextlib.redirect_stderr(parser_messages):
                self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
        except SystemExit:
            lines = [line.strip() for line in parser_messages.getvalue().splitlines() if line.strip()]
            reason = next((line for line in lines if "not accepted" in line or "required" in line),
                          lines[-1] if lines else "")
            raise UserError(f"--ckpt_path={ckpt_path}: its saved hyperparameters do not fit the model ({reason}); "
                            "give a checkpoint that this version of ssgan wrote") from None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        from ssgan.train import _several_processes, trainer_setup_error

        trainer_config = self._get(self.config_init, "trainer", default={})
        if str(trainer_config.get("strategy", "auto")) == "auto" and _several_processes(trainer_config):
            # as in ssgan-train: plain DDP, Lightning's default for several devices, stops at the first GAN
            # step, where each optimizer's step leaves the other net's parameters without gradients
            kwargs.setdefault("strategy", "ddp_find_unused_parameters_true")
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (ValueError, RuntimeError, TypeError) as error:  # e.g. an unknown accelerator: Lightning's traceback
            raise trainer_setup_error(error, "the --trainer.* arguments") from None
        # whatever the config's callbacks, as in ssgan-train: a DDP run stops on SIGTERM instead of hanging
        trainer.callbacks.append(SyncedSigterm())
        SSGANCLI.built_trainer = trainer
        return trainer

    def before_fit(self) -> None:
        from ssgan.module import refuse_low_precision_weights
        from ssgan.train import check_trainer_counts, refuse_another_split, refuse_fewer_epochs, warn_if_bf16_is_slow

        # ssgan-train's checks of the same settings, before fit makes a log folder
        trainer_config = self.config["fit"]["trainer"]
        check_trainer_counts(trainer_config, lambda key: f"--trainer.{key}")
        refuse_low_precision_weights(trainer_config.get("precision") or "32-true")
        checkpoint = self._read_checkpoint()
        self._require_a_fitting_checkpoint(checkpoint)
        if checkpoint is not None:  # Lightning's own check is a traceback from inside fit
            refuse_another_split(f"--ckpt_path={self.config['fit']['ckpt_path']}", checkpoint, self.datamodule,
                                 lambda key: f"--data.init_args.{key}")
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
        keep_freed_memory()  # as ssgan-train does (ssgan.cpu)
        warn_if_bf16_is_slow(self.trainer)

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """The ``--ckpt_path`` file's contents, memory-mapped (no weights read); None without a local file,
        or for a checkpoint that torch's safe loader refuses (the Trainer's own load then reports it).
        A file that is no checkpoint at all (not a zip archive) is a one-line error."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or _is_checkpoint_keyword(str(ckpt_path)) or not Path(ckpt_path).expanduser().is_file():
            return None
        import zipfile

        import torch

        path = Path(ckpt_path).expanduser()
        if not zipfile.is_zipfile(path):  # torch saves checkpoints as zip archives
            raise UserError(f"--ckpt_path={ckpt_path} is not a checkpoint (not a zip archive, as torch saves them); "
                            "give a .ckpt file that a run wrote (e.g. lightning_logs/version_0/checkpoints/last.ckpt)")
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # one that needs the unsafe loader (or is damaged): not read here
            return None

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
        self._require_a_fitting_checkpoint(self._read_checkpoint())
        self.datamodule.setup("validate")  # loads the data once: Lightning's own setup() then returns at once
        if self._checkpoint_validation_count() == 0:
            raise UserError("the checkpoint's split holds no validation images (its run had data.num_val=0), and "
                            "validate uses that split: `ssgan-cli validate` has nothing to validate; fit with "
                            "--data.init_args.num_val=N (labeled images held out for validation)")
        if len(self.datamodule.split.val) == 0:
            raise UserError("no validation images (data.num_val=0): `ssgan-cli validate` has nothing to validate; "
                            "add --data.init_args.num_val=N (labeled images held out for validation)")

    def _checkpoint_validation_count(self) -> int | None:
        """Validation images in the split of ``--ckpt_path``, which restores it over the one drawn now
        (``SemiSupervisedDataModule.load_state_dict``); None without a checkpoint split."""
        checkpoint = self._read_checkpoint()
        if checkpoint is None:
            return None
        saved = self.datamodule.split_in(checkpoint)
        return len(saved["val"]) if saved is not None else None

    def before_test(self) -> None:
        self._require_test_images("test")

    def before_predict(self) -> None:
        self._require_test_images("predict")

    def _require_test_images(self, subcommand: str) -> None:
        """``test`` and ``predict`` read the test images: without them they would end silently with nothing.
        Their checkpoint must fit the data too."""
        self._require_a_fitting_checkpoint(self._read_checkpoint())
        self.datamodule.setup(subcommand)
        if not self.datamodule.has_test_set:
            root = getattr(self.datamodule, "root", None)
            where = f"add {root / 'test'}/<class name>/ images" if isinstance(root, Path) else "give a dataset with test images"
            raise UserError(f"no test images (a folder without test/): `ssgan-cli {subcommand}` has nothing to "
                            f"{subcommand}; {where}")


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
        return "; ".join([error, *(line.strip() for line in body)]) + f"; see {help_hint}"
    return f"{_argument_error(key.group(1), body)}; see {help_hint}"


def _argument_error(name: str, block: list[str]) -> str:
    """One line for the report (indented ``block``) under jsonargparse's ``Parser key "name":``."""
    for index, line in enumerate(block):
        if line.strip().startswith("- Problem with given class_path"):  # the class the config names
            class_path = re.search(r"class_path '([^']+)'", line)
            class_name = class_path.group(1) if class_path else "its class"
            depth = len(line) - len(line.lstrip())
            inner = []
            for later in block[index + 1:]:
                if len(later) - len(later.lstrip()) <= depth:
                    break
                inner.append(later)
            reason = inner[0].strip() if inner else "does not validate"
            required = re.match(r"the following arguments are required: (.+)", reason)
            if required:
                names = [argument.strip() for argument in required.group(1).split(",")]
                return f"--{name} ({class_name}) needs " + " ".join(f"--{name}.init_args.{a}=..." for a in names)
            nested = re.match(r'Parser key "([^"]+)":?$', reason)
            if nested:  # an argument of that class: its own report, named as it is given
                return _argument_error(f"{name}.init_args.{nested.group(1)}", inner[1:])
            return f"--{name} ({class_name}): {reason}"
    stripped = [line.strip() for line in block]
    given_type = next((line for line in stripped if line.startswith("Given value type:")), "")
    given = next((line.removeprefix("Given value:").strip() for line in stripped if line.startswith("Given value:")), None)
    nested_key = re.search(r"NestedArg\(key='([^']+)'", given or "") if "NestedArg" in given_type else None
    if nested_key:
        return f"--{name}: its option '{nested_key.group(1)}' is not accepted here"
    expected: list[str] = []
    for line in stripped:
        if not line.startswith("- ") or "Does not validate against" in line:
            continue
        what = line[2:].removeprefix("Expected ").removeprefix("a ")
        what = re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>$", r"\1", what)  # <class 'int'> -> int
        what = re.sub(r"^typing\.Literal(\[.*\])$", r"one of \1", what)
        if what not in expected:
            expected.append(what)
    if given is not None:
        return f"--{name}={given}: expected " + (" or ".join(expected) if expected else "another value")
    return f"--{name}: " + ("; ".join(stripped) if stripped else "does not validate")


def _is_checkpoint_keyword(ckpt_path: str) -> bool:
    """Whether Lightning resolves ``ckpt_path`` itself (``last``, ``best``, ``hpc``, ``registry``) or
    reads it through fsspec (``s3://...``), rather than from a local file."""
    lowered = ckpt_path.lower()
    return ckpt_path in ("last", "best", "hpc") or lowered == "registry" or lowered.startswith("registry:") \
        or "://" in ckpt_path


def shipped_config(path: str) -> str:
    """``path`` itself if it exists, else the example config of that name that ssgan ships (``conf/cli/``).

    So ``--config conf/cli/digits_ssgan.yaml`` (as README writes it) and ``--config digits_ssgan`` work
    from any folder, and after an install without the repository.
    """
    from ssgan.config import CONFIG_DIR

    try:
        if Path(path).exists():
            return path
    except OSError:  # not a file name: inline YAML or JSON, which jsonargparse also takes
        return path
    name = Path(path).name if Path(path).parent.as_posix() in (".", "conf/cli") else None
    for candidate in ((name, f"{name}.yaml") if name else ()):
        if (CONFIG_DIR / "cli" / candidate).is_file():
            return str(CONFIG_DIR / "cli" / candidate)
    return path  # jsonargparse reports the missing file


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
        save_config_kwargs={"overwrite": True}, parser_kwargs={"parser_mode": "omegaconf"},
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
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
        elif (context := current.__context__) is not None and not current.__suppress_context__ \
                and str(context) and str(context) in str(current):
            current = context
        else:
            current = None
    return None


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point ``ssgan-cli``."""
    from ssgan.train import close_process_group, hide_lightning_noise, leave_process_group

    show_progress_messages()
    hide_lightning_noise()
    SSGANCLI.built_trainer = None
    try:
        close_process_group(build_cli(args).trainer)
    except SIGTERMException:  # Lightning stops the loop on SIGTERM with a SystemExit of status 0
        print(f"error: stopped by SIGTERM before the run finished; {_resume_advice(SSGANCLI.built_trainer)}",
              file=sys.stderr)
        leave_process_group()
        sys.exit(128 + 15)  # as a process killed by SIGTERM: a scheduler or `&&` sees that it did not finish
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise  # a bug or a crash: keeps its traceback
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(2)
    finally:
        SSGANCLI.built_trainer = None  # nothing keeps the run's model and data alive


def _resume_advice(trainer: Trainer | None) -> str:
    """How to go on after a stop: for a fit, the newest checkpoint this run saved, if any."""
    from pytorch_lightning.trainer.states import TrainerFn

    if trainer is None or trainer.state.fn != TrainerFn.FITTING:
        return "run the same command again"  # validate, test or predict: nothing to resume
    saved = {Path(path) for callback in trainer.checkpoint_callbacks
             for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")) if path}
    # the newest; of two saved together (best and last at an epoch's end), last.ckpt
    saved = sorted((path for path in saved if path.is_file()),
                   key=lambda path: (path.stat().st_mtime, path.name.startswith("last")))
    if not saved:
        return "it saved no checkpoint, so start it again"
    return f"resume it with the same command and --ckpt_path {saved[-1]}"


if __name__ == "__main__":
    main()
