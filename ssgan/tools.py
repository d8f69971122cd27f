"""``ssgan``: the tools around a trained checkpoint (predict, extract, sample, export).

    ssgan predict CKPT PATH [PATH ...] --out preds.csv [--probabilities]
    ssgan extract CKPT --out features.npz [--data NAME] [--set KEY=VALUE ...]
    ssgan sample CKPT --n 1000 --out DIR [--floor 0.9]
    ssgan export CKPT --format onnx|torchscript [--out FILE]

Each takes a checkpoint that ``ssgan-train`` (or ``ssgan-cli fit``) wrote; ``--help`` on each
subcommand says more. Bad input ends with a one-line ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import copy
import csv
import difflib
import glob
import inspect
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ssgan.atomic import atomic_write, broken_link_reason, checkpoint_in_folder, readable_mode, saved_files, unwritable_reason
from ssgan.config import check_argument_types, import_class, init_arguments, recorded_class
from ssgan.errors import UserError

log = logging.getLogger("ssgan")


# ----------------------------------------------------------------------------------------- loading
def foreign_archive(path: str | Path) -> str | None:
    """Why a zip archive at ``path`` is no training checkpoint, read from its file list alone (nothing is
    unpickled): a TorchScript model (``ssgan export``'s ``.pt``, which torch's loader would open as a module),
    or a zip that torch did not save (an ``.npz``); None for anything else, which the loader then judges."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):  # no zip archive at all
        return None
    tops = {name.split("/", 1)[0] for name in names}
    # torch.save writes one folder holding data.pkl; a TorchScript archive adds its code/ and constants.pkl
    if len(tops) != 1 or not all("/" in name for name in names) or f"{next(iter(tops))}/data.pkl" not in names:
        return "is a zip archive that torch did not save (e.g. an .npz), not a checkpoint"
    top = next(iter(tops))
    if f"{top}/constants.pkl" in names or any(name.startswith(f"{top}/code/") for name in names):
        return "is a TorchScript model (as ssgan export writes it), not a training checkpoint"
    return None


def cut_short(path: str | Path) -> bool:
    """Whether a file that torch could not load is a zip archive (as torch saves checkpoints) that is not whole:
    one whose write stopped early (a full disk, a killed copy) or that was damaged since. Not some other file,
    nor a whole archive that the safe loader refused (a class of its own in the pickle)."""
    import zipfile

    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:  # not readable at all (no permission): not a question of damage
        return False
    if len(head) < 4:  # an empty .ckpt (a copy killed at its start), or one cut within the zip's first bytes
        return Path(path).suffix == ".ckpt" and b"PK\x03\x04".startswith(head)
    if head != b"PK\x03\x04":  # a zip archive's first local file header
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is not None  # a member whose checksum fails
    except (zipfile.BadZipFile, OSError, EOFError):  # no directory at the end, or a member shorter than it says
        return True


def other_checkpoint_advice(damaged: str | Path, setting: str, otherwise: str, use: str = "resume from",
                            quote: Callable[[str], str] = str) -> str:
    """What to ``use`` when the checkpoint ``damaged`` cannot be read: the newest other checkpoint that its run
    saved into its folder and that torch reads, with the epoch it was saved in, given as ``setting=PATH`` (the
    path written by ``quote``, as the command line takes it); without one, ``otherwise``."""
    damaged = Path(damaged).expanduser().resolve()
    for other in (path for path in saved_files(damaged.parent, "*.ckpt") if path.resolve() != damaged):
        epoch = checkpoint_epoch(other, saved_in=damaged.parent)
        if epoch is not None:
            return f"{use} the run's other checkpoint, saved in epoch {epoch}: {setting}={quote(str(other))}"
    return f"the run has no other readable checkpoint; {otherwise}"


def checkpoint_epoch(path: str | Path, saved_in: Path | None = None) -> int | None:
    """The epoch a training checkpoint was saved in; None for a file that torch cannot read as one, or (with
    ``saved_in``) one whose checkpoint callbacks saved into another folder (another run's, copied there)."""
    try:  # memory-mapped: only the epoch and the callbacks' small states are read
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        epoch = checkpoint["epoch"]
    except Exception:
        return None
    if saved_in is not None:
        folders = {os.path.realpath(state["dirpath"]) for state in (checkpoint.get("callbacks") or {}).values()
                   if isinstance(state, dict) and isinstance(state.get("dirpath"), str)}
        if os.path.realpath(saved_in) not in folders:
            return None
    return epoch if isinstance(epoch, int) else None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dictionary, checked to be an ssgan checkpoint."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a checkpoint file, e.g. {checkpoint_in_folder(path) or path / 'last.ckpt'}")
    if not path.is_file():  # a device, a pipe or a link to nothing is not missing, but no checkpoint either
        what = "is not a regular file" if path.exists() or path.is_symlink() else "does not exist"
        raise UserError(f"checkpoint {path} {what}; give a .ckpt file, e.g. <run>/checkpoints/last.ckpt")
    problem = foreign_archive(path)
    if problem:
        raise UserError(f"{path} {problem}; give a .ckpt that ssgan-train wrote")
    try:
        # torch's safe loader: ssgan's checkpoints hold tensors and plain types only, and a checkpoint from
        # elsewhere must not run its pickled code on this machine before any check
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if cut_short(path):
            raise UserError(f"{path} is damaged or cut short ({type(error).__name__}); give a whole .ckpt that "
                            "ssgan-train wrote") from None
        raise UserError(f"{path} is not a readable checkpoint ({type(error).__name__}); give a .ckpt that ssgan-train wrote") from None
    hyper_parameters = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hyper_parameters, dict) or "image_shape" not in hyper_parameters or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not an ssgan checkpoint (no ssgan hyperparameters); give a .ckpt that ssgan-train wrote")
    return checkpoint


