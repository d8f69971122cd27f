"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Bad input from the user (a path, a count, an option).  Entry points print it as one line."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name if it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def checkpoint_in_folder(folder: Path) -> Path | None:
    """The checkpoint file to name when a folder was given for one: the folder's ``last.ckpt`` (else its
    first ``.ckpt``), else its ``checkpoints/`` subfolder's; None if it holds none."""
    for where in (folder, folder / "checkpoints"):
        try:
            found = sorted(where.glob("*.ckpt"))
        except OSError:  # an unreadable folder: look no further
            found = []
        if found:
            return next((path for path in found if path.name == "last.ckpt"), found[0])
    return None
