"""Stage 3a: where is speech? Silero VAD, the model shipped inside faster-whisper.

VAD runs once per video: its regions decide what Whisper decodes
(`pipelines.windows`) and which speech without words still becomes an
utterance (`pipelines.segment`). Training cuts its clips with the same
settings (`training.audio_cache.trim_to_speech`).

Two margins. A region keeps `vad_speech_pad_ms` around its speech: where
utterances begin and end, and what a training clip holds. Whisper hears a
wider one, `whisper_pad_ms` (faster-whisper's batched default, 400 ms):
with the narrow margin alone it hears pauses shortened and first and last
sounds clipped, and makes more errors. A word Whisper places in the wider
margin is brought back within its region (`within_speech`): its timing
stays as exact as the narrow margin makes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .options import SAMPLE_RATE, WINDOW_SECONDS, ASROptions
from .parts import Regions


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


def heard(regions: Regions, length: int, options: ASROptions) -> Regions:
    """What Whisper hears of each region: `whisper_pad_ms` around its speech instead of `vad_speech_pad_ms`."""
    return widened(regions, length, (options.whisper_pad_ms - options.vad_speech_pad_ms) * SAMPLE_RATE // 1000)


def widened(regions: Regions, length: int, margin: int) -> Regions:
    """Each region `margin` samples wider on both sides, as Silero VAD pads its speech.

    Never past the middle of the pause to a neighbouring region (which is
    where Silero splits a pause too short for both margins), nor past the
    audio's ends: so widening regions padded by p by another m gives the
    regions VAD pads by p + m.
    """
    if margin <= 0:
        return list(regions)
    out = []
    for i, (start, end) in enumerate(regions):
        low = (regions[i - 1][1] + start) // 2 if i else 0
        high = (end + regions[i + 1][0]) // 2 if i + 1 < len(regions) else length
        out.append((max(low, start - margin), min(high, end + margin)))
    return out


def within_speech(start: float, end: float, regions: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """A word's [start, end] seconds held inside the speech region its middle is nearest to (unchanged if none)."""
    if not regions:
        return start, end
    middle = (start + end) / 2
    low, high = min(regions, key=lambda region: _distance(middle, region))
    return min(max(start, low), high), min(max(end, low), high)


def _distance(time: float, region: tuple[float, float]) -> float:
    return max(region[0] - time, 0.0, time - region[1])