def _init_args(hyper_parameters: dict[str, Any]) -> dict[str, Any]:
    """Saved hyperparameters as constructor arguments: without the keys that LightningCLI adds to
    them (``_class_path``, ``_instantiator``), which no ``__init__`` takes."""
    return {key: value for key, value in hyper_parameters.items() if not key.startswith("_")}


def load_module(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """The trained ``SSGAN`` or ``SupervisedBaseline`` of a checkpoint, in eval mode on ``device``."""
    from ssgan.module import SSGAN, ClassifierModule, SupervisedBaseline

    checkpoint = read_checkpoint(path)
    hyper_parameters = _init_args(checkpoint["hyper_parameters"])
    class_path = checkpoint.get("ssgan_module")
    module_class = (recorded_class(class_path, ClassifierModule, path, "model") if class_path
                    else SSGAN if "latent_dim" in hyper_parameters else SupervisedBaseline)
    hyper_parameters["data_init"] = False  # the weights come from the checkpoint
    try:
        module = module_class(**hyper_parameters)
        module.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as error:
        # torch's load_state_dict opens with "Error(s) in loading state_dict for SSGAN:", one line per mismatch after it
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        first_line = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]
        if len(lines) > 2 and lines[0].endswith(":"):
            first_line += f", and {len(lines) - 2} more"
        raise UserError(f"{path} does not match the net its hyperparameters describe ({first_line}); "
                        "the checkpoint is damaged or from another version of ssgan") from None
    return module.to(device).eval()


def resolve_device(accelerator: str) -> torch.device:
    """``auto`` / ``cpu`` / ``gpu`` / ``cuda`` / ``mps`` -> a torch device, or a one-line error."""
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--accelerator {accelerator}: no CUDA GPU is available here; use --accelerator cpu")
        return torch.device("cuda")
    if accelerator == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("--accelerator mps: MPS is not available here; use --accelerator cpu")
        return torch.device("mps")
    if accelerator == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown accelerator '{accelerator}'; use --accelerator auto, cpu, gpu or mps")


