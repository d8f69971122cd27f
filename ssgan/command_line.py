"""``ssgan-train``'s entry point and its checks of the command line, made before Hydra starts.

They need no torch and no Lightning, so a mistyped setting is reported at once; ``ssgan.train`` (the
training task) is imported only when the checks have passed.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback

from ssgan.atomic import saved_files, unwritable_reason
from ssgan.config import (CONFIG_DIR, check_bare_words, check_group_choices, check_one_hydra_mode, check_override_keys,
                          check_override_syntax, check_plain_sweeps, config_text, group_options, node_device_count, parsed_overrides, swept_values)
from ssgan.errors import UserError


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line naming the fix (``--help``), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}; see {self.prog} --help\n")


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count()


def _several_processes(trainer_cfg: Any) -> bool:
    """Whether the trainer settings ask for more than one device or node (so Lightning would choose DDP)."""
    devices, nodes = trainer_cfg.get("devices", "auto"), trainer_cfg.get("num_nodes", 1)
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("tpu", "mps") or isinstance(devices, bool):  # their own strategies; Lightning reports a bad value
        return False
    if str(nodes).strip().isdigit() and int(str(nodes)) > 1:
        return True
    gpus = _cuda_device_count() if accelerator in ("auto", "gpu", "cuda") else 0
    if isinstance(devices, int):
        return devices > 1 or (devices == -1 and gpus > 1)
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return gpus > 1
        return len([part for part in text.split(",") if part.strip()]) > 1 if "," in text else (text.isdigit() and int(text) > 1)
    return len(list(devices)) > 1 if devices is not None else False


class _DropLightningNoise(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger/litmodels" lines (adverts, not run output), and its
    lines on Ctrl-C and SIGTERM, which ssgan's own one line says again ("stopped by SIGTERM; resume it with ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not (text.startswith("💡 Tip:") or text.strip().startswith("Detected KeyboardInterrupt, attempting graceful")
                    or "Received SIGTERM: " in text)


def escape_unencodable_output() -> None:
    """Makes stdout, stderr and the log handlers' files (Hydra's ``train.log``) write what their encoding
    cannot (a file or class name that is not UTF-8, under a strict UTF-8 locale) as backslash escapes,
    instead of failing a print after the work is done or losing a log line. Called by the entry points,
    and again once Hydra has set up its logging."""
    streams = [sys.stdout, sys.stderr] + [getattr(handler, "stream", None) for handler in logging.getLogger().handlers]
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)  # absent on a stream a host replaced
        if reconfigure is not None:
            with contextlib.suppress(ValueError):  # a closed stream
                reconfigure(errors="backslashreplace")


def hide_lightning_noise() -> None:
    """Hides the messages Lightning prints on every ssgan run that ask nothing of the user.

    Called by the entry points (``ssgan-train``, ``ssgan-cli``), not on import: a program that
    imports ssgan as a library keeps its own warning and logging settings.
    """
    # ssgan logs its train/ metrics once per epoch (ClassifierModule.accumulate_train_metrics), so an
    # epoch shorter than log_every_n_steps loses no log line, whatever this warning advises
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")
    # an empty validation split (data.num_val=0): ssgan says so in its own words ("no validation images ...")
    warnings.filterwarnings("ignore", message=r"Total length of `\w+` across ranks is zero")
    # torch deprecated LeafSpec, which Lightning's own code still calls; nothing for a user to change
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    for name in ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.trainer.connectors.signal_connector"):
        lightning_logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLightningNoise) for f in lightning_logger.filters):
            lightning_logger.addFilter(_DropLightningNoise())


EARLIER_RUN_ASIDE = ".ssgan-overwritten"  # where overwrite=true keeps the earlier run's outputs until the new run saves its own


def last_checkpoints(output_dir: Path) -> list[Path]:
    """The run's last*.ckpt files anywhere below its folder, oldest first, leaving out an earlier run's set aside
    by overwrite=true (``EARLIER_RUN_ASIDE``): those are not this run's to resume."""
    found = [path for path in output_dir.rglob("last*.ckpt") if EARLIER_RUN_ASIDE not in path.relative_to(output_dir).parts]
    return sorted(found, key=lambda path: path.stat().st_mtime)


def _earlier_run(output_dir: Path) -> str | None:
    """What shows that ``output_dir`` holds an earlier run (its metrics or checkpoints), or None."""
    if (output_dir / "metrics.json").is_file():
        return "metrics.json"
    if saved_files(output_dir / "checkpoints", "*.ckpt"):
        return "checkpoints/, no metrics.json: it may have been killed"
    if any(path.is_file() for path in (output_dir / EARLIER_RUN_ASIDE).rglob("*")):
        return f"{EARLIER_RUN_ASIDE}/: a killed overwrite=true start set it aside; move its files back to resume it"
    return None


# How deep below a sweep's folder its job folders are looked for: hydra.sweep.subdir may nest them (${model}/${seed})
JOB_FOLDER_DEPTHS = (1, 2, 3)


