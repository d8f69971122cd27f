"""Where the Hydra configs live, and a friendly check of config group choices."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from ssgan.errors import UserError


def _find_config_dir() -> Path:
    """The shipped configs (``ssgan/conf`` in an installed wheel), else the repository's ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"ssgan's Hydra configs are missing: neither {here / 'conf'} nor {here.parent / 'conf'} exists")


CONFIG_DIR = _find_config_dir()


def group_options(group: str) -> list[str]:
    """The options of a config group, e.g. ``group_options("data")`` -> ``["cifar10", "digits", ...]``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


# Hydra's command-line flags that take the next word as their value
_HYDRA_FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                           "--config-dir", "-cd", "--info", "-i", "--experimental-rerun")


def parsed_overrides(arguments: list[str]) -> list[Any]:
    """The command line's overrides as Hydra reads them (its ``Override`` objects: key, sweep or element
    value, ``+``/``~``), flags and their values left out; [] when Hydra cannot read them (its own error says why)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides, after_flag = [], False
    for argument in arguments:
        if argument.startswith("-") and not argument.startswith("~"):
            after_flag = argument in _HYDRA_FLAGS_WITH_VALUE
            continue
        if not after_flag:
            overrides.append(argument)
        after_flag = False
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except Exception:  # e.g. an unbalanced bracket: Hydra's own parser reports it
        return []