def _parse_settings(settings: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``KEY=VALUE`` strings -> (the values read as YAML: numbers, null, true, lists; the values as given).

    A value YAML cannot read (``@imgs``) or would cut short (``imgs #1``: a comment to YAML) is the text as given.
    """
    import yaml

    parsed, given = {}, {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise UserError(f"--set {setting} is not KEY=VALUE; e.g. --set root=/usr/share/datasets/fashion-mnist")
        key = key.removeprefix("data.")
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            loaded = value
        if isinstance(loaded, str) and loaded != value.strip() and value.strip()[:1] not in ("'", '"'):
            loaded = value
        parsed[key], given[key] = loaded, value
    return parsed, given


def _text_arguments(cls: type) -> set[str]:
    """The ``__init__`` arguments of ``cls`` typed as text or a path only (``str``, ``Path``, perhaps ``| None``)."""
    names = set()
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        words = set(re.findall(r"\w+", str(parameter.annotation)))
        if words & {"str", "Path"} and words <= {"str", "Path", "None", "Optional", "os", "PathLike"}:
            names.add(name)
    return names


def build_datamodule(checkpoint: dict[str, Any], data: str | None, settings: Sequence[str]) -> Any:
    """The datamodule the checkpoint was trained on (same data and split), or the ``data`` config named."""
    overrides, given = _parse_settings(settings)
    if data is not None:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        from ssgan.config import CONFIG_DIR, group_options

        if data not in group_options("data"):
            raise UserError(f"unknown data set '{data}'; use --data one of: {', '.join(group_options('data'))}")
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"data={data}"])
        # the data config's arguments, resolved (e.g. the cache folders), then the --set values
        init_args = {key: value for key, value in OmegaConf.to_container(cfg.data, resolve=True).items()
                     if key != "_target_"}
        init_args.update(overrides)
        missing = [key for key, value in init_args.items() if value == "???"]  # Hydra's mandatory values
        if missing:
            raise UserError(f"--data {data} needs {', '.join(missing)}; add "
                            + " ".join(f"--set {key}={'PATH' if key == 'root' else '...'}" for key in missing))
        datamodule_class = import_class(cfg.data._target_)
    else:
        stored = checkpoint.get("ssgan_datamodule")
        if stored is None:
            raise UserError("this checkpoint does not record its data; name them, e.g. --data fashion_mnist "
                            "--set root=/usr/share/datasets/fashion-mnist --set num_labeled=100")
        from ssgan.data.datamodule import SemiSupervisedDataModule

        stored_class = stored.get("class_path") if isinstance(stored, dict) else None
        datamodule_class = recorded_class(stored_class, SemiSupervisedDataModule, "the checkpoint", "data")
        init_args = {**_init_args(stored.get("init_args") or {}), **overrides}
        if "synthetic_labeled_dir" not in overrides:
            # the samples a run added to its labeled images are no images of the data set, whose features extract
            # writes: their folder, moved or deleted since, need not be there
            init_args["synthetic_labeled_dir"] = None
        # the checkpoint keeps the training machine's cache folders: where this machine cannot write them (a
        # checkpoint copied from elsewhere), this machine's own cache holds the split and the decoded images
        for key, subfolder in (("split_cache_dir", "splits"), ("image_cache_dir", "images")):
            if key not in overrides and init_args.get(key) is not None and unwritable_reason(init_args[key]):
                own = Path(os.environ.get("SSGAN_CACHE_DIR") or ".cache/ssgan") / subfolder
                log.info("data.%s=%s of the checkpoint cannot be written here; using %s", key, init_args[key], own)
                init_args[key] = str(own)
    # a folder named 2024 or yes is a name, not the number or the truth value YAML reads
    for key in _text_arguments(datamodule_class) & set(overrides):
        if isinstance(overrides[key], (bool, int, float)):
            overrides[key] = init_args[key] = given[key]
    accepted = init_arguments(datamodule_class)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(accepted), n=1)
        hint = f"; did you mean --set {close[0]}=...?" if close else ""
        raise UserError(f"--set {unknown[0]}: {datamodule_class.__name__} takes no argument '{unknown[0]}'{hint}")
    try:  # a mistyped value (--set split_seed=abc) named as ssgan-train names it, not as the comparison it breaks
        check_argument_types(datamodule_class, overrides, "data")
    except UserError as error:
        raise UserError(_with_how_to_set_here(error)) from None
    try:
        datamodule = datamodule_class(**init_args)
    except TypeError as error:  # an argument the class does not take
        raise UserError(f"--set does not fit {datamodule_class.__name__} ({error})") from None
    except UserError as error:  # its message names the training's data.* setting: say how to set it here
        raise UserError(_with_how_to_set_here(error)) from None
    try:
        datamodule.setup()
    except UserError as error:
        raise UserError(_with_how_to_set_here(error)) from None
    if data is None and not overrides:
        _warn_if_the_split_changed(checkpoint, datamodule)
    return datamodule


def _with_how_to_set_here(error: UserError) -> str:
    """A datamodule's error, with how the tools spell the settings it names; as it is if it names none (a folder
    that needs other files, say)."""
    how = _how_to_set_here(str(error))
    return f"{error} ({how})" if how else str(error)


def _how_to_set_here(message: str) -> str:
    """How the tools spell the ``data.KEY`` settings a datamodule's error names: ``--set KEY=VALUE``, each with
    the value the message gives as the fix (the one it opens with is the value given, which was wrong); ""
    if it names none."""
    settings: dict[str, str] = {}
    for named in re.finditer(r"\bdata\.(\w+)(?:=(\[[^\]]*\]|[^\s,;)]+))?", message):
        key, value, before = named.group(1), named.group(2), message[:named.start()]
        if named.start() == 0:
            settings.setdefault(key, "VALUE")  # the setting given, which was wrong
        elif value is not None:
            settings[key] = value  # a value the message gives as the fix
        elif before.count("(") <= before.count(")"):  # not one named in passing, in brackets
            settings.setdefault(key, "VALUE")
    if not settings:
        return ""
    return "here: " + ", ".join(f"--set {key}={value}" for key, value in settings.items())


def _warn_if_the_split_changed(checkpoint: dict[str, Any], datamodule: Any) -> None:
    """Warns when the split drawn now is not the one the checkpoint trained on (its files changed)."""
    saved = datamodule.split_in(checkpoint)
    if not saved or datamodule.split is None:
        return
    if not all(np.array_equal(np.asarray(saved[part]), indices) for part, indices in vars(datamodule.split).items()
               if part in saved):
        log.warning("the split drawn now differs from the one the checkpoint trained on (have the data's files "
                    "changed since?): the labeled, validation and unlabeled features are of the split drawn now")


# ------------------------------------------------------------------------------------------ helpers
# Suffixes that name a file format: an --out ending in one that its command does not write is a mistake
# (another dot in a name, features_lr0.1 or run.2024-01-01, is no format)
FORMAT_SUFFIXES = {".json", ".csv", ".txt", ".yaml", ".yml", ".npy", ".npz", ".pkl", ".ckpt", ".pt", ".pth", ".ptl",
                   ".onnx", ".png", ".jpg", ".jpeg", ".h5", ".safetensors"}


def output_file(out: str | Path, example_name: str, inputs: Sequence[str | Path] = (), writes: str | None = None,
                fits: Sequence[str] = (), hint: str = "") -> Path:
    """The file path ``--out`` names, checked: an existing file there is replaced, but a folder or one
    of the command's ``inputs`` (its checkpoint, the images it reads) is an error.
    ``example_name``: the file name the error messages suggest; ``writes``: what the file holds, given for a
    command whose file is read by its format, when the name's suffix is another format's (not
    ``example_name``'s, nor one of ``fits``). ``hint`` ends that error (another option that fits the suffix)."""
    if not str(out).strip():  # Path("") is the working folder
        raise UserError(f"--out is empty; give a file name, e.g. --out {example_name}")
    path = Path(out).expanduser()
    # a trailing slash names a folder, even one not made yet (but not an existing file's path with a slash typed after it)
    if path.is_dir() or (str(out).endswith(("/", os.sep)) and not path.is_file()):
        raise UserError(f"--out {out} is a folder; give a file name, e.g. --out {path / example_name}")
    # a device, a pipe, or /dev/stdout of a shell's redirect (a link to that file): the file renamed onto it would
    # replace it, and what else the shell wrote there with it
    if path.exists() and (not path.is_file() or path.absolute().is_relative_to("/dev")):
        raise UserError(f"--out {out} is not a regular file (a device or a pipe); give a file name, e.g. --out {example_name}")
    if path.exists() and any(Path(given).expanduser().exists() and path.samefile(Path(given).expanduser())
                             for given in inputs):
        other = path.with_name(example_name)
        if other.name == path.name:  # the input is itself named as the example (a checkpoint named model.pt)
            other = path.with_name(f"{Path(example_name).stem}_new{Path(example_name).suffix}")
        raise UserError(f"--out {out} is an input of this command and would be overwritten; "
                        f"give another file name, e.g. --out {other}")
    check_writable_parent(path, out)
    wanted, suffix = Path(example_name).suffix, path.suffix.lower()
    if writes is not None and suffix in FORMAT_SUFFIXES and suffix not in (wanted, *fits):
        # the name without its format suffixes: features.probe.json -> features.npz
        stem = path.name.split(".")[0] or Path(example_name).stem
        raise UserError(f"--out {out} is named as a {path.suffix} file, but this writes {writes}; give a name ending in "
                        f"{wanted}, e.g. --out {path.with_name(stem + wanted)}{hint}")
    return path


def check_writable_parent(path: Path, out: str | Path) -> None:
    """Refuses, before any work, an ``--out`` whose folder cannot be written (a file on its way, a read-only disk)."""
    # a link to a file is written through (atomic_write replaces its target, beside the target): check there
    linked = path.is_symlink() and path.exists()
    target = Path(os.path.realpath(path)) if linked else path.absolute()
    reason = unwritable_reason(target.parent)
    if reason:
        raise UserError(f"--out {out}{f' (a link to {target})' if linked else ''}: {reason}; give a path under a "
                        "folder you can write to")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file object: np.savez would append .npz to a name
        np.savez(handle, **arrays)


@torch.inference_mode()
def _forward_batches(module: Any, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities (N, K), features (N, F)) of uint8 images (N, C, H, W) from the evaluation net."""
    probabilities, features = [], []
    for chunk in images.split(batch_size):
        logits, hidden = module.classifier(module.to_input(chunk.to(module.device)))  # (B, K), (B, F)
        probabilities.append(torch.softmax(logits.float(), dim=1).cpu())
        features.append(hidden.float().cpu())
    num_classes = module.num_classes
    if not probabilities:
        return torch.empty(0, num_classes), torch.empty(0, 0)
    return torch.cat(probabilities), torch.cat(features)


# ------------------------------------------------------------------------------------------ predict
def predict(args: argparse.Namespace) -> None:
    """Class, confidence (and optionally every class's probability) of each image file under the PATHs."""
    from ssgan.data.images import is_image_file, read_images

    given = Path(args.checkpoint).expanduser()
    targets = [Path(path).expanduser() for path in args.paths]
    swapped = next((target for target in targets if target.is_file() and target.suffix == ".ckpt"), None)
    if swapped is not None and (not given.is_file() or is_image_file(given)):
        raise UserError(f"{swapped} is the checkpoint: it comes first, then the images; ssgan predict {swapped} "
                        f"{args.checkpoint}")
    device = resolve_device(args.accelerator)
    module = load_module(args.checkpoint, device)
    # (file, its name in the CSV): relative to its folder for one folder; as given for several paths, whose
    # files may share names; a file reached twice (a folder and a glob) is classified once
    named: dict[str, tuple[Path, str]] = {}
    for target in targets:
        for path in _images_of(target):
            name = (str(path.relative_to(target)) if target.is_dir() else path.name) if len(targets) == 1 else str(path)
            named.setdefault(os.path.realpath(path), (path, name))
    files = [path for path, _ in named.values()]
    names_in_csv = {path: name for path, name in named.values()}
    out = output_file(args.out, "preds.csv", [args.checkpoint, *files], writes="CSV text", fits=(".txt",))
    names = module.class_names
    rows, skipped = [], 0
    for start in range(0, len(files), args.batch_size):  # decode batch by batch: memory stays O(batch)
        batch_files = files[start:start + args.batch_size]
        images, kept, failed = read_images(batch_files, module.image_shape)
        skipped += len(failed)
        probabilities, _ = _forward_batches(module, images, args.batch_size)  # (B, K)
        confidence, predicted = probabilities.max(dim=1)
        for position, probs, label, conf in zip(kept, probabilities.tolist(), predicted.tolist(), confidence.tolist()):
            row = [names_in_csv[batch_files[position]], names[label], f"{conf:.6f}"]
            if args.probabilities:
                row += [f"{p:.6f}" for p in probs]
            rows.append(row)
    if not rows:
        if files == targets:
            raise UserError(f"{targets[0]} could not be read as an image (see the warning above); give a readable image")
        where = f"under {targets[0]}" if len(targets) == 1 else f"of the {len(targets)} paths given"
        raise UserError(f"none of the {len(files)} image(s) {where} could be read (see the warnings above); "
                        "replace the damaged files, or convert them to PNG")

    def write(temporary: Path) -> None:
        # surrogateescape writes a file name that is not valid UTF-8 back as its own bytes
        with open(temporary, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "class", "confidence"] + ([f"p_{name}" for name in names] if args.probabilities else []))
            writer.writerows(rows)

    atomic_write(out, write)
    note = f" ({skipped} unreadable file(s) skipped; see the warnings above)" if skipped else ""
    print(f"wrote {len(rows)} prediction(s) to {out}{note}")


def _images_of(target: Path) -> list[Path]:
    """The image files that a PATH given to ``predict`` names: itself, or those under the folder (recursively)."""
    from ssgan.data.images import IMAGE_SUFFIXES, list_images

    if target.is_dir():
        files = list_images(target, recursive=True)
        if not files:
            raise UserError(f"{target} holds no images ({' '.join(IMAGE_SUFFIXES)}, in it or in its subfolders but "
                            "hidden ones); give a folder that holds images, or an image file")
        return files
    if target.is_file():
        if target.suffix.lower() not in IMAGE_SUFFIXES:  # a hidden name given on purpose is taken
            raise UserError(f"{target} is not an image file; give a file ending in one of {' '.join(IMAGE_SUFFIXES)}"
                            " (convert it first), or a folder of images")
        return [target]
    what = "is not a regular file" if target.exists() or target.is_symlink() else "does not exist"
    raise UserError(f"{target} {what}; give an image file or a folder of images")


# ------------------------------------------------------------------------------------------ extract
def extract(args: argparse.Namespace) -> None:
    """Penultimate-layer features of the discriminator for every split, plus a linear-probe score."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = output_file(args.out, "features.npz", [args.checkpoint], writes="a NumPy .npz archive")
    # beside it, named after all of it but a .npz: run.2024-01-01 and run.2024-01-02 once shared run.probe.json
    probe_path = out.with_name((out.name[:-len(".npz")] if out.suffix.lower() == ".npz" else out.name) + ".probe.json")
    if probe_path.exists() and not probe_path.is_file():  # found now, not after the features are written
        raise UserError(f"{probe_path}, where extract writes the linear probe's score beside --out {args.out}, is a "
                        "folder or not a regular file; move it, or give another --out")
    given_checkpoint = Path(args.checkpoint).expanduser()
    if probe_path.exists() and given_checkpoint.exists() and probe_path.samefile(given_checkpoint):
        raise UserError(f"{probe_path}, where extract writes the linear probe's score beside --out {args.out}, is the "
                        "checkpoint, and would be overwritten; give another --out")
    device = resolve_device(args.accelerator)
    checkpoint = read_checkpoint(args.checkpoint)
    module = load_module(args.checkpoint, device)
    datamodule = build_datamodule(checkpoint, args.data, args.set)
    if tuple(datamodule.image_shape) != tuple(module.image_shape) or datamodule.num_classes != module.num_classes:
        channels, height, width = module.image_shape
        if (datamodule.num_classes == module.num_classes
                and {"channels", "image_size"} <= init_arguments(type(datamodule))):  # a folder: its images can be read so
            fix = f"read its images as the checkpoint's with --set channels={channels} --set image_size=[{height},{width}]"
        elif args.data is None and not args.set:  # the recorded data themselves: changed on disk since the training
            fix = ("the data the checkpoint records have changed since it was trained (a class folder added or removed?); "
                   "put them back as they were, or name other data with --data and --set")
        else:
            fix = "give the data it was trained on (without --data: the data the checkpoint records)"
        raise UserError(f"the data ({datamodule.name}: {datamodule.num_classes} classes of {tuple(datamodule.image_shape)}) "
                        f"do not fit the checkpoint ({module.num_classes} classes of {tuple(module.image_shape)}); {fix}")
    split, data = datamodule.split, datamodule.data
    arrays: dict[str, np.ndarray] = {}
    parts = {
        "labeled": (data.train_images[torch.from_numpy(split.labeled)], data.train_labels[torch.from_numpy(split.labeled)]),
        "val": (data.train_images[torch.from_numpy(split.val)], data.train_labels[torch.from_numpy(split.val)]),
        # the pool's true labels, where the data set has them (-1 where not): for analysis, never for training
        "unlabeled": (data.train_images[torch.from_numpy(split.unlabeled)], data.train_labels[torch.from_numpy(split.unlabeled)]),
        "test": (data.test_images, data.test_labels),
    }
    for part, (images, labels) in parts.items():
        _, features = _forward_batches(module, images, args.batch_size)
        arrays[f"{part}_features"] = features.numpy()
        arrays[f"{part}_labels"] = labels.numpy()
    probe: dict[str, Any] = {"train_images": int(len(split.labeled))}
    if len(arrays["test_labels"]) and len(np.unique(arrays["labeled_labels"])) > 1:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        classifier.fit(arrays["labeled_features"], arrays["labeled_labels"])
        probe.update(test_images=int(len(arrays["test_labels"])),
                     test_acc=float(classifier.score(arrays["test_features"], arrays["test_labels"])))
    arrays["class_names"] = np.array(datamodule.classes)  # the names of the stored labels: the data's, not the checkpoint's
    arrays["probe_test_acc"] = np.array(probe.get("test_acc", np.nan))
    atomic_write(out, lambda temporary: _save_npz(temporary, arrays))
    probe.update(checkpoint=str(args.checkpoint), dataset=datamodule.name, feature_dim=int(arrays["test_features"].shape[1]))
    atomic_write(probe_path, lambda temporary: temporary.write_text(json.dumps(probe, indent=2) + "\n"))
    print(f"wrote {out}: {arrays['test_features'].shape[1]}-d features of {len(split.labeled)} labeled, "
          f"{len(split.val)} validation, {len(split.unlabeled)} unlabeled and {len(arrays['test_labels'])} test images")
    if "test_acc" in probe:
        print(f"linear probe (logistic regression on the {len(split.labeled)} labeled images' features): "
              f"test acc {100 * probe['test_acc']:.2f}% (saved in {probe_path})")
    else:
        print("linear probe skipped: the data have no test images")


# ------------------------------------------------------------------------------------------- sample
def check_sample_memory(count: int, module: Any) -> None:
    """Refuses, before any work, an ``--n`` whose samples would not fit in half of this machine's memory: they are
    held at once, as float images, their pixels and the discriminator's outputs (counted twice, for the copies)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): torch's own error, if any, stands
        return
    per_sample = 2 * (5 * math.prod(module.image_shape) + 4 * (module.num_classes + module.discriminator.feature_dim))
    if count * per_sample > memory // 2:
        raise UserError(f"--n {count} would need about {count * per_sample / 2**30:,.0f} GiB of memory, more than half of "
                        f"this machine's {memory / 2**30:.0f} GiB; draw at most --n {memory // 2 // per_sample} at a "
                        "time (another --seed and --out give more)")


def _host_tag() -> str:
    """This machine, in 8 hex digits: on a shared disk, other machines' process ids mean nothing here."""
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _staging_prefix(out: Path) -> str:
    """The name that ``sample``'s hidden staging folders beside ``out`` start with: this machine's and process's."""
    return f".{out.name}.staging-{_host_tag()}-{os.getpid()}-"


def _replaced_folder(out: Path) -> Path:
    """Where ``sample`` keeps an earlier ``out`` folder until the new samples are in place (this machine's and
    process's, as the staging folders)."""
    return out.parent / f".{out.name}.replaced-{_host_tag()}-{os.getpid()}"


def _remove_stale_staging(out: Path) -> None:
    """Removes the hidden folders beside ``out`` that an earlier ``ssgan sample`` on this machine left when it
    was killed outright (SIGKILL, the kernel's out-of-memory killer) or stopped while it removed the samples
    it had replaced: half-written or replaced samples nobody would see. Replaced samples with no ``out`` in
    their place (a kill between the two renames) are put back instead. A folder whose writer still runs, or
    that another machine wrote, is left alone (POSIX only: elsewhere a process cannot be looked up this way)."""
    if os.name != "posix":
        return
    from ssgan.data.images import printable

    host = _host_tag()
    left = re.compile(rf"\.{re.escape(out.name)}\.(staging|replaced|removing)-{host}-(\d+)(-.*)?", re.DOTALL)
    for folder in out.parent.glob(f".{glob.escape(out.name)}.*-{host}-*"):
        match = left.fullmatch(folder.name)
        if match is None or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            os.kill(int(match.group(2)), 0)
            continue  # its writer runs (or is another user's process, which we may not signal)
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        if match.group(1) == "replaced" and not out.exists():  # whole: set aside, the new ones not yet in place
            try:
                folder.rename(out)
            except OSError:  # another sample put its own there meanwhile: these stay aside, as they were
                continue
            log.info("put back %s as %s: an earlier ssgan sample was killed while it replaced them",
                     printable(str(folder)), printable(str(out)))
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            what = "unfinished samples" if match.group(1) == "staging" else "replaced samples"
            log.info("removed %s, the %s of an earlier ssgan sample that was stopped", printable(str(folder)), what)


def sample(args: argparse.Namespace) -> None:
    """An image grid and a synthetic labeled data set from the generator, labeled by the discriminator."""
    from ssgan.data.images import class_folder_names, printable
    from ssgan.module import SSGAN
    from ssgan.plots import save_image_grid

    if args.n < 1:
        raise UserError(f"--n {args.n}: ask for at least 1 sample")
    if not 0 <= args.floor < 1:
        raise UserError(f"--floor {args.floor} is outside [0, 1); e.g. --floor 0.9")
    if not -2**63 <= args.seed < 2**64:  # what torch.Generator.manual_seed takes
        raise UserError(f"--seed {args.seed} does not fit in 64 bits; e.g. --seed 0")
    device = resolve_device(args.accelerator)
    module = load_module(args.checkpoint, device)
    if not isinstance(module, SSGAN):
        raise UserError(f"{args.checkpoint} is a supervised baseline with no generator; give a model=ssgan checkpoint")
    check_sample_memory(args.n, module)
    out = _sample_folder(args.out, args.overwrite)
    images = module.sample(args.n, seed=args.seed).cpu()  # (N, C, H, W) in [0, 1]
    pixels = (images * 255).round().to(torch.uint8)
    # the discriminator labels what it is given in pixels, exactly as the files will hold them
    probabilities, _ = _forward_batches(module, pixels, 500)  # (N, K)
    confidence, predicted = probabilities.max(dim=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    # beside out: the rename stays on one disk; the pid in its name tells a later run whether its writer is gone
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out)))
    staging.chmod(readable_mode(0o777))  # mkdtemp's folder is owner-only; the kept folder is an ordinary one
    earlier = _replaced_folder(out)  # an earlier sample folder, until the new one is in place
    try:
        from torchvision.io import encode_png

        save_image_grid(images[:100], staging / "grid.png")
        names = module.class_names
        counts = [0] * len(names)
        # surrogateescape: a class folder name that is not valid UTF-8 is written back as its own bytes
        with open(staging / "samples.csv", "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "class", "confidence"])
            folder_names = class_folder_names(names)
            for index in torch.nonzero(confidence >= args.floor).flatten().tolist():
                label = int(predicted[index])
                folder = staging / folder_names[label]
                folder.mkdir(exist_ok=True)
                name = f"sample_{index:06d}.png"
                # Python writes the encoded bytes: torchvision's own file writer takes no name that is not UTF-8
                (folder / name).write_bytes(encode_png(pixels[index]).numpy().tobytes())
                writer.writerow([f"{folder.name}/{name}", names[label], f"{float(confidence[index]):.6f}"])
                counts[label] += 1
        if out.exists():
            out.rename(earlier)
        try:
            staging.rename(out)
        except BaseException:  # a failed rename, or Ctrl-C or SIGTERM between the two: the earlier samples stay
            if earlier.exists() and not out.exists():
                earlier.rename(out)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if earlier.exists():  # only once the new samples are in place; renamed first, so that no half-removed
        # folder is ever put back (a random tail: a killed run of a reused pid may have left this pid's name)
        removing = out.parent / f".{out.name}.removing-{_host_tag()}-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            earlier.rename(removing)
        except OSError:  # the new samples are in place all the same
            removing = earlier
        try:
            shutil.rmtree(removing, ignore_errors=True)
        except BaseException:  # stopped while removing many files: the next sample into --out removes the rest
            if removing.exists():
                log.warning("stopped while removing the replaced samples in %s (the new ones are in %s); the next "
                            "ssgan sample --out %s removes them, or delete that folder", printable(str(removing)),
                            printable(str(out)), printable(str(out)))
            raise
    kept = sum(counts)
    per_class = ", ".join(f"{printable(name)} {count}" for name, count in zip(module.class_names, counts))
    if kept >= 20 and len(counts) > 2 and max(counts) >= 0.9 * kept:
        log.warning("%d of the %d samples kept are of one class (%s): the generator may have collapsed; a "
                    "checkpoint from earlier in training may give a more varied set",
                    max(counts), kept, printable(module.class_names[counts.index(max(counts))]))
    if kept == 0:  # a folder without class images would only fail later, as data.synthetic_labeled_dir
        log.warning("no sample reached confidence %s, so the folder holds grid.png only; lower --floor (e.g. --floor "
                    "%g) or draw more with --n", args.floor, 0.5 if args.floor > 0.5 else args.floor / 2)
    print(f"wrote {printable(str(out / 'grid.png'))} and {kept} of {args.n} samples with confidence >= {args.floor} "
          f"({per_class}) under {printable(str(out))}")


def _sample_folder(out_arg: str, overwrite: bool) -> Path:
    """The folder ``sample --out`` names, checked. ``--overwrite`` replaces only a folder that an
    earlier ``ssgan sample`` wrote (grid.png, samples.csv and class folders of sample_*.png), so a
    mistyped ``--out`` never deletes anything else."""
    if not out_arg.strip():  # Path("") is the working folder
        raise UserError("--out is empty; give a new folder, e.g. --out samples")
    given = Path(out_arg).expanduser().absolute()
    broken = broken_link_reason(given)
    if broken:  # resolve() would make the missing folder the link points to, as predict's --out does not
        raise UserError(f"--out {out_arg}: {broken}; give a path under a folder you can write to")
    out = given.resolve()
    working_dir = Path.cwd().resolve()
    if out == working_dir or out in working_dir.parents or out == Path.home().resolve():
        raise UserError(f"--out {out_arg} is the working folder, a folder above it or the home folder; "
                        "give a new folder, e.g. --out samples")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out_arg} is a file; give a folder (new or empty), e.g. --out samples")
    check_writable_parent(out, out_arg)
    _remove_stale_staging(out)  # before out is looked at: replaced samples a killed run left may be put back there
    if not out.is_dir() or not any(out.iterdir()):
        return out
    if not overwrite:
        raise UserError(f"{out_arg} is not empty; choose a new --out folder or add --overwrite")
    foreign = sorted(path.relative_to(out) for path in out.rglob("*") if not _written_by_sample(path, out))
    if foreign:
        raise UserError(f"--overwrite replaces only a folder that ssgan sample wrote, and {out_arg} holds "
                        f"{foreign[0]}; choose a new --out folder")
    return out


