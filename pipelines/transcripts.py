"""Stage 3, reused: the utterances of an earlier output, so that re-scoring skips ASR.

Users fix labels, retrain, and re-annotate. Speech recognition is by far the
most expensive stage, and what it produces (utterance boundaries, text,
language, ASR confidence) does not depend on the MMML checkpoint, so
`--transcripts EARLIER.parquet` hands those utterances back to the pipeline:
a video found in the earlier output (by `video_id`, i.e. by content, so a
moved corpus still matches) is decoded and scored only; any other video is
transcribed as usual.

Reuse is sound only when the earlier output was made with the same ASR and
segmentation settings as this run, so the caller compares them (both are in
the earlier file's metadata) and refuses a difference.

Utterances travel from the driver to the ASR stage as one JSON string per
video: a flat, always-present column that Ray Data blocks carry without
schema trouble ("" for a video that must be transcribed).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from .write import read_metadata

# The utterance fields an earlier output gives back, as the ASR stage would have produced them.
FIELDS = ("start", "end", "text", "language", "language_probability", "asr_confidence", "asr_model")


class TranscriptsError(ValueError):
    """A `--transcripts` file that is not a readable mmml-annotate output."""


@dataclass(frozen=True)
class StoredTranscripts:
    settings: dict[str, Any]  # the earlier run's result-relevant `asr` and `segment` settings
    by_video: dict[str, str]  # video_id -> JSON list of utterances (`FIELDS`), in time order


def load_transcripts(path: str | os.PathLike[str]) -> StoredTranscripts:
    """Every video's utterances in an earlier `mmml-annotate` output, with the settings that made them."""
    try:
        identity = read_metadata(path)["identity"]
        settings = {section: identity[section] for section in ("asr", "segment")}
        table = pq.read_table(path, columns=["video_id", "utterance", *FIELDS])
    except (OSError, KeyError, TypeError, ValueError) as err:  # pyarrow's errors derive from these
        raise TranscriptsError(f"{path}: not an mmml-annotate output ({type(err).__name__}: {err})") from err
    videos: dict[str, dict[int, dict[str, Any]]] = {}
    for row in table.to_pylist():
        # Keyed by utterance: copies of one video (same id under several paths) give each row once.
        videos.setdefault(row.pop("video_id"), {})[row.pop("utterance")] = row
    by_video = {
        video_id: json.dumps([rows[i] for i in sorted(rows)])
        for video_id, rows in videos.items()
    }
    return StoredTranscripts(settings, by_video)


def utterance_fields(stored: str) -> list[dict[str, Any]]:
    """The utterances of one video from its JSON string; a missing ASR confidence becomes NaN again."""
    return [
        {**u, "asr_confidence": math.nan if u["asr_confidence"] is None else u["asr_confidence"]}
        for u in json.loads(stored)
    ]
