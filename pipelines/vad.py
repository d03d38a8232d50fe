"""Stage 3a: where is speech? Silero VAD, the model shipped inside faster-whisper.

VAD runs once per video: its regions decide what Whisper decodes
(`pipelines.windows`) and which speech without words still becomes an
utterance (`pipelines.segment`). Training cuts its clips with the same
settings (`training.audio_cache.trim_to_speech`).
"""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .options import SAMPLE_RATE, WINDOW_SECONDS, ASROptions


def vad_options(options: ASROptions) -> VadOptions:
    return VadOptions(
        threshold=options.vad_threshold,
        min_silence_duration_ms=options.vad_min_silence_ms,
        speech_pad_ms=options.vad_speech_pad_ms,
        max_speech_duration_s=WINDOW_SECONDS,  # a region always fits one Whisper window
    )


def speech_samples(audio: np.ndarray, options: ASROptions) -> list[tuple[int, int]]:
    """Speech regions as [start, end) sample indices of `audio` (16 kHz mono float32)."""
    return [
        (int(r["start"]), int(r["end"]))
        for r in get_speech_timestamps(audio, vad_options(options), sampling_rate=SAMPLE_RATE)
    ]


def speech_regions(audio: np.ndarray, options: ASROptions) -> list[tuple[float, float]]:
    """Speech regions in seconds."""
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in speech_samples(audio, options)]
