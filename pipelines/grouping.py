"""Videos packed into groups of consecutive inputs: the pipeline's unit of decoding and transcription.

Thousands of short clips would otherwise be thousands of small Whisper
decodes; a group is decoded by one task and transcribed together, its
speech sharing Whisper windows (`pipelines.windows`). Groups are bounded in
count and in input bytes, so a group's waveforms stay a bounded block, and
they depend on the input order alone, so the same inputs are always packed
(and transcribed) the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .discover import Video
from .options import ASROptions


def group_items(videos: Sequence[Video], asr: ASROptions, transcripts: Mapping[str, str]) -> list[dict[str, list]]:
    """The pipeline's input rows: one per group of videos (`groups`), with each video's stored utterances or ""."""
    return [
        {
            "video_path": [v.path for v in group],
            "video_id": [v.video_id for v in group],
            "transcript": [transcripts.get(v.video_id, "") for v in group],
        }
        for group in groups(videos, asr.group_videos, asr.group_mb * 2**20)
    ]


def groups(videos: Sequence[Video], max_videos: int, max_bytes: int) -> list[list[Video]]:
    """Consecutive videos, at most `max_videos` and `max_bytes` of input files per group (a larger file alone)."""
    out: list[list[Video]] = []
    size = 0
    for video in videos:
        bytes_ = _file_bytes(video.path)
        if not out or len(out[-1]) >= max_videos or size + bytes_ > max_bytes:
            out.append([])
            size = 0
        out[-1].append(video)
        size += bytes_
    return out


def _file_bytes(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # vanished or unreadable: demux reports it
        return 0
