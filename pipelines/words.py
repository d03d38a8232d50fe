"""What ASR hands to the segmenter: timed words (`pipelines.transcribe` makes them, `pipelines.segment` reads them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    start: float  # seconds in its video
    end: float
    text: str  # as Whisper writes it, with its leading space and punctuation
    probability: float  # Whisper's word probability