def _written_by_sample(path: Path, out: Path) -> bool:
    """Whether ``path``, inside an ``--out`` folder, is one that ``sample`` writes."""
    parts = path.relative_to(out).parts
    if len(parts) == 1:  # grid.png, samples.csv or a class folder
        return path.is_dir() if path.name not in ("grid.png", "samples.csv") else path.is_file()
    return len(parts) == 2 and path.is_file() and parts[1].startswith("sample_") and path.suffix == ".png"


# ------------------------------------------------------------------------------------------- export
class ExportedClassifier(nn.Module):
    """The evaluation (EMA) classifier for deployment: float images (B, C, H, W) in [0, 1] -> logits (B, K)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        low, high = net.input_range
        self.scale, self.offset = float(high - low), float(low)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * self.scale + self.offset)[0]


def export(args: argparse.Namespace) -> None:
    """Writes the EMA classifier as ONNX or TorchScript and checks it against the module on a batch."""
    module = load_module(args.checkpoint, "cpu")
    classifier = ExportedClassifier(copy.deepcopy(module.classifier)).eval()
    suffix = ".onnx" if args.format == "onnx" else ".pt"
    # the default, CKPT with the format's suffix, is checked too: a checkpoint named model.pt is no output
    other = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript"}.get(Path(args.out or "").suffix.lower())
    default_out = Path(args.checkpoint).expanduser().with_suffix(suffix)
    out = output_file(default_out if args.out is None else args.out, f"model{suffix}",
                      [args.checkpoint], writes="an ONNX model" if args.format == "onnx" else "a TorchScript model",
                      fits=() if args.format == "onnx" else (".pth", ".ptl"),
                      hint=f", or use --format {other}" if other and other != args.format else "")
    pixels = torch.randint(0, 256, (4, *module.image_shape), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))  # (4, C, H, W)
    example = pixels.float() / 255  # the exported net's input: floats in [0, 1]
    with torch.no_grad():
        # (4, K): the module's own evaluation path from pixels, as predict uses it. Not module(example):
        # a float input there is taken as already in the net's range, which is [-1, 1] for the conv net.
        expected = module(pixels)
    if args.format == "onnx":
        try:
            import onnx
            import onnxruntime
        except ImportError:
            raise UserError("--format onnx needs the onnx, onnxscript and onnxruntime packages; "
                            "pip install 'ssgan[export]'") from None
    differences: list[float] = []
    # what a deployed model needs to be read: which logit is which class, and what it takes (JSON text; a
    # class name that is not UTF-8 keeps its bytes as \udcXX escapes)
    metadata = {"class_names": json.dumps(list(module.class_names)),
                "input": f"float images (B, {', '.join(map(str, module.image_shape))}) in [0, 1]"}

    def write_and_check(temporary: Path) -> None:
        # the written file is checked before it is renamed into place: a failed check leaves an earlier file as it was
        with torch.no_grad():
            if args.format == "torchscript":
                with warnings.catch_warnings():  # torch deprecates TorchScript (README: ONNX is the lasting format)
                    warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
                    torch.jit.trace(classifier, example).save(str(temporary), _extra_files=metadata)
                    got = torch.jit.load(str(temporary))(example)
            else:
                # the TorchScript-based exporter; torch 2.4 has no other, and no dynamo argument to choose it by
                chosen = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
                torch.onnx.export(classifier, (example,), str(temporary), input_names=["images"], output_names=["logits"],
                                  dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, **chosen)
                exported = onnx.load(str(temporary))
                onnx.helper.set_model_props(exported, metadata)
                onnx.save(exported, str(temporary))
                session = onnxruntime.InferenceSession(str(temporary), providers=["CPUExecutionProvider"])
                got = torch.from_numpy(session.run(None, {"images": example.numpy()})[0])
        # float32 rounding grows with the logits' size: the tolerance is relative to them
        differences.append(float((got - expected).abs().max() / expected.abs().max().clamp(min=1)))
        if differences[-1] > 1e-4:
            raise UserError(f"the exported classifier differs from the module by {differences[-1]:.2e} of its largest "
                            "logit; nothing was written")

    atomic_write(out, write_and_check)
    difference = differences[-1]
    print(f"wrote {out} ({args.format}): float images (B, {', '.join(map(str, module.image_shape))}) in [0, 1] -> "
          f"logits (B, {module.num_classes}); classes {', '.join(module.class_names)}; "
          f"max difference from the module on a test batch {difference:.1e} of its largest logit")


# --------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from ssgan.command_line import OneLineErrorParser

    # the subcommands' parsers are built of the same class, so their errors are one line too
    parser = OneLineErrorParser(prog="ssgan", description="Tools around a trained ssgan checkpoint.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{predict,extract,sample,export}")
    parser.subcommands = commands.choices  # name -> its parser

    def add(name: str, function: Any, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description)
        sub.set_defaults(function=function)
        sub.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by ssgan-train, e.g. <run>/checkpoints/last.ckpt")
        return sub

    sub = add("predict", predict, "classify image files",
              "Classifies image files, or every image under folders (recursively), with the checkpoint's EMA "
              "classifier and writes a CSV: file, class, confidence. Images are converted and resized to the "
              "checkpoint's image shape.")
    sub.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images (.png .jpg .jpeg .jfif .jpe .bmp .webp .tif .tiff .gif .avif .pgm .ppm .pbm .pnm .tga .pcx); with several, the CSV names each file by its path")
    sub.add_argument("--out", default="preds.csv", help="CSV file to write, replaced if it exists (default: preds.csv)")
    sub.add_argument("--probabilities", action="store_true", help="add one p_<class> column per class")
    sub.add_argument("--batch-size", type=int, default=256, help="images decoded and classified at a time (default: 256)")
    sub.add_argument("--accelerator", default="auto", help="auto, cpu, gpu or mps (default: auto)")

    sub = add("extract", extract, "discriminator features and a linear-probe score",
              "Writes the discriminator's penultimate-layer features of the labeled, validation, unlabeled and test "
              "images, with their labels (-1 where unknown), to an .npz file, and fits a logistic regression on the "
              "labeled images' features, scored on the test images (printed and saved beside the .npz).")
    sub.add_argument("--out", default="features.npz", help="the .npz file to write, replaced if it exists "
                                                           "(default: features.npz)")
    sub.add_argument("--data", default=None, help="a data config name (digits, fashion_mnist, folder, ...); default: "
                                                  "the checkpoint's own data and split")
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a data argument, e.g. --set root=/usr/share/datasets/fashion-mnist (repeatable)")
    sub.add_argument("--batch-size", type=int, default=1000, help="images per forward pass (default: 1000)")
    sub.add_argument("--accelerator", default="auto", help="auto, cpu, gpu or mps (default: auto)")

    sub = add("sample", sample, "generated images: a grid and a synthetic labeled data set",
              "Draws N images from the generator, writes DIR/grid.png (the first 100), and saves each sample the "
              "discriminator classifies with confidence >= FLOOR as DIR/<class>/sample_NNNNNN.png, listed in "
              "DIR/samples.csv. Train on them with data.synthetic_labeled_dir=DIR.")
    sub.add_argument("--n", type=int, default=1000, metavar="N", help="number of samples (default: 1000)")
    sub.add_argument("--out", required=True, metavar="DIR", help="folder to write (must be new or empty, unless --overwrite)")
    sub.add_argument("--floor", type=float, default=0.9, metavar="FLOOR", help="confidence floor for the labeled samples (default: 0.9)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default: 0); the generator uses "
                     "batch statistics, so a seed repeats its images only with the same --n")
    sub.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder that ssgan sample wrote")
    sub.add_argument("--accelerator", default="auto", help="auto, cpu, gpu or mps (default: auto)")

    sub = add("export", export, "the EMA classifier as ONNX or TorchScript",
              "Exports the EMA classifier: float images (B, C, H, W) in [0, 1] -> class logits (B, K), checks "
              "its outputs against the module on a batch, and writes it.")
    sub.add_argument("--format", choices=["onnx", "torchscript"], required=True, help="onnx or torchscript")
    sub.add_argument("--out", default=None, help="file to write, replaced if it exists (default: CKPT with .onnx or .pt)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``ssgan``."""
    from ssgan.command_line import empty_cache_dir_is_unset, escape_unencodable_output

    escape_unencodable_output()
    empty_cache_dir_is_unset()  # --data's config reads it as ssgan-train's does
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the subcommand's parser, so that the hint is that subcommand's --help
        parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "batch_size", 1) < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        sys.exit(2)
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from ssgan.callbacks import sigterm_stops_outside_lightning

    try:
        with sigterm_stops_outside_lightning():  # a SIGTERM raises, so that a half-written output is removed as for Ctrl-C
            args.function(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, SIGTERMException) as stop:  # one line, not a traceback; 130 and 143 as a shell counts
        ctrl_c = isinstance(stop, KeyboardInterrupt)
        print(f"error: stopped by {'Ctrl-C' if ctrl_c else 'SIGTERM'} (each output is written whole or not at all)",
              file=sys.stderr)
        sys.exit(130 if ctrl_c else 143)
    except OSError as error:  # e.g. a disk that is full or read-only: one line, not a traceback
        print(f"error: {_write_failure(error, args)}", file=sys.stderr)
        sys.exit(1)


def _write_failure(error: OSError, args: argparse.Namespace) -> str:
    """An ``OSError``'s one line: the file it names, else the output being written (a full disk names no file)."""
    import errno

    full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the output did not fit: --out is what was written
    where = error.filename or (getattr(args, "out", None) if full else None) or ""
    text = f"{error.strerror or error}: {where}".rstrip(": ")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        text += "; free some space, or give --out on another disk"
    elif error.errno == errno.EFBIG:
        text += "; give --out on a disk that takes larger files, or raise the shell's file size limit (ulimit -f)"
    return text


if __name__ == "__main__":
    main()