def hydra_value(text: str) -> str:
    """``text`` written as an override value that Hydra reads back as ``text``: quoted where its grammar would
    read it otherwise (a comma, brackets, a non-ASCII letter, ...)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()

    def reads_back(value: str) -> bool:
        try:
            override = parser.parse_override(f"key={value}")
        except Exception:  # Hydra's grammar cannot read it as written
            return False
        return not override.is_sweep_override() and override.value() == text

    if reads_back(text):
        return text
    # Double quotes first: the shell's single quotes then wrap the value whole. Inside quotes Hydra reads
    # backslashes as escapes only where they stand before a quote or at the end of the value: those runs are
    # doubled and the quote escaped; every other backslash (a\b,c) stays as written.
    for quote in ('"', "'"):
        escaped = re.sub(rf"(\\*)({quote}|$)", lambda found: found[1] * 2 + ("\\" + found[2] if found[2] else ""), text)
        if reads_back(quote + escaped + quote):
            return quote + escaped + quote
    return text


def check_override_syntax(arguments: list[str]) -> None:
    """A one-line ``UserError`` for an override that Hydra's grammar cannot read, instead of Hydra's lexer
    report and a link: ``data.root=~/fm`` (``~`` is Hydra's, and the shell leaves it there) is told to quote
    its value, when quoting reads; another one (``seed=range(0,3``) gets Hydra's own reason.
    Bare words are ``check_bare_words``'s."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    def parse_error(override: str) -> OverrideParseException | None:
        try:
            OverridesParser.create().parse_overrides([override])
        except OverrideParseException as error:
            return error
        return None

    after_flag = False
    for argument in arguments:
        if argument.startswith("-") and not argument.startswith("~"):
            after_flag = argument in _HYDRA_FLAGS_WITH_VALUE
            continue
        if after_flag:
            after_flag = False
            continue
        error = parse_error(argument) if "=" in argument else None
        if error is None:
            continue
        key, _, value = argument.partition("=")
        if '"' not in value and "'" not in value and not value.startswith(("[", "{")) and "(" not in value \
                and parse_error(f'{key}="{value}"') is None:
            raise UserError(f"cannot read {argument}: its value holds a character that Hydra's override grammar "
                            f"reserves (such as ~ # ; & or a non-ASCII letter); quote the value, e.g. {key}='\"{value}\"'")
        lines = [line.strip() for line in str(error).splitlines()
                 if line.strip() and not line.startswith("See ") and line.strip() != "^"]
        reason = lines[1] if lines and lines[0].startswith("Error parsing override") and len(lines) > 1 else (
            lines[0] if lines else "")
        raise UserError(f"cannot read {argument}: {reason}; see Hydra's override grammar, "
                        "https://hydra.cc/docs/advanced/override_grammar/basic")


def swept_values(override: Any, options: list[str] | None = None) -> list[Any]:
    """The values an override takes: its sweep's (``a,b``, ``choice(a,b)``, ``glob(*)`` over ``options``,
    ``range(...)``) or its one value."""
    if override.value_type is not None and override.value_type.name == "GLOB_CHOICE_SWEEP":
        return override.value().filter(options or [])
    if override.is_sweep_override():
        try:
            return list(override.sweep_iterator())
        except Exception:  # an interval sweep, which only a sweeper plugin samples
            return []
    return [override.value()]


def launcher_options() -> list[str]:
    """The ``hydra/launcher`` options: ssgan's (conf/hydra/launcher) and those of the installed Hydra plugins."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIG_DIR)))
    return loader.get_group_options("hydra/launcher")


# ssgan's launchers, and the Hydra plugin (and the pip extra with it) that each one builds on
LAUNCHER_PLUGINS = {"local": ("joblib", "hydra-joblib-launcher"), "slurm": ("submitit_slurm", "hydra-submitit-launcher")}


def check_launcher_choice(overrides: list[Any]) -> None:
    """A one-line ``UserError`` for a ``hydra/launcher`` that does not exist, or whose plugin is not installed."""
    for override in overrides:
        if override.key_or_group != "hydra/launcher" or override.is_delete():
            continue
        options = launcher_options()
        for choice in swept_values(override, options):
            plugin = LAUNCHER_PLUGINS.get(str(choice))
            if plugin is not None and plugin[0] not in options:
                raise UserError(f"hydra/launcher={choice} needs the {plugin[1]} plugin, which is not installed; "
                                "pip install 'ssgan[cluster]'")
            if str(choice) not in options:
                raise UserError(f"unknown launcher '{choice}'; use hydra/launcher= one of: {', '.join(options)}")


def check_group_choices(arguments: list[str]) -> None:
    """Raises a one-line ``UserError`` for ``group=option`` overrides naming an option that does not exist
    (``group=a,b``, ``choice(...)`` and ``glob(...)`` sweeps too), ``group=null``, or a group that is no choice
    of the command line (``cli``, ``experiment_model``)."""
    for argument in arguments:
        if argument.lstrip("+").startswith("cli="):  # a folder of conf/, so Hydra lists it, but no part of train.yaml
            options, given = group_options("cli"), argument.partition("=")[2].split(",")[0]
            raise UserError(f"conf/cli/ holds the example configs of ssgan-cli (the Lightning CLI), not settings of "
                            f"ssgan-train; run e.g. ssgan-cli fit --config {given if given in options else options[0]}")
    overrides = parsed_overrides(arguments)
    check_launcher_choice(overrides)
    for override in overrides:
        group = override.key_or_group
        if group == "experiment_model":  # train.yaml picks it from the two choices, so a choice here would contradict them
            raise UserError("experiment_model follows experiment and model (experiment=cifar10_4000 model=ssgan picks "
                            "cifar10_4000_ssgan); set experiment= and model= instead")
        if override.is_add() or override.is_delete() or override.package is not None or "." in group or "/" in group \
                or not (CONFIG_DIR / group).is_dir():
            continue
        options = group_options(group)
        if override.value_type is not None and override.value_type.name == "ELEMENT" and override.value() is None:
            leave_out = f"use {group}=none" if "none" in options else (
                f"leave out the {group}= override (no {group} is the default)" if group in OPTIONAL_GROUPS
                else f"use {group}= one of: {', '.join(options)}")
            raise UserError(f"{group}=null is not an option of {group}; {leave_out}")
        noun = "data set" if group == "data" else f"{group} option"
        values = swept_values(override, options)
        if override.value_type is not None and override.value_type.name == "GLOB_CHOICE_SWEEP" and not values:
            raise UserError(f"{override.input_line} matches no {noun}; the options are: "
                            f"{', '.join(options)}")
        # a list chooses several options of one group at once (logger=[csv,tensorboard])
        choices = [item for value in values for item in (value if isinstance(value, list) else [value])]
        for choice in choices:
            if str(choice) not in options:
                raise UserError(f"unknown {noun} '{choice}'; use {group}= one of: {', '.join(options)}")


def node_device_count(accelerator: Any, devices: Any) -> int | None:
    """How many devices of each node the trainer settings take, as a cluster must be asked for them;
    None when only the node can tell (``devices=-1`` or ``auto`` on GPUs) or for a value Lightning refuses."""
    if isinstance(devices, bool) or devices is None:
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, str):
        text = devices.strip()
        if text == "auto":
            return 1 if str(accelerator) == "cpu" else None  # Lightning's auto is one process on a CPU
        if "," in text:  # device indices, "0,1"
            return len([part for part in text.split(",") if part.strip()]) or None
        return int(text) if text.isdigit() and int(text) > 0 else None
    try:
        return len(list(devices)) or None  # a list of device indices
    except TypeError:
        return None


def _slurm_gpus_per_node(accelerator: Any, devices: Any) -> int | None:
    # null: no GPU asked for (submitit leaves the option out); a CPU trainer needs none
    return None if str(accelerator) == "cpu" else node_device_count(accelerator, devices)


def register_resolvers() -> None:
    """The resolvers of ssgan's configs (``conf/hydra/launcher/slurm.yaml`` asks SLURM for the trainer's devices)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("ssgan.node_devices", node_device_count, replace=True)
    OmegaConf.register_new_resolver("ssgan.slurm_gpus", _slurm_gpus_per_node, replace=True)


register_resolvers()


# Config groups whose default is no option at all (train.yaml: ``experiment: null``, ``optional sweep: null``)
OPTIONAL_GROUPS = ("experiment", "sweep")


def check_plain_sweeps(arguments: list[str], multirun: bool) -> None:
    """Outside a multirun, a one-line ``UserError`` for a setting given several values (``trainer.devices=0,1``):
    Hydra's own message spans several lines and does not say how to write a list or a text with a comma."""
    if multirun:
        return
    for override in parsed_overrides(arguments):
        if override.is_sweep_override() and not override.key_or_group.startswith("hydra"):
            key = override.key_or_group
            text = override.input_line.partition("=")[2] if override.input_line else "..."
            one_value = ""
            if override.value_type.name == "SIMPLE_CHOICE_SWEEP" and not (CONFIG_DIR / key).is_dir():
                one_value = f", or write one value: a list as {key}=[{text}] or a text as \"{key}='{text}'\""
            raise UserError(f"{key}={text} gives several values, which only a sweep runs (one job each); add -m to "
                            f"sweep them{one_value}")


# Hydra's modes, of which a command takes one ("Only one of --run, --multirun, --cfg, --info and
# --shell_completion can be specified", a traceback)
_HYDRA_MODES = {"--run": "-r", "--multirun": "-m", "--cfg": "-c", "--info": "-i", "--shell-completion": "-sc"}


def check_one_hydra_mode(arguments: list[str]) -> None:
    """A one-line ``UserError`` for a command line with two of Hydra's modes, e.g. ``-m ... --cfg job``."""
    given: dict[str, str] = {}
    for argument in arguments:
        flag = argument.split("=", 1)[0]
        for mode, short in _HYDRA_MODES.items():
            if flag in (mode, short):
                given.setdefault(mode, flag)
    if len(given) > 1:
        first, second = list(given.values())[:2]
        fix = (" (to see a sweep's config, drop -m and give one value of each swept setting)"
               if {"--multirun", "--cfg"} <= set(given) else "")
        raise UserError(f"{first} and {second} do not go together: Hydra takes one of --run, --multirun, --cfg, --info "
                        f"and --shell-completion; drop one{fix}")


def check_bare_words(arguments: list[str]) -> None:
    """A one-line ``UserError`` for a word that is neither a ``key=value`` override nor a flag (Hydra's
    own message spans several lines): ``ssgan-train predict`` or ``ssgan-train data fashion_mnist``."""
    after_flag = False
    for argument in arguments:
        if argument.startswith("-"):
            after_flag = argument in _HYDRA_FLAGS_WITH_VALUE
            continue
        if after_flag or "=" in argument or argument.startswith("~"):  # ~key deletes a setting
            after_flag = False
            continue
        hint = ""
        if argument in ("predict", "extract", "sample", "export"):
            hint = f"; the tools are the ssgan command: ssgan {argument} ..."
        elif argument in ("fit", "validate", "test"):
            hint = f"; LightningCLI's subcommands are ssgan-cli's: ssgan-cli {argument} ..."
        raise UserError(f"'{argument}' is not a setting; give KEY=VALUE, e.g. data=fashion_mnist or "
                        f"trainer.max_epochs=20{hint}")


# the model's arguments that train() takes from the datamodule
DATA_GIVEN_MODEL_ARGUMENTS = ("model.image_shape", "model.num_classes", "model.class_names")


def check_override_keys(overrides: list[str]) -> None:
    """Raises a one-line ``UserError`` for a ``key=value`` override of a setting the config does not have.

    Hydra's own message for this spans several lines; this names the nearest existing settings.
    The config is composed with the command line's group choices (the first option of a sweep),
    so ``data=folder data.root=...`` is checked against the folder config.
    """
    import difflib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    plain: dict[str, str] = {}  # each setting's value, as given
    groups: list[str] = []
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key in DATA_GIVEN_MODEL_ARGUMENTS:  # train() passes the data's own: a value here would be dropped unseen
            raise UserError(f"{key} comes from the data (its image shape and classes), not from a setting; leave it out, "
                            "and choose the data with data=... (or data.root=... for your own images)")
        if "=" not in override or override.startswith(("-", "+", "~", "hydra.", "hydra/")):
            continue
        key, value = override.split("=", 1)
        if "." not in key and "/" not in key and (CONFIG_DIR / key).is_dir():
            groups.append(f"{key}={value.split(',')[0]}")
        elif "(" not in value:  # not a sweep function such as range(...)
            plain[key] = value
    if not plain:
        return
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=groups)
    except Exception:  # a bad group choice or value: Hydra's own checks report it
        return
    finally:
        GlobalHydra.instance().clear()
    for key, value in plain.items():
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key, default=None, throw_on_missing=False) if parent_key else cfg
        if OmegaConf.is_list(parent) or (parent is not None and not OmegaConf.is_config(parent)):
            continue  # a list index or a key below a plain value: Hydra's own checks report it
        siblings = [str(k) for k in parent.keys()] if OmegaConf.is_dict(parent) else []
        if leaf in siblings:  # keys.() lists mandatory (???) settings too
            continue
        settings = [name for name in siblings if name != "_target_"]
        close = difflib.get_close_matches(leaf, settings, n=1)
        hint = f"did you mean {parent_key + '.' if parent_key else ''}{close[0]}?" if close else (
            f"{parent_key or 'the config'} has: {', '.join(settings)}" if settings else "check its spelling")
        # e.g. trainer.max_time: a real argument of the class that the config leaves at its default
        target = parent.get("_target_") if OmegaConf.is_dict(parent) else None
        # (whether it is one would take importing the class: seconds, where this check takes about one)
        addition = (f"if it is an argument of {target} that the config does not list, add it with +{key}={value}"
                    if isinstance(target, str) else "prefix it with + to add a new key")
        raise UserError(f"unknown setting '{key}'; {hint} ({addition})")


