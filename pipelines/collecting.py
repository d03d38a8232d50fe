"""Utterance rows regrouped into whole videos, each handed on as soon as its last row has come.

The stages emit one row per utterance (or one error row per failed video),
and they arrive at the driver in any order: scoring batches span videos,
calls finish out of order, a long recording's rows come a part at a time and
a retried task may deliver a row twice. The caller persists per video, so
the rows are collected here until a video is complete, and only then handed
on, its rows in order; the driver holds only the rows of videos in flight.
Both the Ray pipeline (`pipelines.engine`) and the in-process re-scoring
(`pipelines.local`) end here, so they give the same results.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .discover import Video
from .write import UTTERANCES


@dataclass
class VideoResult:
    """One video's outcome, whole, as the caller persists it: its output rows in order, or its error."""

    video: Video
    rows: list[dict[str, Any]] = field(default_factory=list)  # utterance rows (`pipelines.write.UTTERANCES`)
    error: dict[str, Any] | None = None  # error row (`pipelines.write.ERRORS`)
    audio_seconds: float = 0.0


def collected(rows: Iterable[dict[str, Any]], videos: Iterable[Video]) -> Iterator[VideoResult]:
    """Each of `videos` as soon as all its `rows` have come, in the order they complete."""
    by_id = {v.video_id: v for v in videos}
    collector = Collector()
    for row in rows:
        result = collector.add(row, by_id[row["video_id"]])
        if result is not None:
            yield result


class Collector:
    """Regroups the stream of rows into whole videos (rows of one video may arrive in several batches).

    A video is whole when it holds as many rows as one of them announces
    (`n_utterances`; a long recording announces it on its last row only).
    """

    def __init__(self) -> None:
        self.pending: dict[str, dict[int, dict[str, Any]]] = {}
        self.expected: dict[str, int] = {}
        self.finished: set[str] = set()

    def add(self, row: dict[str, Any], video: Video) -> VideoResult | None:
        """`video`'s result if `row` completes it, else None (also for late rows of a video already handed on)."""
        key = video.video_id
        if key in self.finished:  # rows of a long recording that failed later on
            return None
        if row["utterance"] < 0:  # failed before segmentation (or part-way through a stream): its only result
            return self._finish(key, VideoResult(video, error=_error_fields(row), audio_seconds=row["duration"]))
        rows = self.pending.setdefault(key, {})
        rows[row["utterance"]] = row  # keyed: a retried task can never duplicate a row
        if row["n_utterances"]:
            self.expected[key] = row["n_utterances"]
        if len(rows) < self.expected.get(key, len(rows) + 1):
            return None
        ordered = [rows[i] for i in sorted(rows)]
        seconds = max(r["duration"] for r in ordered)
        failed = next((r for r in ordered if r["error_stage"]), None)
        if failed is not None:
            return self._finish(key, VideoResult(video, error=_error_fields(failed), audio_seconds=seconds))
        return self._finish(key, VideoResult(video, rows=[_output_fields(r) for r in ordered], audio_seconds=seconds))

    def _finish(self, key: str, result: VideoResult) -> VideoResult:
        self.pending.pop(key, None)
        self.expected.pop(key, None)
        self.finished.add(key)
        return result


_OUTPUT = tuple(UTTERANCES.names)  # the output columns, in order


def _output_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in _OUTPUT}


def _error_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "video_path": row["video_path"],
        "video_id": row["video_id"],
        "stage": row["error_stage"],
        "error_type": row["error_type"],
        "message": row["error_message"],
        "traceback": row["error_traceback"],
    }
