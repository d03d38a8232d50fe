"""Directories replaced whole: staged beside the target, published by rename, recoverable after a crash."""

from __future__ import annotations

import os
from pathlib import Path

from mmml.atomic import publish_directory, recovered, replace_directory, staging_directory


def _staged(target: Path, text: str) -> Path:
    with staging_directory(target) as staging:
        (staging / "file").write_text(text)
        replace_directory(staging, target)
    return target


def test_replace_leaves_only_the_new_version(tmp_path: Path) -> None:
    target = _staged(tmp_path / "model", "old")
    _staged(target, "new")
    assert (target / "file").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or retired copy left behind


def test_a_crash_between_the_two_renames_keeps_the_old_version(tmp_path: Path) -> None:
    target = _staged(tmp_path / "model", "old")
    os.replace(target, tmp_path / ".model.old")  # the first rename of a swap, then the process died
    assert (recovered(target) / "file").read_text() == "old"


def test_publish_keeps_a_copy_someone_else_published_first(tmp_path: Path) -> None:
    target = _staged(tmp_path / "converted", "first")
    with staging_directory(target) as staging:
        (staging / "file").write_text("second")
        assert publish_directory(staging, target) is False
    assert (target / "file").read_text() == "first"


def test_published_directories_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        target = _staged(tmp_path / "model", "x")
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == 0o755  # readable by the cluster's other users, as mkdir would make it


def test_a_process_killed_between_the_two_renames_leaves_the_old_version_to_recover(tmp_path: Path) -> None:
    """A real SIGKILL right after the first rename of a swap: the old version is found, whole."""
    import signal
    import subprocess
    import sys
    import textwrap

    target = _staged(tmp_path / "model", "old")
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from mmml import atomic

        rename = os.replace
        def rename_then_die(source, destination):
            rename(source, destination)
            os.kill(os.getpid(), signal.SIGKILL)

        os.replace = rename_then_die
        target = Path({str(target)!r})
        with atomic.staging_directory(target) as staging:
            (staging / "file").write_text("new")
            atomic.replace_directory(staging, target)
    """)
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True)
    assert result.returncode == -signal.SIGKILL
    assert not target.exists() and (recovered(target) / "file").read_text() == "old"
    _staged(target, "newer")  # the next save publishes normally and clears the retired copy
    assert (recovered(target) / "file").read_text() == "newer" and not (tmp_path / ".model.old").exists()


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    from mmml.atomic import replacing_file, write_text_atomic

    path = write_text_atomic("old", tmp_path / "state.json")
    try:
        with replacing_file(path) as handle:
            handle.write(b"half of the ne")
            raise RuntimeError("killed mid-write")
    except RuntimeError:
        pass
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
