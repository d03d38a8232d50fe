"""Stage 3a: find speech with Silero VAD and transcribe it with faster-whisper, word by word.

faster-whisper's `BatchedInferencePipeline` packs VAD speech regions into
30 s windows and decodes several windows in one batch. It beats the classic
sequential `WhisperModel.transcribe` on both CPU and GPU because silence is
never decoded and the decoder works on a batch at a time; it also drops the
temperature fallback and cross-window conditioning, which is what lets the
windows run in parallel.

Word timestamps are requested because utterances are built from words
(`pipelines.segment`), and the speech regions are returned too: speech in
which ASR recognised nothing still becomes a (wordless) utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from mmml.packaged import resolve

from .options import SAMPLE_RATE, ASROptions
from .segment import Word

WINDOW_SECONDS = 30  # Whisper's receptive field


@dataclass(frozen=True)
class Transcript:
    words: list[Word]
    speech: list[tuple[float, float]]  # VAD speech regions, seconds
    language: str
    language_probability: float
    duration: float  # seconds of audio


def load_asr(options: ASROptions, device: str | None = None) -> BatchedInferencePipeline:
    """Load Whisper once (per worker): the expensive part, kept out of the per-video path."""
    model = WhisperModel(
        resolve(options.model),
        device=device or options.device,
        compute_type=options.compute_type,
        cpu_threads=options.cpu_threads,
    )
    return BatchedInferencePipeline(model)


def vad_options(options: ASROptions) -> VadOptions:
    return VadOptions(
        threshold=options.vad_threshold,
        min_silence_duration_ms=options.vad_min_silence_ms,
        speech_pad_ms=options.vad_speech_pad_ms,
        max_speech_duration_s=WINDOW_SECONDS,
    )


def speech_regions(audio: np.ndarray, options: ASROptions) -> list[tuple[float, float]]:
    """Silero VAD (the model shipped inside faster-whisper) speech regions in seconds."""
    return [
        (r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE)
        for r in get_speech_timestamps(audio, vad_options(options), sampling_rate=SAMPLE_RATE)
    ]


def transcribe(pipeline: BatchedInferencePipeline, audio: np.ndarray, options: ASROptions) -> Transcript:
    """Timed words of all speech in `audio` (16 kHz mono float32); silence skips Whisper entirely."""
    duration = len(audio) / SAMPLE_RATE
    speech = speech_regions(audio, options)
    if not speech:
        return Transcript([], [], options.language or "", float("nan"), duration)
    segments, info = pipeline.transcribe(
        audio,
        language=options.language,
        beam_size=options.beam_size,
        batch_size=options.batch_size,
        word_timestamps=True,
        vad_filter=True,
        vad_parameters=vad_options(options),
    )
    words = [
        Word(float(w.start), float(w.end), w.word, float(w.probability))
        for segment in segments
        for w in segment.words or ()
        if w.word.strip()
    ]
    return Transcript(words, speech, info.language, float(info.language_probability), duration)
