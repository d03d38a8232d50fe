"""Labelled corpora in the MMSA raw layout (README, "Corpora"), read and validated.

    <root>/label.csv                      video_id, clip_id, text, label, [label_T, label_A, label_V, annotation], mode
    <root>/Raw/<video_id>/<clip_id>.mp4   (or wav/<video_id>/<clip_id>.wav)

Media may be any file ffmpeg reads (.mp4, .wav, .flac, .mp3, .m4a, ...):
a clip's media is the file in `Raw/<video_id>/` or `wav/<video_id>/` whose
name without its extension is the clip id. A corpus with neither folder is
a transcript corpus: its clips have no audio.

`label.csv` comes from strangers, so every problem is reported with the line
and column it sits on before anything is trained. Per-modality labels
(`label_T`, `label_A`: CH-SIMS) feed the text and audio heads; corpora with a
single label (MOSI, MOSEI, custom) use it for every head.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SPLITS: tuple[str, ...] = ("train", "valid", "test")
REQUIRED_COLUMNS: tuple[str, ...] = ("video_id", "clip_id", "text", "label", "mode")
LABEL_FILE = "label.csv"
MEDIA_FOLDERS: tuple[str, ...] = ("Raw", "wav")
# When a clip has several files, the first of these wins; other extensions come after them.
MEDIA_PREFERENCE: tuple[str, ...] = (".mp4", ".wav", ".flac", ".mkv", ".webm", ".m4a", ".mp3", ".ogg", ".opus")
NOT_MEDIA: frozenset[str] = frozenset({".txt", ".json", ".csv", ".srt", ".vtt", ".npy", ".md", ".lab", ".textgrid"})


class CorpusError(ValueError):
    """A label file or media tree that cannot be trained on; the message says where."""


@dataclass(frozen=True)
class Labelled:
    """What a label.csv row says of a clip: which it is, its words and each modality's label.

    `Clip` adds where the row sits in its label file; a row of a corpus being
    written adds the media file it will hold instead.
    """

    video_id: str
    clip_id: str
    text: str
    label: float
    label_text: float
    label_audio: float

    @property
    def key(self) -> str:
        return f"{self.video_id}/{self.clip_id}"


@dataclass(frozen=True)
class Clip(Labelled):
    """One labelled utterance of a corpus. `line` is its line in label.csv, for error messages."""

    split: str
    line: int

    def targets(self) -> dict[str, float]:
        """Regression target of each head (paper 3.3)."""
        return {"fused": self.label, "text": self.label_text, "audio": self.label_audio}


@dataclass(frozen=True)
class Corpus:
    label_file: Path
    root: Path  # media are looked up under this directory
    clips: tuple[Clip, ...]

    def split(self, name: str) -> list[Clip]:
        return [clip for clip in self.clips if clip.split == name]


def locate_label_file(path: str | Path) -> tuple[Path, Path]:
    """(label.csv, media root) for a corpus directory or a label file given directly."""
    path = Path(path)
    label_file = path / LABEL_FILE if path.is_dir() else path
    if not label_file.is_file():
        raise CorpusError(
            f"{label_file}: no such label file (expected a corpus directory holding {LABEL_FILE}, or the file)"
        )
    return label_file, label_file.parent


def read_corpus(path: str | Path, *, require_text: bool = True) -> Corpus:
    """Parse and validate the whole label file; raise `CorpusError` listing every bad cell."""
    label_file, root = locate_label_file(path)
    with label_file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise CorpusError(
                f"{label_file}: missing column(s) {', '.join(missing)} (header has: {', '.join(columns)})"
            )
        clips, problems = [], []
        for row in reader:
            clip, row_problems = _parse_row(row, reader.line_num, require_text)
            clips.append(clip)
            problems += row_problems
    problems += _duplicates(c for c in clips if c is not None)
    if problems:
        raise CorpusError(problem_listing(f"{label_file}: {len(problems)} problem(s)", problems))
    if not clips:
        raise CorpusError(f"{label_file}: no clips")
    return Corpus(label_file=label_file, root=root, clips=tuple(clips))


def _parse_row(row: dict[str, str | None], line: int, require_text: bool) -> tuple[Clip | None, list[str]]:
    problems: list[str] = []

    def where(column: str) -> str:
        return f"line {line}, column {column}"

    if None in row:  # DictReader puts surplus cells under the key None
        problems.append(f"line {line}: more cells than the header has columns")
    cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
    for column in ("video_id", "clip_id"):
        if not cells.get(column):
            problems.append(f"{where(column)}: empty")
    if require_text and not cells.get("text"):
        problems.append(f"{where('text')}: empty transcript")
    split = cells.get("mode", "")
    if split not in SPLITS:
        problems.append(f"{where('mode')}: unknown split {split!r} (use {', '.join(SPLITS)})")

    def number(column: str, optional: bool) -> float | None:
        value = cells.get(column, "")
        if optional and not value:
            return None
        try:
            parsed = float(value)
        except ValueError:
            problems.append(f"{where(column)}: {value!r} is not a number")
            return None
        if not math.isfinite(parsed):
            problems.append(f"{where(column)}: {value!r} is not a finite number")
            return None
        return parsed

    label = number("label", optional=False)
    label_text = number("label_T", optional=True)
    label_audio = number("label_A", optional=True)
    if problems:
        return None, problems
    return (
        Clip(
            video_id=cells["video_id"],
            clip_id=cells["clip_id"],
            text=cells.get("text", ""),
            label=label,
            label_text=label if label_text is None else label_text,
            label_audio=label if label_audio is None else label_audio,
            split=split,
            line=line,
        ),
        [],
    )


def _duplicates(clips: Iterable[Clip]) -> list[str]:
    first_line: dict[str, int] = {}
    problems = []
    for clip in clips:
        if clip.key in first_line:
            problems.append(f"line {clip.line}: clip {clip.key} repeats line {first_line[clip.key]}")
        else:
            first_line[clip.key] = clip.line
    return problems


def media_names(clip: Clip) -> list[str]:
    """File names (without extension) a clip's media may have, preferred first.

    CMU-MOSEI ships some clips twice, `<clip>-edited` being the corrected cut
    the authors use; then the clip as named; then CH-SIMS's 4-digit zero padding.
    """
    names = [f"{clip.clip_id}-edited", clip.clip_id]
    if clip.clip_id.isdigit() and clip.clip_id.zfill(4) != clip.clip_id:
        names.append(clip.clip_id.zfill(4))
    return names


def has_media(root: Path) -> bool:
    """Whether a corpus has a media tree at all (else it is transcripts only)."""
    return any((root / folder).is_dir() for folder in MEDIA_FOLDERS)


class MediaIndex:
    """A corpus's media files, each video folder listed once, so finding a whole corpus's media stays linear."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stems: dict[Path, dict[str, list[Path]]] = {}

    def find(self, clip: Clip) -> Path | None:
        """The clip's media file under `Raw/` or `wav/`, whatever its container or codec; None if there is none."""
        for folder in MEDIA_FOLDERS:
            by_stem = self._by_stem(self.root / folder / clip.video_id)
            for name in media_names(clip):
                if name in by_stem:
                    return min(by_stem[name], key=_preference)
        return None

    def _by_stem(self, directory: Path) -> dict[str, list[Path]]:
        if directory not in self._stems:
            grouped: dict[str, list[Path]] = {}
            for path in _listing(directory):
                grouped.setdefault(path.stem, []).append(path)
            self._stems[directory] = grouped
        return self._stems[directory]


def _listing(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    with os.scandir(directory) as entries:  # file types come with the listing: no stat per file
        paths = [Path(e.path) for e in entries if e.is_file()]
    return [p for p in paths if p.suffix.lower() not in NOT_MEDIA]


def _preference(path: Path) -> tuple[int, str]:
    suffix = path.suffix.lower()
    return (MEDIA_PREFERENCE.index(suffix) if suffix in MEDIA_PREFERENCE else len(MEDIA_PREFERENCE), path.name)


def media_pattern(clip: Clip) -> str:
    """Where media were looked for, for error messages."""
    names = "|".join(media_names(clip))
    return " or ".join(f"{folder}/{clip.video_id}/{names}.*" for folder in MEDIA_FOLDERS)


def problem_listing(title: str, items: Sequence[str], limit: int = 20) -> str:
    """A multi-line error message naming (up to `limit` of) the items concerned."""
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title}:\n  {shown}{more}"