def sweep_holds_runs(sweep_dir: Path, depth: int = 1) -> str | None:
    """A run that a multirun folder already holds, as ``<its folder>/<what shows it>``, or None: a folder (at most
    ``JOB_FOLDER_DEPTHS`` levels down, or ``depth``, as ``hydra.sweep.subdir`` nests jobs) with a metrics.json
    or checkpoints: an earlier sweep's job, or a single run's (``hydra.run.dir`` below it)."""
    if not sweep_dir.is_dir():
        return None
    for level in _depths(depth):
        for folder in sweep_dir.glob("*/" * level):
            shown = _earlier_run(folder) if folder.is_dir() else None
            if shown:  # the file or folder that shows it: "metrics.json", "checkpoints/, no metrics.json: ..."
                return f"{folder.relative_to(sweep_dir).as_posix()}/{shown.replace(',', ':').split(':')[0]}"
    return None


def _depths(depth: int) -> list[int]:
    return sorted({*JOB_FOLDER_DEPTHS, depth})


def _command_line_settings(args: list[str]) -> dict[str, str]:
    """``key=value`` arguments as a dict (a leading ``+`` dropped), each value as Hydra reads it (a quoted
    one without its quotes: ``hydra.run.dir='"/runs/a,b"'``); the last one of a key wins."""
    settings = {arg.lstrip("+").partition("=")[0]: arg.partition("=")[2] for arg in args if "=" in arg}
    for override in parsed_overrides(args):  # [] when Hydra cannot read the line: its own error says why
        key = override.key_or_group
        if key not in settings:
            continue
        if override.is_sweep_override():  # kept as written: a later sweep of the key replaces an earlier value
            settings[key] = (override.input_line or "").partition("=")[2] or settings[key]
        else:
            value = override.value()
            settings[key] = value if isinstance(value, str) else override.get_value_element_as_str()
    return settings


# Hydra's folder settings: Hydra makes these folders as written, so a "~" in them is a folder named "~"
FOLDER_SETTINGS = ("hydra.run.dir", "hydra.sweep.dir")


def check_home_shorthand(args: list[str]) -> None:
    """A one-line ``UserError`` for ``hydra.run.dir=~/...`` (quoted or not): the shell leaves a ``~`` that
    follows ``=``, and Hydra would make a folder named ``~`` in the working folder."""
    for arg in args:
        key, _, value = arg.lstrip("+").partition("=")
        folder = value.strip("'\"")
        if key in FOLDER_SETTINGS and folder.startswith("~"):
            example = f", e.g. {key}=$HOME{folder[1:]}" if folder == "~" or folder.startswith("~/") else ""
            raise UserError(f"{key}={value}: Hydra does not expand ~ and would make a folder named ~ in the working "
                            f"folder; write the folder's whole path{example}")


def _asks_for_multirun(args: list[str]) -> bool:
    return any(arg in ("-m", "--multirun") for arg in args) or \
        _command_line_settings(args).get("hydra.mode", "").upper() == "MULTIRUN"


def check_sweep_folder(args: list[str]) -> None:
    """Refuses a multirun into a ``hydra.sweep.dir`` given on the command line that holds an earlier sweep, at
    once (``SweepOutcome`` checks the folder the sweep resolves to, e.g. one set in a config file, again)."""
    sweep_dir = _command_line_settings(args).get("hydra.sweep.dir")
    if _asks_for_multirun(args) and sweep_dir:
        refusal = sweep_folder_refusal(Path(sweep_dir), f"hydra.sweep.dir={sweep_dir}")
        if refusal:
            raise UserError(refusal)


def sweep_folder_refusal(sweep_dir: Path, shown: str, depth: int = 1) -> str | None:
    """Why a sweep must not start in ``sweep_dir`` (``shown``: how the user set it), or None.

    A run's own folder: its jobs would go into subfolders of it, and a report would count that run too. An earlier
    sweep's runs: each job would refuse its folder, and with ``overwrite=true`` the job folders the new sweep does
    not reach would mix the earlier sweep's runs into its results. Hydra's records of jobs (``.hydra/``, another
    program's too, or of a sweep stopped before any job saved): Hydra writes each job's before the job can look."""
    if sweep_dir.resolve() == Path(sweep_dir.resolve().anchor):
        return None  # the file system's root: check_output_folder refuses it, without a walk of its folders
    own_run = _earlier_run(sweep_dir)
    if own_run:
        return f"{shown} is the folder of a run ({own_run}); choose another hydra.sweep.dir"
    found = sweep_holds_runs(sweep_dir, depth)
    if found:  # its jobs would refuse their folders, or the closing line and reports would count those runs
        return (f"{shown} already holds runs (e.g. {found}); choose another hydra.sweep.dir (or move them out of it "
                "to run the sweep there)")
    records = sweep_records(sweep_dir, depth)
    if records:
        return (f"{shown} holds Hydra's records of an earlier sweep ({records}), which this sweep would write over; "
                "choose another hydra.sweep.dir (or delete that folder to run the sweep there again)")
    return None


