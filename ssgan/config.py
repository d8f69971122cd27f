"""Where the Hydra configs live, and a friendly check of config group choices."""

from __future__ import annotations

from pathlib import Path

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


def check_group_choices(overrides: list[str]) -> None:
    """Raises a one-line ``UserError`` for ``group=option`` overrides naming an option that does not exist."""
    for override in overrides:
        if "=" not in override or override.startswith(("-", "+", "~", "hydra.")):
            continue
        key, value = override.split("=", 1)
        group = key
        if "." in group or "/" in group or not (CONFIG_DIR / group).is_dir():
            continue
        options = group_options(group)
        for choice in value.split(","):
            if choice and choice != "null" and choice not in options:
                noun = "data set" if group == "data" else f"{group} option"
                raise UserError(f"unknown {noun} '{choice}'; use {group}= one of: {', '.join(options)}")
