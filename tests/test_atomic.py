"""atomic_write: a reader never sees half a file, and a failed writer leaves the old file and no debris."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssgan.atomic import atomic_write, readable_mode


def test_the_target_changes_only_when_the_whole_file_is_written(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"old": 1}')

    def write(temporary: Path) -> None:
        temporary.write_text('{"new": ')  # half written ...
        assert path.read_text() == '{"old": 1}'  # ... while readers still see the old file whole
        temporary.write_text('{"new": 2}')

    atomic_write(path, write)
    assert path.read_text() == '{"new": 2}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "results.md"
    path.write_text("old report")

    def crash(temporary: Path) -> None:
        temporary.write_text("half a rep")
        raise KeyboardInterrupt  # e.g. a user's ^C in the middle of the write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_the_temporary_keeps_the_suffix_and_the_file_gets_a_shared_mode(tmp_path: Path) -> None:
    suffixes = []
    atomic_write(tmp_path / "split.npz", lambda temporary: suffixes.append(temporary.suffix) or temporary.write_bytes(b"x"))
    assert suffixes == [".npz"]  # np.savez and savefig pick the format from the suffix
    # a plain new file's mode under the umask (e.g. 0644), not the temporary file's owner-only 0600
    assert (tmp_path / "split.npz").stat().st_mode & 0o777 == readable_mode()


def test_a_killed_writers_temporary_is_removed_once_stale_and_a_young_one_is_left(tmp_path: Path) -> None:
    import os
    import time

    path = tmp_path / "splits.npz"
    stale, young = tmp_path / ".splits.abc123.tmp.npz", tmp_path / ".splits.def456.tmp.npz"
    stale.write_bytes(b"half")
    young.write_bytes(b"another writer's, still writing")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    atomic_write(path, lambda temporary: temporary.write_bytes(b"whole"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [young.name, "splits.npz"]


def test_the_umask_is_read_without_changing_it() -> None:
    import os

    from ssgan.atomic import current_umask

    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027 and readable_mode() == 0o640
        assert os.umask(0o027) == 0o027  # left as it was
    finally:
        os.umask(before)


def test_a_cache_that_cannot_be_written_is_a_warning_and_the_run_goes_on(tmp_path: Path, monkeypatch, caplog) -> None:
    import errno

    import numpy as np

    import ssgan.atomic as atomic
    from ssgan.data.split import cached_split

    def disk_full(path, write, **options):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "atomic_write", disk_full)
    labels = np.repeat(np.arange(3), 10)
    with caplog.at_level("WARNING"):
        split = cached_split(tmp_path, "toy", labels, 3, np.array([2, 2, 2]), 3, 0)
    assert len(split.labeled) == 6
    assert "could not write the split cache" in caplog.text and "No space left on device" in caplog.text


def test_metrics_that_cannot_be_written_are_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    import errno

    import ssgan.train as train_module
    from ssgan.errors import UserError

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_module, "atomic_write", disk_full)
    with pytest.raises(UserError, match=r"^cannot write \S+metrics.json: No space left on device; free some space"):
        train_module.write_json_atomic(tmp_path / "metrics.json", {"test/acc": 0.5})


def test_a_symlink_stays_a_link_and_an_existing_files_permissions_are_kept(tmp_path: Path) -> None:
    import os

    target = tmp_path / "kept" / "metrics.json"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o600)  # e.g. made private by its owner
    link = tmp_path / "metrics.json"
    link.symlink_to(target)
    atomic_write(link, lambda temporary: temporary.write_text("new"))
    assert link.is_symlink() and target.read_text() == "new"  # once the link was replaced by a plain file
    assert target.stat().st_mode & 0o777 == 0o600  # once reset to the umask's mode
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]
    fresh = tmp_path / "fresh.json"
    atomic_write(fresh, lambda temporary: temporary.write_text("{}"))
    assert fresh.stat().st_mode & 0o777 == readable_mode()


def test_links_that_must_not_be_followed_are_replaced_and_caches_take_the_umask(tmp_path: Path) -> None:
    import os

    from ssgan.atomic import write_cache
    from ssgan.callbacks import AtomicCheckpointIO

    # a link whose target is gone (an unmounted disk): replaced, no folders made where it pointed
    dangling = tmp_path / "metrics.json"
    dangling.symlink_to(tmp_path / "gone" / "deeper" / "metrics.json")
    atomic_write(dangling, lambda temporary: temporary.write_text("{}"))
    assert not dangling.is_symlink() and dangling.read_text() == "{}" and not (tmp_path / "gone").exists()
    # last.ckpt as Lightning's save_last="link" makes it: the checkpoint it names is never overwritten
    best = tmp_path / "best.ckpt"
    best.write_bytes(b"the best weights")
    last = tmp_path / "last.ckpt"
    last.symlink_to(best.name)
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, last)
    assert best.read_bytes() == b"the best weights" and not last.is_symlink()
    # a cache another user made private: rewritten with this user's umask, not locked to the first
    cache = tmp_path / "split.npz"
    cache.write_bytes(b"old")
    os.chmod(cache, 0o600)
    write_cache(cache, lambda temporary: temporary.write_bytes(b"new"), "split cache")
    assert cache.stat().st_mode & 0o777 == readable_mode()


def test_a_link_to_a_missing_folder_on_the_way_is_unwritable_before_any_work(tmp_path: Path) -> None:
    # the nearest existing parent was writable, so the check passed, and making the folder failed after the work
    from ssgan.atomic import unwritable_reason

    (tmp_path / "link").symlink_to(tmp_path / "gone")
    assert unwritable_reason(tmp_path / "link" / "deeper") == f"{tmp_path / 'link'} is a link to {tmp_path / 'gone'}, which does not exist"
    (tmp_path / "gone").mkdir()
    assert unwritable_reason(tmp_path / "link" / "deeper") is None  # the folder it points to can be written


def test_torchs_writer_cut_short_by_a_full_disk_or_a_size_limit_is_an_oserror_naming_the_file(tmp_path: Path) -> None:
    # torch.save raised "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598", with no errno or
    # file: write_cache, which warns on an OSError, crashed the run on an image cache it could not write
    import errno
    import subprocess
    import sys

    code = ("import resource, sys, torch\n"
            "from ssgan.atomic import atomic_write\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            "try:\n"
            f"    atomic_write({str(tmp_path / 'images.pt')!r}, lambda temporary: torch.save(torch.zeros(10000), temporary))\n"
            "except OSError as error:\n"
            "    print(error.errno, error.filename)\n")
    limited = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert limited.stdout.split() == [str(errno.EFBIG), str(tmp_path / "images.pt")], limited.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # nor a temporary left


def test_torchs_writer_error_is_a_full_disk_without_a_limit_and_another_error_stays_itself(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    import errno
    import shutil
    from collections import namedtuple

    import ssgan.atomic as atomic

    def cut_short(temporary: Path) -> None:
        temporary.write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    # with room on the disk, a failing or remounted disk (EIO), not "free some space"
    with pytest.raises(OSError) as failed:
        atomic_write(tmp_path / "model.ckpt", cut_short)
    assert (failed.value.errno, failed.value.filename) == (errno.EIO, str(tmp_path / "model.ckpt"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: usage(2**40, 2**40 - 4096, 4096))
    with pytest.raises(OSError) as failed:
        atomic_write(tmp_path / "model.ckpt", cut_short)
    assert (failed.value.errno, failed.value.filename) == (errno.ENOSPC, str(tmp_path / "model.ckpt"))
    monkeypatch.setattr(atomic.shutil, "disk_usage", shutil.disk_usage)

    def no_room(temporary: Path) -> None:  # a write() names no file: the one asked for, not the temporary
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as failed:
        atomic_write(tmp_path / "metrics.csv", no_room)
    assert failed.value.filename == str(tmp_path / "metrics.csv")

    def encoder_error(temporary: Path) -> None:  # PIL's, with no errno: kept as it is, not "[Errno None] None"
        raise OSError("encoder error -2 when writing image file")

    with pytest.raises(OSError, match="^encoder error -2 when writing image file$"):
        atomic_write(tmp_path / "grid.png", encoder_error)

    def a_bug(temporary: Path) -> None:
        raise RuntimeError("size mismatch")

    with pytest.raises(RuntimeError, match="size mismatch"):
        atomic_write(tmp_path / "model.ckpt", a_bug)
    assert list(tmp_path.iterdir()) == []


def test_a_picture_that_cannot_be_written_is_a_warning(tmp_path: Path, caplog) -> None:
    # a sample grid stopped the run before its epoch's checkpoint; a confusion matrix discarded the test result
    import errno

    from ssgan.callbacks import save_picture

    def disk_full(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with caplog.at_level("WARNING"):
        save_picture(disk_full, tmp_path / "confusion_matrix.png")
    assert f"could not write {tmp_path / 'confusion_matrix.png'} (No space left on device); going on without it" in caplog.text