def _init_parameters(cls: type, eval_str: bool = False):
    """The ``__init__`` parameters ``cls(...)`` takes, following ``**kwargs`` up the base classes' ``__init__``s."""
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__, eval_str=eval_str).parameters.values()
        yield from (p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self")
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break


def init_arguments(cls: type) -> set[str]:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` up to the base classes' ``__init__``."""
    return {parameter.name for parameter in _init_parameters(cls)}


def unknown_arguments(cls: type, arguments: dict[str, Any]) -> list[str]:
    """The keys of ``arguments`` that ``cls(...)`` does not take (Hydra's own ``_target_``-style keys aside);
    none if every ``__init__`` up its chain takes ``**kwargs``."""
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and not any(parameter.kind == parameter.VAR_KEYWORD for parameter
                                                 in inspect.signature(klass.__init__).parameters.values()):
            known = init_arguments(cls)
            return sorted(key for key in arguments if key not in known and not key.startswith("_"))
    return []


def recorded_class(class_path: Any, base: type, source: str | Path, what: str) -> type:
    """The class a checkpoint records (``ssgan_module``, ``ssgan_datamodule``), or a one-line ``UserError``.

    A checkpoint is data, not code: it may name only a subclass of ``base``, from ssgan itself or from a
    module this process has already imported (a user's own subclass, imported first). So a checkpoint
    from elsewhere cannot make ssgan import a module, nor call anything but such a class's ``__init__``
    (``torch.hub.load`` or ``subprocess.Popen`` with arguments of its choosing).
    """
    import sys

    text = class_path if isinstance(class_path, str) else repr(class_path)
    module_name, _, name = text.rpartition(".")
    # not ssgan.__main__ either: importing it runs ssgan-train
    ssgans = (module_name == "ssgan" or module_name.startswith("ssgan.")) and not any(
        part.startswith("__") for part in module_name.split("."))
    if not (ssgans or module_name in sys.modules):
        raise UserError(f"{source} records its {what} class as {text}, which is not ssgan's; ssgan loads only its own "
                        "classes from a checkpoint, or one whose module your Python code imported first")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise UserError(f"{source} records its {what} class as {text}, which this installation does not have "
                        f"({type(error).__name__}); load it with the ssgan version that wrote it") from None
    if not (isinstance(found, type) and issubclass(found, base)):
        raise UserError(f"{source} records its {what} class as {text}, which is not a {base.__name__}; the checkpoint is "
                        "damaged or not ssgan's")
    return found


def class_path(cls: type) -> str:
    """A class as checkpoints and configs record it, ``"package.module.Name"`` (``import_class``'s inverse)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(class_path: str) -> Any:
    """``"package.module.Name"`` -> the object it names (a class, as recorded in checkpoints)."""
    module_name, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def _expected_kind(annotation: Any) -> tuple[str, bool] | None:
    """What a plain-typed ``__init__`` argument takes: ``("int" | "float" | "bool" | "str", whether None is
    allowed)``, else None."""
    import types
    import typing

    allows_none = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        allows_none = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            return None
        annotation = members[0]
    if annotation in (int, float, bool, str):
        return annotation.__name__, allows_none
    return None


def fits_type(value: Any, type_name: str) -> bool:
    """Whether ``value`` is of the plain type named ``"int"``, ``"float"``, ``"bool"`` or ``"str"`` (an int is a
    float too)."""
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, not a number of anything here
        return False
    return isinstance(value, (int, float)) if type_name == "float" else isinstance(value, int)


def config_text(value: Any) -> str:
    """A value as it is written in a Hydra override: ``null``, ``true``, ``0.999``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def check_argument_types(cls: type, arguments: dict[str, Any], prefix: str) -> None:
    """Raises a one-line ``UserError`` for a setting that ``cls`` does not take, or whose value is not of
    its ``__init__`` type.

    Only plain types are checked (``int``, ``float``, ``bool``, ``str``, each perhaps ``| None``): the
    ``__init__`` signature is the schema, and Hydra passes a mistyped value (``seed=abc``) on as text, and
    reads a folder named ``2024`` as a number.
    """
    import difflib

    nouns = {"int": "a whole number", "float": "a number", "bool": "true or false"}
    own_checks = getattr(cls, "checks_own_argument_types", frozenset())  # with messages of the class's own
    unknown = unknown_arguments(cls, arguments)
    if unknown:  # e.g. +model.latent_dim=10 for the supervised baseline: Hydra's error would be a TypeError dump
        close = difflib.get_close_matches(unknown[0], sorted(init_arguments(cls)), n=1)
        hint = f"did you mean {prefix}.{close[0]}?" if close else "remove it"
        raise UserError(f"{prefix}.{unknown[0]} is not a setting of {cls.__name__}; {hint}")
    try:
        parameters = list(_init_parameters(cls, eval_str=True))
    except Exception:  # an annotation that names a type only a type checker imports
        return
    for parameter in parameters:
        kind = _expected_kind(parameter.annotation)
        if parameter.name not in arguments or kind is None or parameter.name in own_checks:
            continue
        value, (type_name, allows_none) = arguments[parameter.name], kind
        if (value is None and allows_none) or fits_type(value, type_name):
            continue
        key = f"{prefix}.{parameter.name}"
        default = parameter.default
        if type_name == "str":
            raise UserError(_not_text_message(key, value, default))
        hint = f"; e.g. {key}={config_text(default)}" if default not in (inspect.Parameter.empty, None) else ""
        shown = value if isinstance(value, str) else config_text(value)  # text as the user typed it
        if isinstance(value, str) and reads_as(value, type_name):  # '100', e.g. from ${oc.env:...}
            shown, hint = repr(value), f"{hint} (it is text: write ${{oc.decode:${{oc.env:...}}}} for a value from the environment)"
        raise UserError(f"{key}={shown} is not {nouns[type_name]}{hint}")


def _not_text_message(key: str, value: Any, default: Any) -> str:
    """The one-line error for a text setting given null (where it needs one) or a value Hydra did not read as text."""
    names_a_path = key.rpartition(".")[2].endswith(("root", "dir", "path", "file"))
    example = config_text(default) if isinstance(default, str) else "PATH" if names_a_path else "..."
    if value is None:
        return f"{key} needs a value, not null; e.g. {key}={example}"
    if names_a_path and isinstance(value, (bool, int, float)):  # a folder named 2024: Hydra reads the number
        kind = "true or false" if isinstance(value, bool) else "a number"
        typed = _typed_value(key) or config_text(value)  # 1.50 as typed, not the 1.5 Hydra read
        return f"{key}={typed} was read as {kind}, not a path; quote it: {key}='\"{typed}\"'"
    return f"{key}={config_text(value)} is not text; e.g. {key}={example}"


def _typed_value(key: str) -> str | None:
    """The text of ``key=VALUE`` (or ``+key=`` / ``++key=``) as typed on the command line, if it is there."""
    import sys

    for argument in reversed(sys.argv[1:]):
        name, sep, value = argument.lstrip("+").partition("=")
        if sep and name == key:
            return value
    return None


def reads_as(text: str, type_name: str) -> bool:
    """Whether ``text`` is a literal of the type (``"100"`` of int): a number that arrived as text."""
    text = text.strip()
    if type_name == "bool":
        return text.lower() in ("true", "false")
    try:
        int(text) if type_name == "int" else float(text)
    except ValueError:
        return False
    return True
