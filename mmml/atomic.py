"""Files and directories replaced whole: a reader (or a crash) sees the old version or the new one, never a mix.

Every write of lasting state in the project goes through here. A file is
written to a hidden sibling, flushed to disk, then renamed over its target.
A directory cannot be renamed over a non-empty one, so a swap takes two
renames: the old directory is retired under a fixed name, then the staged one
takes its place. A crash between the two leaves only the retired copy;
`recovered` finds it, so the last complete version is never lost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replacing_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` (fsync, then rename) only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    try:
        with open(partial, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str]) -> Path:
    with replacing_file(path) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> Path:
    """UTF-8 `text` at `path`, all of it or none (JSON state, CSV, Markdown)."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def _retired(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


@contextlib.contextmanager
def staging_directory(target: Path) -> Iterator[Path]:
    """A fresh directory beside `target` (same filesystem, so renames are atomic), removed if not published."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it owner-only; a published directory follows the umask
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_directory(staging: Path, target: Path) -> None:
    """Publish `staging` as `target`, replacing any earlier version of it."""
    retired = _retired(target)
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def publish_directory(staging: Path, target: Path) -> bool:
    """Publish `staging` as `target` unless a `target` already exists (then keep that one); True if published.

    For content determined by its name (a conversion keyed by its source), so
    the first complete copy wins and no reader ever loses the one it holds.
    """
    try:
        os.rename(staging, target)
        return True
    except OSError:
        if target.is_dir():
            return False
        raise


def recovered(target: Path) -> Path:
    """`target`, or its retired copy when a replacement was interrupted between its two renames."""
    retired = _retired(target)
    if not target.exists() and retired.exists():
        return retired
    return target