def sweep_records(sweep_dir: Path, depth: int = 1) -> str | None:
    """The ``.hydra/`` record of a job folder below ``sweep_dir`` (at most ``JOB_FOLDER_DEPTHS`` levels down, or
    ``depth``: ``hydra.sweep.subdir``'s), or None. A ``multirun.yaml`` alone is a sweep that ran no job (Hydra
    refused one's settings): the same command, corrected, goes on there."""
    if not sweep_dir.is_dir():
        return None
    record = next((path for level in _depths(depth) for path in sweep_dir.glob("*/" * level + ".hydra")
                   if path.is_dir()), None)
    return f"{record.relative_to(sweep_dir).as_posix()}/" if record is not None else None


def check_sweep_choice(args: list[str]) -> None:
    """A one-line ``UserError`` for a ``sweep=`` choice that would not run its sweep: without ``-m`` Hydra runs one
    job of the defaults and ignores the sweep's parameters, and with two sweeps (``-m sweep=a,b``) it sweeps the
    group itself and each job runs with neither sweep's parameters."""
    sweep = _command_line_settings(args).get("sweep")
    if not sweep or sweep.strip().lower() == "null":
        return
    names = [name.strip() for name in sweep.split(",") if name.strip()]
    if not _asks_for_multirun(args):
        if _only_shows(args):  # ssgan-train sweep=digits --cfg job shows what the sweep's jobs share
            return
        # one job of the sweep (its resume command, or one benchmark cell again) gives each swept setting one value
        outside = _composed_outside(args)
        params = (outside.hydra.sweeper.get("params") or {}) if outside else {}
        given = {override.key_or_group for override in parsed_overrides(args) if not override.is_sweep_override()}
        unset = [str(key) for key in params if str(key).lstrip("+~") not in given]  # +key: a key the config lacks
        if unset:
            raise UserError(f"sweep={sweep} sweeps {', '.join(unset)}, which a single run would leave at their defaults; "
                            f"add -m to run the sweep (ssgan-train -m sweep={names[0] if names else sweep} ...), or give "
                            "each one value to run one job of it")
        return
    if len(names) > 1 or any(char in sweep for char in "*()[]"):
        # the sweeps it names: choice(a,b), [a,b] and glob(...) read as Hydra reads them
        override = next((item for item in parsed_overrides(args) if item.key_or_group == "sweep"), None)
        values = swept_values(override, group_options("sweep")) if override else names
        named = [str(name) for value in values for name in (value if isinstance(value, list) else [value])]
        raise UserError(f"sweep={sweep} takes one sweep per command: Hydra would sweep the group itself and run none "
                        f"of the sweeps' parameters; run them one after the other "
                        f"({'; '.join(f'ssgan-train -m sweep={name}' for name in named)})")


# ssgan-train -m's exit status for a sweep that ran to its end with failed jobs: 1 is a crash's (Python's, Hydra's own)
SWEEP_WITH_FAILED_JOBS = 3


