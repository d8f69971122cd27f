"""Atomic file writes: a reader (or a killed writer) never leaves or sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def readable_mode(base: int = 0o666) -> int:
    """The mode a plain new file (``base`` 0o666) or folder (0o777) would get under the current umask
    (temporary files and folders are owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Calls ``write(temporary)`` on a temporary file beside ``path``, then renames it onto ``path``.

    The temporary file keeps ``path``'s suffix (some writers choose the format from it) and is
    removed if ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                                         delete=False)
    handle.close()
    temporary = Path(handle.name)
    try:
        write(temporary)
        os.chmod(temporary, readable_mode())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def unwritable_reason(folder: str | Path) -> str | None:
    """Why files cannot be made in ``folder`` (or in the folders that would be made for it), or None.

    It tries: a test folder is made in the nearest existing parent and removed again, so the answer
    holds for read-only disks and pseudo file systems (``/proc``) too, and nothing is left behind.
    """
    folder = Path(folder).expanduser().absolute()
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".ssgan-write-test-"))
    except OSError as error:
        return f"{existing} is not writable ({error.strerror or error})"
    return None
