"""Stage 1: turn the command line's files, folders and manifests into a list of videos.

* A folder is walked recursively; it contributes files whose extension names
  a container ffmpeg reads (`MEDIA_EXTENSIONS`). Other files in folders are
  not inputs and are skipped silently (cover images, subtitles, notes), as
  are hidden files and folders (names starting with a dot).
* A file named on the command line is an input whatever its extension; if it
  is not media, demux records the failure. The exception: `.txt`, `.lst` and
  `.list` files are manifests, one path per line (`#` comments and blank lines
  ignored, relative paths resolved against the manifest's folder). A manifest
  line may name a folder.
* A path that does not exist is a failed input (stage "discover"), not a crash.

`video_id` identifies content, not location: the first 16 hex digits of
sha256 over the file size, its first MiB and its last MiB. Moving or renaming
a corpus keeps every id (so resuming after a move still skips finished
videos), reading a multi-GB video costs two MiB, and byte-identical copies
share an id and are annotated once (each copy still gets its rows).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MEDIA_EXTENSIONS = frozenset(
    [
        ".3g2",
        ".3gp",
        ".aac",
        ".ac3",
        ".aif",
        ".aiff",
        ".amr",
        ".ape",
        ".asf",
        ".au",
        ".avi",
        ".caf",
        ".dts",
        ".dv",
        ".f4v",
        ".flac",
        ".flv",
        ".m2ts",
        ".m4a",
        ".m4b",
        ".m4v",
        ".mka",
        ".mkv",
        ".mov",
        ".mp2",
        ".mp3",
        ".mp4",
        ".mpeg",
        ".mpg",
        ".mts",
        ".mxf",
        ".oga",
        ".ogg",
        ".ogv",
        ".opus",
        ".qt",
        ".ra",
        ".rm",
        ".rmvb",
        ".spx",
        ".ts",
        ".vob",
        ".wav",
        ".weba",
        ".webm",
        ".wma",
        ".wmv",
        ".wv",
    ]
)
MANIFEST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
_HASH_SPAN = 1 << 20


@dataclass(frozen=True)
class Video:
    path: str  # absolute, symlinks resolved
    video_id: str


@dataclass(frozen=True)
class Missing:
    path: str
    message: str
    error_type: str = "FileNotFoundError"


def discover(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[Video], list[Missing]]:
    """Every media file the inputs name, once each, in a stable order; and the inputs that do not exist."""
    found: dict[str, None] = {}
    missing: list[Missing] = []
    for item in inputs:
        for path in _expand(Path(item), missing, manifests_seen=set()):
            found.setdefault(path, None)
    videos = []
    for path in found:
        try:
            videos.append(Video(path, content_id(path)))
        except OSError as err:
            missing.append(Missing(path, f"cannot read file: {err.strerror or err}", type(err).__name__))
    return videos, missing


def content_id(path: str | os.PathLike[str]) -> str:
    """sha256 of size + first MiB + last MiB, 16 hex digits (see the module docstring for why)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        digest.update(handle.read(_HASH_SPAN))
        if size > _HASH_SPAN:
            handle.seek(max(_HASH_SPAN, size - _HASH_SPAN))
            digest.update(handle.read(_HASH_SPAN))
    return digest.hexdigest()[:16]


def _expand(path: Path, missing: list[Missing], manifests_seen: set[Path]) -> Iterator[str]:
    if path.is_dir():
        yield from _walk(path)
    elif path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
        resolved = path.resolve()
        if resolved in manifests_seen:  # a manifest listing itself, directly or not
            return
        manifests_seen.add(resolved)
        for entry in _manifest_entries(path):
            yield from _expand(entry, missing, manifests_seen)
    elif path.exists():
        yield str(path.resolve())
    else:
        missing.append(Missing(str(path.absolute()), "no such file or directory"))


def _walk(folder: Path) -> Iterator[str]:
    """Media files under `folder`, sorted so that runs and resumes see the same order."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .cache, editors' scratch
        for name in sorted(files):
            if Path(name).suffix.lower() in MEDIA_EXTENSIONS and not name.startswith("."):
                candidate = Path(root) / name
                if candidate.is_file():
                    yield str(candidate.resolve())


def _manifest_entries(manifest: Path) -> Iterator[Path]:
    for line in manifest.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            candidate = Path(entry).expanduser()
            yield candidate if candidate.is_absolute() else manifest.parent / candidate
