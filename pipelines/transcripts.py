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
from collections.abc import Collection
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .write import read_metadata

# The utterance fields an earlier output gives back, as the ASR stage would have produced them.
FIELDS = ("start", "end", "text", "language", "language_probability", "asr_confidence", "asr_model")


class TranscriptsError(ValueError):
    """A `--transcripts` file that is not a readable mmml-annotate output."""


_UNREADABLE = (OSError, KeyError, TypeError, ValueError)  # pyarrow's errors derive from these


def _not_an_output(path: str | os.PathLike[str], err: Exception) -> TranscriptsError:
    return TranscriptsError(f"{path}: not an mmml-annotate output ({type(err).__name__}: {err})")


# The config sections that decide what an output's utterances are: a re-annotation takes them from it.
STORED_SECTIONS = ("asr", "segment")


def stored_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The result-relevant `asr` and `segment` settings of the run that made an earlier output."""
    try:
        identity = read_metadata(path)["identity"]
        return {section: identity[section] for section in STORED_SECTIONS}
    except _UNREADABLE as err:
        raise _not_an_output(path, err) from err


def stored_utterances(path: str | os.PathLike[str], video_ids: Collection[str]) -> dict[str, str]:
    """video_id -> JSON list of its utterances (`FIELDS`, in time order), for the wanted videos found in `path`.

    Columnar until the last step, so that an output of millions of utterances
    costs the driver its Arrow columns plus one string per wanted video, not
    one Python dict per row.
    """
    try:
        table = pq.read_table(path, columns=["video_id", "utterance", *FIELDS])
    except _UNREADABLE as err:
        raise _not_an_output(path, err) from err
    wanted = pc.is_in(table["video_id"], value_set=pa.array(sorted(video_ids), pa.string()))
    table = table.filter(wanted).sort_by([("video_id", "ascending"), ("utterance", "ascending")])
    ids = table["video_id"].combine_chunks()
    starts = [0, *(pc.indices_nonzero(pc.not_equal(ids[1:], ids[:-1])).to_numpy() + 1), len(table)]
    by_video = {}
    for low, high in zip(starts[:-1], starts[1:]):
        if high > low:
            rows = table.slice(low, high - low).drop_columns(["video_id"]).to_pylist()
            # Copies of one video (same id under several paths) repeat each utterance: keep it once.
            unique = {row.pop("utterance"): row for row in rows}
            by_video[ids[low].as_py()] = json.dumps(list(unique.values()))
    return by_video


def utterance_fields(stored: str) -> list[dict[str, Any]]:
    """The utterances of one video from its JSON string; a missing ASR confidence becomes NaN again."""
    return [
        {**u, "asr_confidence": math.nan if u["asr_confidence"] is None else u["asr_confidence"]}
        for u in json.loads(stored)
    ]