class SweepOutcome(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/train.yaml``): a sweep's folders checked before it starts, and
    its failed jobs counted when it ends.

    ``on_multirun_start`` sees the sweep as Hydra resolved it, wherever it was set (a config file, ``${now:...}``,
    ``hydra.mode: MULTIRUN`` without ``-m``): a folder that holds an earlier sweep, or a ``hydra.sweep.subdir`` that
    gives two jobs one folder, ends the command in one line (status 2) before any job. A failed job does not stop
    the sweep (its folder's ``metrics.json`` records the error); ``on_multirun_end`` reads those records, whatever
    launcher ran the jobs, so that ``ssgan-train -m`` ends with one line and status ``SWEEP_WITH_FAILED_JOBS``."""

    failure_line: str | None = None
    job_count: int | None = None  # the sweep's jobs, as the basic sweeper makes them (None: another sweeper's)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        cls = type(self)
        cls.failure_line = cls.job_count = None
        try:
            cls.job_count = check_sweep_start(config)
        except UserError as error:  # a SystemExit passes Hydra's error report: one line, as the other refusals
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        type(self).failure_line = failed_jobs_line(sweep_dir, type(self).job_count, _subdir_depth(config))


def _subdir(config: Any) -> str:
    """``hydra.sweep.subdir`` as written, its interpolations unresolved (each job resolves them)."""
    from omegaconf import OmegaConf

    return str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))


def _subdir_depth(config: Any) -> int:
    """How many folder levels ``hydra.sweep.subdir`` puts a sweep's jobs below its folder (``${model}/${seed}``: 2)."""
    return len([part for part in _subdir(config).split("/") if part]) or 1


def check_sweep_start(config: Any, most_composed: int = 300) -> int | None:
    """Refuses a sweep, as Hydra composed it, whose folders would mix with an earlier sweep's or with each other's
    (``UserError``); returns its number of jobs (None for a sweeper other than the basic one, or jobs that write
    outside the sweep's folder). Job folders that only each job's config tells (a subdir of ``${data.num_labeled}``)
    are checked for sweeps of up to ``most_composed`` jobs."""
    from omegaconf import OmegaConf

    subdir, depth = _subdir(config), _subdir_depth(config)
    sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
    refusal = sweep_folder_refusal(sweep_dir, f"hydra.sweep.dir={sweep_dir}", depth)
    if refusal:
        raise UserError(refusal)
    jobs = _sweep_jobs(config)
    # the closing line counts records in the sweep's folder: jobs that write elsewhere (paths.output_dir) are not known
    outputs_in_sweep = str(OmegaConf.to_container(config, resolve=False).get("paths", {}).get("output_dir")) \
        == "${hydra:runtime.output_dir}"
    count = len(jobs) if jobs is not None and outputs_in_sweep else None
    if jobs is None or "hydra.job.num" in subdir or "hydra.job.id" in subdir:
        return count
    if "${" not in subdir.replace("${hydra.job.override_dirname}", ""):
        folders = _override_dirname_folders(subdir, config, jobs)  # without composing each job
    elif len(jobs) <= most_composed:
        folders = _composed_folders(config, jobs)  # about 0.1 s a job, before the first job starts
    else:
        return count
    first_of: dict[str, int] = {}
    with contextlib.closing(folders):  # on a shared folder, the composing stops and Hydra's state is put back
        for number, folder in enumerate(folders):
            first = first_of.setdefault(folder, number)
            if first == number:
                continue

            def differing(mine: list[str], theirs: list[str]) -> str:  # what tells the two jobs apart
                return " ".join(item for item in mine if item not in theirs) or "the same settings"

            fix = ("make it name every swept setting, e.g. hydra.sweep.subdir='${hydra.job.override_dirname}'"
                   if "hydra.job.override_dirname" not in subdir else
                   "leave the swept settings out of hydra.job.config.override_dirname.exclude_keys")
            raise UserError(
                f"hydra.sweep.subdir={subdir} gives jobs #{first} ({differing(jobs[first], jobs[number])}) and "
                f"#{number} ({differing(jobs[number], jobs[first])}) one folder, {folder or 'the sweep folder itself'}, "
                f"where the second would find the first's run; {fix}, or leave it out (one folder a job number)")
    return count


def _sweep_jobs(config: Any) -> list[list[str]] | None:
    """Each job's overrides, as Hydra's basic sweeper makes them from the sweep's config (its params, then the
    command line's overrides, each key's last value winning; ``glob(...)`` read against the config's options);
    None for another sweeper, which picks its jobs' values as it goes."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = config.hydra.sweeper.get("params") or {}
    task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    try:
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        [jobs] = BasicSweeper.split_arguments(parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + task), None)
    except Exception:  # a sweep the basic sweeper refuses: Hydra's own error says why
        return None
    return jobs


def _override_dirname_folders(subdir: str, config: Any, jobs: list[list[str]]) -> Iterator[str]:
    """The jobs' folders for a ``subdir`` whose only interpolation is ``${hydra.job.override_dirname}``, as Hydra's
    config loader spells that name from a job's overrides (its ``hydra.job.config.override_dirname`` settings)."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    spelling = config.hydra.job.config.override_dirname
    parser = OverridesParser.create()
    for overrides in jobs:
        try:
            name = get_overrides_dirname(overrides=parser.parse_overrides(overrides), kv_sep=spelling.kv_sep,
                                         item_sep=spelling.item_sep, exclude_keys=list(spelling.exclude_keys))
        except Exception:  # Hydra's own error stops the sweep
            return
        yield subdir.replace("${hydra.job.override_dirname}", name)


def _composed_folders(config: Any, jobs: list[list[str]]) -> Iterator[str]:
    """The jobs' folders as Hydra's launcher resolves them (``load_sweep_config``, then ``run_job``'s number); one at a
    time, so that a shared folder stops the composing. It ends at a job that does not compose (Hydra says why)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    loader, before = GlobalHydra.instance().config_loader(), HydraConfig.instance().cfg
    try:
        for number, overrides in enumerate(jobs):
            try:
                job = loader.load_sweep_config(config, list(overrides))
                with open_dict(job):
                    job.hydra.job.num, job.hydra.job.id = number, f"job_id_for_{number}"
                HydraConfig.instance().set_config(job)  # for ${hydra:...} in the subdir
                folder = str(OmegaConf.select(job, "hydra.sweep.subdir"))
            except Exception:
                return
            yield folder
    finally:
        HydraConfig.instance().cfg = before


def failed_jobs_line(sweep_dir: Path, job_count: int | None = None, depth: int = 1) -> str | None:
    """One line on the jobs of the sweep in ``sweep_dir`` (job folders ``depth`` levels down) whose ``metrics.json``
    says they did not finish, or that left none (of ``job_count`` jobs, when known: killed, say); None when every
    job finished."""
    import json
    import re

    def natural(path: Path) -> list:  # job 2 before job 10
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]

    finished, failed = 0, []
    paths = sweep_dir.glob("*/" * depth + "metrics.json") if sweep_dir.is_dir() else []
    for path in sorted(paths, key=lambda path: natural(path.relative_to(sweep_dir))):
        if EARLIER_RUN_ASIDE in path.relative_to(sweep_dir).parts:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = {"status": "unreadable", "error": f"{path} is not readable JSON"}
        if not isinstance(record, dict):
            record = {"status": "unreadable", "error": f"{path} is not a JSON object"}
        if record.get("status") == "ok":
            finished += 1
        else:
            failed.append((path.parent.relative_to(sweep_dir).as_posix(), record))
    unrecorded = max(0, (job_count or 0) - finished - len(failed))
    if not failed and not unrecorded:
        return None
    total = max(job_count or 0, finished + len(failed))
    if not failed:
        return (f"{unrecorded} of {total} jobs of the sweep left no metrics.json (killed, or stopped before they began); "
                f"the others' are in {sweep_dir}")
    errors = [str(record.get("error") or record.get("status")) for _, record in failed]
    folder, _ = failed[0]
    if len(set(errors)) == 1 and not finished and not unrecorded:  # e.g. a data.root that no job finds: the error, once
        jobs = "the sweep's only job" if total == 1 else f"all {total} jobs of the sweep"
        return f"{jobs} failed: {errors[0]}"
    without = f", and {unrecorded} left no metrics.json" if unrecorded else ""
    return (f"{len(failed)} of {total} jobs of the sweep did not finish{without} (the first, in {sweep_dir / folder}: "
            f"{errors[0]}); each one's metrics.json holds its error")


def rounds_merge_methods(sweep: str, overrides: list[str], command: Callable[[str], str]) -> str | None:
    """The error when ``overrides`` set ``self_training.rounds`` while the sweep still runs ``self_training=none``
    jobs: the setting turns their rounds on too, so two methods would run as one and replace each other's runs (and
    ``self_training.rounds=0`` the other way round). ``command(extra overrides)`` spells a fix as the entry point runs it."""
    from omegaconf import OmegaConf

    from ssgan.config import CONFIG_DIR

    rounds = next((item for item in overrides if item.lstrip("+").partition("=")[0] == "self_training.rounds"), None)
    if rounds is None or rounds.partition("=")[2].strip() == "":
        return None
    rounds_off = rounds.partition("=")[2].strip() == "0"
    try:
        sweep_config = OmegaConf.load(CONFIG_DIR / "sweep" / f"{sweep}.yaml")
    except Exception:  # a sweep found elsewhere (hydra.searchpath), or none: ssgan-train says what it runs
        return None
    # the sweep's self_training choices: swept, else picked in its defaults list, else the group's default (none)
    picked = next((str(entry["override /self_training"]) for entry in sweep_config.get("defaults") or []
                   if hasattr(entry, "get") and "override /self_training" in entry), "none")
    choices = str(OmegaConf.select(sweep_config, "hydra.sweeper.params.self_training", default=picked))
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+") in ("self_training", "hydra.sweeper.params.self_training"):
            choices = value
    listed = choices.strip().removeprefix("choice(").removesuffix(")")  # Hydra's choice(none,default) too
    chosen = [choice.strip().strip("'\"") for choice in listed.split(",")]
    if rounds_off:  # the other way round: the self-training jobs would train no round, and merge with the baselines
        if not any(choice != "none" for choice in chosen):
            return None
        return (f"{rounds.lstrip('+')} turns the rounds off in every job, so the sweep's self-training jobs would run "
                f"without them and merge with the methods without self-training; leave it out (or run only those: "
                f"{command('self_training=none')})")
    if "none" not in chosen:
        return None
    return (f"{rounds.lstrip('+')} turns the rounds on in every job, so the sweep's self_training=none jobs would "
            f"self-train too and merge with the self-training methods; run those alone "
            f"({command('self_training=default ' + rounds.lstrip('+'))}), the others apart "
            f"({command('self_training=none')}), and report both folders with the benchmark's --report")


def check_sweep_methods(args: list[str]) -> None:
    """The label-fraction benchmark's refusal of ``self_training.rounds`` in a sweep whose methods it would merge,
    for the same sweep run as ``ssgan-train -m sweep=<name> ...``."""
    sweep = _command_line_settings(args).get("sweep")
    if not _asks_for_multirun(args) or not sweep:
        return
    name = sweep.split(",")[0].strip()
    merged = rounds_merge_methods(name, args, lambda extra: f"ssgan-train -m sweep={name} {extra} ...")
    if merged:
        raise UserError(merged)


def check_output_folder(args: list[str]) -> None:
    """A one-line ``UserError`` for a run (or sweep) folder that cannot be written, before Hydra's traceback."""
    setting = "hydra.sweep.dir" if _asks_for_multirun(args) else "hydra.run.dir"
    given = _command_line_settings(args).get(setting)
    # the default folders lie under the working folder; an interpolated one (runs/${now:%H-%M}) under the
    # folders before its first interpolation
    fixed = given.split("${", 1)[0] if given else ""
    known = bool(given) and (fixed == given or "/" in fixed)
    folder = Path(given) if given and fixed == given else Path(fixed[: fixed.rfind("/") + 1]) if known else Path.cwd()
    if given and fixed == given and folder.resolve() == Path(folder.resolve().anchor):
        # a run writes checkpoints/, csv/, samples/ and metrics.json into its folder (a sweep, one folder a job)
        whose = "the sweep's" if setting == "hydra.sweep.dir" else "the run's"
        raise UserError(f"{setting}={given} is the file system's root; give a folder of {whose} own, e.g. "
                        f"{setting}=/runs/{'sweep' if setting == 'hydra.sweep.dir' else 'first'}")
    reason = unwritable_reason(folder)
    if reason:
        where = f"{setting}={given}" if known else f"the working folder ({setting} is under it)"
        raise UserError(f"cannot write {where}: {reason}; give {setting}=<a folder you can write to>")


