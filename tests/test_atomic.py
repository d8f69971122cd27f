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
