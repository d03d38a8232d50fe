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