def check_launcher(args: list[str]) -> None:
    """Refuses a multirun through the SLURM launcher on a machine without SLURM, before Hydra makes the
    sweep's folder (submitit would stop with a traceback there). Only a multirun uses the launcher."""
    if not _asks_for_multirun(args) or shutil.which("srun") is not None:
        return
    if str(_composed_launcher(args)).endswith("SlurmLauncher"):
        raise UserError("hydra/launcher=slurm submits each job to SLURM, but this machine has no srun; run the command "
                        "on the cluster's login node, or use hydra/launcher=local (or no launcher) here")


def check_slurm_resources(args: list[str]) -> None:
    """Refuses a SLURM sweep whose jobs would ask SLURM for other resources than their trainer takes, before
    any job waits in the queue to fail: Lightning needs one SLURM task per device and the trainer's nodes.

    ``conf/hydra/launcher/slurm.yaml`` asks for them from the trainer settings. The launcher is built once,
    from the settings outside the sweep (Hydra leaves a sweep's values out of them), so every job must need
    what those ask for; a number only the node can tell (``devices=-1``) is refused, and so is a
    ``tasks_per_node`` or ``nodes`` given by hand that disagrees (``gpus_per_node`` by hand may ask for more).
    A trainer value given as an interpolation (``${oc.env:...}``) is left to Hydra: it is not checked.
    """
    from omegaconf import OmegaConf

    if not _asks_for_multirun(args):
        return
    outside = _composed_outside(args)
    if not outside or not str(outside.hydra.launcher.get("_target_")).endswith("SlurmLauncher"):
        return
    raw = OmegaConf.to_container(outside.hydra.launcher, resolve=False)  # nothing resolved: no job's context here
    by_hand = {key: raw.get(key) for key in ("tasks_per_node", "gpus_per_node", "nodes")
               if not (isinstance(raw.get(key), str) and "${" in raw[key])}
    jobs = _trainer_settings_of_jobs(args, outside)
    if jobs is None:
        return
    needs = {}  # (tasks a node, GPUs a node, nodes) -> the trainer settings of a job that needs them
    for settings in jobs:
        need = _slurm_need(settings)
        needs.setdefault(need, f"trainer.devices={config_text(settings['devices'])} trainer.num_nodes="
                         f"{config_text(settings['num_nodes'])}" + (" on the CPU" if need[1] is None else ""))
    if len(needs) > 1:
        raise UserError(f"the jobs of this sweep need different SLURM resources ({' and '.join(needs.values())}), but "
                        "the launcher asks once for the whole sweep; sweep one device count and accelerator per command")
    [(need, shown)] = needs.items()
    for key, index, reason in (("tasks_per_node", 0, "one SLURM task per device of trainer.devices"),
                               ("nodes", 2, "the nodes of trainer.num_nodes")):
        if key in by_hand and by_hand[key] != need[index]:
            raise UserError(f"hydra.launcher.{key}={config_text(by_hand[key])} but the trainer needs {need[index]} "
                            f"({reason}); leave hydra.launcher.{key} out, as it follows the trainer")
    following = [index for index, key in enumerate(("tasks_per_node", "gpus_per_node", "nodes")) if key not in by_hand]
    if following:
        asks = _slurm_need(dict(outside.trainer))  # what the launcher asks for where it follows the trainer
        if any(asks[index] != need[index] for index in following):
            raise UserError(f"the launcher asks SLURM once for the whole sweep, from the trainer settings outside it, "
                            f"but its jobs need other resources ({shown}); give the trainer outside the sweep (e.g. "
                            "trainer=cpu, not trainer=cpu,ddp_cpu), one command per trainer")


