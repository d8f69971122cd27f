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
