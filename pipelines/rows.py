"""The rows that travel between the stages: one per utterance with its audio, or one error row per failed video.

Every stage reports a video it cannot handle as a row instead of raising, so
one bad file never stops a run, and every row carries the same fields,
whichever stage made it: the error fields (`NO_ERROR` when there is none)
and the utterance fields (`EMPTY_UTTERANCE` on an error row). The stages
(`pipelines.engine`) build their rows here, so that the collector
(`pipelines.collecting`) can regroup any of them into whole videos.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np

from .demux import DemuxError
from .options import SAMPLE_RATE
from .segment import utterance_audio
from .transcripts import utterance_fields


class NoSpeech(ValueError):
    """A decodable file in which VAD and ASR found nothing to annotate."""


NO_ERROR = {"error_stage": "", "error_type": "", "error_message": "", "error_traceback": ""}
# A bad or silent file, said in its error message; anything else is kept with its traceback.
_EXPECTED = (DemuxError, NoSpeech)
EMPTY_UTTERANCE = {
    "utterance": -1,
    "start": np.nan,
    "end": np.nan,
    "text": "",
    "language": "",
    "language_probability": np.nan,
    "asr_confidence": np.nan,
    "asr_model": "",
    "n_utterances": 0,
    "duration": 0.0,
    "audio": np.zeros(0, np.float32),
}


def failure(path: str, stage: str, err: Exception) -> dict[str, str]:
    """The error fields of a video that failed in `stage`; a traceback only where the error is not a bad file's."""
    message = str(err) if path in str(err) else f"{path}: {err}"
    trace = "" if isinstance(err, _EXPECTED) else "".join(traceback.format_exception(err))
    return {"error_stage": stage, "error_type": type(err).__name__, "error_message": message, "error_traceback": trace}


def no_speech_error(path: str, seconds: float) -> NoSpeech:
    """Raised where a recording's rows are already on their way (a stream), so that its error row replaces them."""
    return NoSpeech(f"{path}: no speech found in {seconds:.1f} s of audio (silent or no voice); nothing to annotate")


def no_speech(path: str, seconds: float) -> dict[str, str]:
    """The error fields of a silent video, which has no utterance to score."""
    return failure(path, "segment", no_speech_error(path, seconds))


def stored_fields(video: dict[str, Any]) -> list[dict[str, Any]] | dict[str, str]:
    """A video's stored utterances (`--transcripts`), or its error fields if they cannot be read."""
    try:
        return utterance_fields(video["transcript"])
    except Exception as err:
        return failure(video["video_path"], "segment", err)


def videos_of(group: dict[str, Any]) -> list[dict[str, Any]]:
    """The demuxed group, one dict per video (its audio a view into the group's array)."""
    ends = np.cumsum(group["samples"])
    names = ("video_path", "video_id", "transcript", "streamed", *NO_ERROR)
    return [
        {**{name: group[name][i] for name in names}, "audio": group["audio"][end - n : end]}
        for i, (n, end) in enumerate(zip(group["samples"], ends))
    ]


def video_rows(video: dict[str, Any], found: list[dict[str, Any]] | dict[str, str]) -> list[dict[str, Any]]:
    """A video's utterance rows, each with its audio, or its one error row."""
    duration = len(video["audio"]) / SAMPLE_RATE
    head = {"video_path": video["video_path"], "video_id": video["video_id"]}
    if isinstance(found, dict):
        return [{**head, **EMPTY_UTTERANCE, "duration": duration, **found}]
    return [
        {
            **head,
            **fields,
            "utterance": i,
            "n_utterances": len(found),
            "duration": duration,
            "audio": np.ascontiguousarray(utterance_audio(video["audio"], fields["start"], fields["end"])),
            **NO_ERROR,
        }
        for i, fields in enumerate(found)
    ]