def _composed_outside(args: list[str]) -> Any:
    """The config of the command line's settings outside its sweeps, as Hydra builds the launcher and the
    sweeper from it; {} when it does not compose."""
    return _composed_overrides([override.input_line for override in parsed_overrides(args)
                                if not override.is_sweep_override()])


def _trainer_settings_of_jobs(args: list[str], outside: Any) -> list[dict[str, Any]] | None:
    """The trainer settings (all of them, with ``devices``, ``num_nodes`` and ``accelerator`` as each job gets
    them) of every job of the sweep; None when a choice does not compose or a value is an interpolation
    (Hydra resolves it in the job), which the checks then leave alone."""
    swept = _swept_settings(args, outside)
    keys = ("devices", "num_nodes", "accelerator")
    jobs = []
    for choice in swept.get("trainer", [None]):
        trainer_cfg = _composed(args, {"trainer": str(choice)} if choice else {}).get("trainer")
        if trainer_cfg is None:
            return None  # a bad choice: Hydra's own checks report it
        trainer_cfg = dict(trainer_cfg)
        # a setting given on the command line replaces the config's value in every job, so the jobs'
        # settings are the combinations of the given values (or of the config's, where none is given)
        values = [swept[f"trainer.{key}"] if f"trainer.{key}" in swept else [trainer_cfg.get(key)] for key in keys]
        if any(isinstance(value, str) and "${" in value for options in values for value in options):
            return None
        jobs += [{**trainer_cfg, **dict(zip(keys, job))} for job in itertools.product(*values)]
    return jobs


