"""Speech margins: what Whisper hears around each VAD region, and word times held within the region."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipelines.demux import decode_audio
from pipelines.options import ASROptions
from pipelines.vad import heard, speech_samples, widened, within_speech
from samples.media import speak

SR = 16_000


def test_widening_stops_at_the_middle_of_the_pause_and_at_the_audio_ends() -> None:
    regions = [(100, 200), (260, 400), (1000, 1100)]
    assert widened(regions, 1200, 50) == [(50, 230), (230, 450), (950, 1150)]
    assert widened(regions, 1120, 50) == [(50, 230), (230, 450), (950, 1120)]
    assert widened([(10, 20)], 25, 50) == [(0, 25)]
    assert widened(regions, 1200, 0) == regions and widened([], 100, 50) == []


def test_widening_the_narrow_margin_gives_the_regions_vad_pads_widely(tmp_path: Path) -> None:
    """On real speech with pauses from 0.1 to 1.2 s: regions padded by 200 ms and widened by 200 ms are those Silero
    pads by 400 ms (to a sample: Silero rounds a split pause's halves apart)."""
    phrases = ["good morning", "the film was long", "I liked the music", "see you soon", "thank you"]
    pieces = []
    for i, (phrase, pause) in enumerate(zip(phrases, (0.1, 0.3, 0.6, 1.2, 0.0))):
        pieces += [decode_audio(speak(phrase, tmp_path / f"{i}.wav")), np.zeros(int(pause * SR), np.float32)]
    audio = np.concatenate([np.zeros(SR // 2, np.float32), *pieces])
    narrow = ASROptions(vad_speech_pad_ms=200, whisper_pad_ms=400)
    wide = speech_samples(audio, replace(narrow, vad_speech_pad_ms=400))
    got = heard(speech_samples(audio, narrow), len(audio), narrow)
    assert len(got) == len(wide) >= 3
    assert np.abs(np.array(got) - np.array(wide)).max() <= 1, (got, wide)
    assert got != speech_samples(audio, narrow)  # guard: the margin did widen


def test_a_word_is_held_within_the_region_its_middle_is_nearest_to() -> None:
    regions = [(1.0, 2.0), (3.0, 4.0)]
    assert within_speech(1.2, 1.5, regions) == (1.2, 1.5)  # inside: unchanged
    assert within_speech(1.8, 2.3, regions) == (1.8, 2.0)  # stretched into the margin after the region
    assert within_speech(0.5, 1.2, regions) == (1.0, 1.2)
    assert within_speech(2.6, 2.8, regions) == (3.0, 3.0)  # all in the margin: at the nearer region's edge
    assert within_speech(2.2, 2.4, regions) == (2.0, 2.0)
    assert within_speech(0.5, 0.7, []) == (0.5, 0.7)
    assert within_speech(3.5, 4.6, regions) == pytest.approx((3.5, 4.0))
