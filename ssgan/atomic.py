"""Atomic file writes: a reader (or a killed writer) never leaves or sees half a file."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# A temporary file of atomic_write older than this is a killed writer's: a save takes seconds
STALE_TEMPORARY_SECONDS = 3600
# Less room than this left after a write failed: the disk filled up (a checkpoint of the nets is tens of MB)
FULL_DISK_BYTES = 256 * 2**20


def current_umask() -> int:
    """The process's umask, read without changing it (setting it to read it back races with other threads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:  # no /proc (not Linux)
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def readable_mode(base: int = 0o666) -> int:
    """The mode a plain new file (``base`` 0o666) or folder (0o777) would get under the current umask
    (temporary files and folders are owner-only)."""
    return base & ~current_umask()


def remove_stale_temporaries(path: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> None:
    """Removes the temporary files that killed writers of ``path`` left (``atomic_write``'s names for it)
    and that are older than ``older_than`` seconds: a younger one may be a concurrent writer's."""
    now = time.time()
    for leftover in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        try:
            if now - leftover.stat().st_mtime >= older_than:
                leftover.unlink()
        except OSError:  # removed by another process meanwhile
            pass


def saved_files(folder: str | Path, pattern: str) -> list[Path]:
    """The files matching ``pattern`` in ``folder`` that their writers finished, newest first: not atomic_write's
    hidden temporaries (``.<name>.*.tmp<suffix>``), nor links to nothing."""
    found = [path for path in Path(folder).glob(pattern) if not path.name.startswith(".") and path.is_file()]
    return sorted(found, key=lambda path: path.stat().st_mtime, reverse=True)


def checkpoint_in_folder(folder: Path) -> Path | None:
    """The checkpoint file to name when a folder was given for one: the folder's ``last.ckpt`` (else its newest
    finished ``.ckpt``), else its ``checkpoints/`` subfolder's; None if it holds none."""
    for where in (folder, folder / "checkpoints"):
        try:
            found = saved_files(where, "*.ckpt")  # newest first; not a temporary being written, nor a broken link
        except OSError:  # an unreadable folder: look no further
            found = []
        if found:
            return next((path for path in found if path.name == "last.ckpt"), found[0])
    return None


def atomic_write(path: str | Path, write: Callable[[Path], None], follow_symlinks: bool = True,
                 keep_mode: bool = True) -> None:
    """Calls ``write(temporary)`` on a temporary file beside ``path``, then renames it onto ``path``.

    The temporary file keeps ``path``'s suffix (some writers choose the format from it) and is
    removed if ``write`` fails; those of earlier writers that were killed are removed after an hour.
    A ``path`` that is a symbolic link to a file keeps being one: that file is replaced (unless not
    ``follow_symlinks``; a link whose target is gone is replaced itself). A file that exists keeps its
    permissions if ``keep_mode``; otherwise, and for a new file, they are those the umask gives a new file.
    """
    path = Path(path)
    if follow_symlinks and path.is_symlink() and path.exists():  # replacing the link would cut it off from its file
        path = Path(os.path.realpath(path))
    mode = readable_mode()
    if keep_mode and path.is_file():
        mode = path.stat().st_mode & 0o777  # e.g. made private by its owner
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                                         delete=False)
    handle.close()
    temporary = Path(handle.name)
    try:
        try:
            write(temporary)
        except RuntimeError as error:  # torch's writer: a full disk is "[enforce fail ...] unexpected pos", no errno
            raise _failed_write(error, temporary, path) from None
        except OSError as error:
            if error.errno is not None and error.filename is None:  # a write() names no file: the one asked for
                raise OSError(error.errno, error.strerror, str(path)) from None
            raise
        os.chmod(temporary, mode)
        try:
            os.replace(temporary, path)
        except OSError as error:  # named by the file asked for, not by the temporary one (e.g. a folder in its place)
            raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        temporary.unlink(missing_ok=True)


def write_cache(path: str | Path, write: Callable[[Path], None], what: str) -> None:
    """``atomic_write`` for a cache file: a cache that cannot be written (a full disk) costs the next run
    its time, not this run its result, so the failure is a warning."""
    try:
        # the umask's permissions, not the file's: another user's private copy must not lock this one out of it
        atomic_write(path, write, keep_mode=False)
    except OSError as error:
        log.warning("could not write the %s %s (%s); going on without caching it", what, path, error.strerror or error)


def unwritable_cache_reason(folder: str | Path | None, setting: str, without: str) -> str | None:
    """Why the cache ``folder`` cannot be used, or None. One that exists but cannot be written (a shared,
    read-only cache) is used as it is, with a warning: what it holds is read, and what it lacks is made on
    every run (``write_cache`` warns and goes on). ``setting`` names the option, ``without`` what a run
    without any cache does."""
    problem = unwritable_reason(folder) if folder is not None else None
    if problem and Path(folder).expanduser().is_dir() and os.access(Path(folder).expanduser(), os.R_OK | os.X_OK):
        log.warning("%s=%s cannot be written (%s): what it holds is read, and what it lacks is not kept (%s)",
                    setting, folder, problem, without)
        return None
    return problem


def _failed_write(error: RuntimeError, temporary: Path, path: Path) -> Exception:
    """The ``OSError`` that torch's file writer failed with, named by ``path``, when the disk or a file size limit
    cut the write short (the file holds less than was written); otherwise the ``error`` itself (a bug keeps its
    traceback)."""
    import errno
    import resource

    if "unexpected pos" not in str(error) and "PytorchStreamWriter" not in str(error):
        return error
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and temporary.exists() and temporary.stat().st_size >= limit:
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    if shutil.disk_usage(path.parent).free < FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    # room enough on the disk: a quota, or a failing or remounted disk
    return OSError(errno.EIO, f"{os.strerror(errno.EIO)} (torch's writer stopped short)", str(path))


def write_failure_fix(error: OSError) -> str:
    """What to do about a write that failed with ``error``: room for a full disk, a folder that can be written."""
    import errno

    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space"
    if error.errno == errno.EFBIG:
        return "raise the file size limit (ulimit -f), or use a disk that takes larger files"
    if error.errno == errno.EIO:  # torch's writer on a disk with room: a quota, or a failing or remounted disk
        return "check your disk quota and that the disk is healthy and writable"
    return "check that the folder can be written"


def broken_link_reason(path: Path) -> str | None:
    """Why no file or folder can be made at or under ``path``: a link on its way whose target does not exist; or None.
    (Below such a link nothing exists, so it is the nearest entry on disk; ``path`` must be absolute.)"""
    nearest = next(entry for entry in (path, *path.parents) if entry.exists() or entry.is_symlink())
    if not nearest.exists():
        return f"{nearest} is a link to {os.readlink(nearest)}, which does not exist"
    return None


def unwritable_reason(folder: str | Path) -> str | None:
    """Why files cannot be made in ``folder`` (or in the folders that would be made for it), or None.

    It tries: a test folder is made in the nearest existing parent and removed again, so the answer
    holds for read-only disks and pseudo file systems (``/proc``) too, and nothing is left behind.
    """
    try:
        folder = Path(folder).expanduser().absolute()  # raises if the working folder was deleted
        broken = broken_link_reason(folder)
        if broken:
            return broken
        existing = next(path for path in (folder, *folder.parents) if path.exists())
    except OSError as error:  # a name the system refuses, e.g. too long
        return error.strerror or str(error)
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".ssgan-write-test-"))
    except OSError as error:
        return f"{existing} is not writable ({error.strerror or error})"
    return None