def _swept_settings(args: list[str], outside: Any) -> dict[str, list[Any]]:
    """Each setting's values in the jobs of a multirun, as Hydra reads them (``trainer.devices=[0,1]`` is one
    list, ``trainer.devices=1,2`` a sweep): the command line's, and the sweep params of the config outside
    the sweeps (``hydra.sweeper.params`` of a ``conf/sweep/`` file it chose), which the command line's replace."""
    params = outside.hydra.sweeper.get("params") if outside else None
    given = [f"{key}={value}" for key, value in (params or {}).items()]
    swept = {}
    for override in parsed_overrides(given) + parsed_overrides(args):
        if not override.is_delete():
            swept[override.key_or_group] = swept_values(override, group_options("trainer"))
    return swept


def _slurm_need(trainer_cfg: dict[str, Any]) -> tuple[int, int | None, Any]:
    """(tasks a node, GPUs a node or None, nodes) that a job of these trainer settings needs from SLURM; a
    one-line ``UserError`` for a device count only the node can tell."""
    devices, accelerator = trainer_cfg.get("devices"), trainer_cfg.get("accelerator")
    count = node_device_count(accelerator, devices)
    if devices == 0 and not isinstance(devices, bool):
        raise UserError("trainer.devices=0 is no number of devices; for the GPUs 0 and 1 write trainer.devices=[0,1] "
                        "(trainer.devices=0,1 is a sweep of 0 and 1)")
    if count is None:
        raise UserError(f"hydra/launcher=slurm must ask SLURM for each job's devices, but trainer.devices="
                        f"{config_text(devices)} leaves their number to the node; give it, e.g. "
                        "trainer.devices=4 (the GPUs of a node)")
    return count, None if str(accelerator) == "cpu" else count, trainer_cfg.get("num_nodes", 1)


def _composed_overrides(overrides: list[str]) -> Any:
    """The config that these overrides (none of them a sweep) compose to, with Hydra's own node; {} when they
    do not compose (Hydra's own checks report why)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=True)
    except Exception:
        return {}
    finally:
        GlobalHydra.instance().clear()


def check_multirun_processes(args: list[str]) -> None:
    """Refuses a multirun whose jobs would start DDP processes on this machine: Lightning starts the
    extra processes by running the command line again, ``-m`` and all, so each would run the sweep
    (or, in a joblib worker, fail). Under SLURM or torchrun the processes exist already."""
    if not _asks_for_multirun(args):
        return
    from pytorch_lightning.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if SLURMEnvironment.detect() or TorchElasticEnvironment.detect():
        return
    if str(_composed_launcher(args)).endswith("SlurmLauncher"):
        return  # each job runs on the cluster, as its own SLURM job
    jobs = _trainer_settings_of_jobs(args, _composed_outside(args))
    if jobs is not None and any(_several_processes(settings) for settings in jobs):
        raise UserError("a multirun cannot start DDP jobs of several processes on this machine (Lightning starts "
                        "them by running the whole command line again); run each DDP job as its own ssgan-train "
                        "command, or sweep with hydra/launcher=slurm on a cluster")


def _composed(args: list[str], choices_set: dict[str, str] | None = None) -> Any:
    """The config that the command line's group choices (the first option of a sweep, or ``choices_set``'s)
    compose to, with Hydra's own node; {} for a choice that does not compose."""
    settings = {}  # group -> its first option (of a sweep's)
    for override in parsed_overrides(args):
        group = override.key_or_group
        if override.is_delete() or not (group.startswith("hydra/") or (CONFIG_DIR / group).is_dir()) or "." in group:
            continue
        values = swept_values(override, group_options(group) if (CONFIG_DIR / group).is_dir() else None)
        if values and values[0] is not None:
            settings[group] = str(values[0])
    settings.update(choices_set or {})
    return _composed_overrides([f"{key}={value}" for key, value in settings.items()])


def _composed_launcher(args: list[str]) -> str | None:
    """The ``_target_`` of the launcher that the command line's group choices (the first option of a
    sweep) compose to, wherever it is chosen: on the command line, or in an experiment or sweep config."""
    composed = _composed(args)
    return composed.hydra.launcher.get("_target_") if composed else None


# Hydra's flags that print something (help, the composed config, information) and run no job
SHOWING_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")


def _only_shows(arguments: list[str]) -> bool:
    return any(argument.split("=", 1)[0] in SHOWING_FLAGS for argument in arguments)


def _shows_main() -> None:
    """Hydra's entry for a command line that only shows something: the same config as ``_hydra_main``'s."""
    import hydra

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
    def show(cfg: Any) -> None:  # Hydra never runs it: it prints what the flag asks for and returns
        raise AssertionError("a flag that only shows something ran the task")

    show()


def main() -> None:
    """Console entry point ``ssgan-train``: checks the command line, then hands over to Hydra.

    The checks import neither torch nor Lightning (a multirun's DDP check aside), so a mistyped setting
    is reported in about a second, not after the seconds those imports take; nor do ``--help``, ``--cfg``
    and ``--info``, which run no job.
    """
    escape_unencodable_output()
    hide_lightning_noise()
    empty_cache_dir_is_unset()
    try:
        _checked_and_run()
    except KeyboardInterrupt:  # during the checks or torch's imports, before a run began (a run's own Ctrl-C exits in it)
        print("error: stopped by Ctrl-C", file=sys.stderr)
        sys.exit(130)


def tools_main() -> None:
    """Console entry point ``ssgan`` (``ssgan.tools.main``), begun as ``main`` begins ``ssgan-train``: a Ctrl-C or
    SIGTERM in the seconds that torch and Lightning take to import ends in one line too, not a traceback."""
    _begin_after_imports("ssgan.tools")


def cli_main() -> None:
    """Console entry point ``ssgan-cli`` (``ssgan.cli.main``), begun as ``tools_main`` begins ``ssgan``."""
    _begin_after_imports("ssgan.cli")


def empty_cache_dir_is_unset() -> None:
    """An empty ``SSGAN_CACHE_DIR`` (``SSGAN_CACHE_DIR= ssgan-train``) counts as unset, as a shell user means it: the
    configs' ``${oc.env:SSGAN_CACHE_DIR,.cache/ssgan}`` would read it as "" and cache under the file system's root."""
    if "SSGAN_CACHE_DIR" in os.environ and not os.environ["SSGAN_CACHE_DIR"].strip():
        del os.environ["SSGAN_CACHE_DIR"]


def _begin_after_imports(module_name: str) -> None:
    """Imports ``module_name`` (and Lightning) where Ctrl-C and SIGTERM end the process with one line, then runs its
    ``main``, which sets its own handling of both for the run."""
    import importlib

    try:
        with _sigterm_says_so():
            entry_point = importlib.import_module(module_name).main
            importlib.import_module("pytorch_lightning")  # the tools import it only in their main
        entry_point()
    except KeyboardInterrupt:  # one the entry point did not take itself (while it read its arguments)
        print("error: stopped by Ctrl-C", file=sys.stderr)
        sys.exit(130)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM before the training task began: one line, the run record's temporary copy removed, and status 143.
    It exits here, rather than raising into whatever code the signal interrupted (an import that catches
    every exception would swallow the stop, and the run would go on)."""
    try:
        print("error: stopped by SIGTERM", file=sys.stderr, flush=True)
        train_module = sys.modules.get("ssgan.train")
        if train_module is not None and hasattr(train_module, "_RunRecord"):
            train_module._RunRecord.discard()
    finally:
        os._exit(143)


@contextlib.contextmanager
def _sigterm_says_so() -> Iterator[None]:
    """Within the block a SIGTERM ends the process with one line (``_exit_on_sigterm``), where Python's default
    ended it without a word, until the training task sets its own handler (``sigterm_default_again`` first).
    A sweep whose jobs run in other processes (the joblib or SLURM launcher) keeps it in its parent for the
    whole sweep: the parent then ends with that line, as it ended silently before, and the jobs are their
    launcher's. A handler set before (or SIGTERM ignored) is left as it is."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        sigterm_default_again()


def sigterm_default_again() -> None:
    """Puts SIGTERM's default back where ``_sigterm_says_so`` had set its handler (the training task, before
    it sets its own, which calls the one before it); any other handler is left as it is."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is _exit_on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _checked_and_run() -> None:
    SweepOutcome.failure_line = None  # an earlier sweep's, when main() runs again in one process
    with _sigterm_says_so():  # until the training task sets its own handler (sigterm_default_again)
        _check_command_line()
        if _only_shows(sys.argv[1:]):  # no run: Hydra prints and exits, without the seconds of torch's imports
            _shows_main()
            return
        from ssgan.train import _hydra_main, _RunRecord

        try:
            _RunRecord.save(sys.argv[1:])
            _hydra_main()
        finally:
            _RunRecord.discard()
    if SweepOutcome.failure_line:  # a sweep's failed jobs: a shell or CI must not take the sweep for a finished one
        print(f"error: {SweepOutcome.failure_line}", file=sys.stderr)
        sys.exit(SWEEP_WITH_FAILED_JOBS)


def _check_command_line() -> None:
    """The checks of ``sys.argv`` made before Hydra starts; a ``UserError`` exits with its one line and status 2."""
    try:
        check_one_hydra_mode(sys.argv[1:])
        check_bare_words(sys.argv[1:])
        check_home_shorthand(sys.argv[1:])
        check_override_syntax(sys.argv[1:])
        check_group_choices(sys.argv[1:])
        check_plain_sweeps(sys.argv[1:], multirun=_asks_for_multirun(sys.argv[1:]))
        check_override_keys(sys.argv[1:])
        check_sweep_folder(sys.argv[1:])
        check_sweep_choice(sys.argv[1:])
        check_sweep_methods(sys.argv[1:])
        check_launcher(sys.argv[1:])
        check_slurm_resources(sys.argv[1:])
        check_output_folder(sys.argv[1:])
        check_multirun_processes(sys.argv[1:])  # the last: it imports Lightning, for its cluster detection
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
