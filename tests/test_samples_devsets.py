"""The fusion development sets: noise at the stated SNR, derangements, opposite-sign conflicts, band limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmml.config import SAMPLE_RATE
from pipelines.demux import decode_audio
from samples.devsets import (
    Row,
    add_noise,
    conflict_rows,
    degraded_rows,
    encode_audio,
    mismatched_rows,
    write_corpus,
)
from training.dataset import Clip, read_corpus


def clip(video: str, n: int, label: float, *, audio: float | None = None) -> Clip:
    voice = label if audio is None else audio
    return Clip(video, f"c{n}", f"sentence {n}", label, label, voice, "test", n + 2)


def test_noise_sits_at_the_asked_snr() -> None:
    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    sine = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # power 0.5² / 2 = 0.125
    noisy = add_noise(sine, 10.0, np.random.default_rng(0))
    noise_power = float(np.mean((noisy.astype(np.float64) - sine) ** 2))
    assert noisy.dtype == np.float32
    assert 10 * np.log10(0.125 / noise_power) == pytest.approx(10.0, abs=0.05)


def test_mismatched_rows_are_a_derangement_within_each_voice(tmp_path: Path) -> None:
    rows = [
        Row(voice, f"s{i}", f"words {voice} {i}", float(i), float(i), float(i), tmp_path / voice / f"s{i}.flac")
        for voice in ("en-us", "en-gb")
        for i in range(7)
    ]
    heard = mismatched_rows(rows, seed=3)
    assert [(r.video_id, r.clip_id, r.text, r.label) for r in heard] == [
        (r.video_id, r.clip_id, r.text, r.label) for r in rows
    ]
    for voice in ("en-us", "en-gb"):
        own = {r.clip_id: r.media for r in rows if r.video_id == voice}
        lent = {r.clip_id: r.media for r in heard if r.video_id == voice}
        assert all(lent[c] != own[c] for c in own)  # nobody keeps their own audio
        assert sorted(lent.values()) == sorted(own.values())  # every clip's audio is heard exactly once
        assert all(m.parent.name == voice for m in lent.values())  # and only in its own voice
    assert heard == mismatched_rows(rows, seed=3)


def test_conflict_rows_give_each_emotional_voice_words_of_the_opposite_sign(tmp_path: Path) -> None:
    voices = [
        (clip("actor_08", 0, 2.0), tmp_path / "a.wav"),
        (clip("actor_08", 1, 0.0), tmp_path / "neutral.wav"),
        (clip("actor_16", 2, -3.0), tmp_path / "b.wav"),
        (clip("actor_16", 3, -1.0), tmp_path / "c.wav"),
    ]
    sentences = [clip("w", 10, -2.4), clip("w", 11, -0.6), clip("w", 12, 1.2), clip("w", 13, 0.4), clip("w", 14, 3.0)]
    rows = conflict_rows(voices, sentences, seed=0)
    assert [r.media.name for r in rows] == ["a.wav", "b.wav", "c.wav"]  # the neutral voice conflicts with nothing
    assert [r.label_audio for r in rows] == [2.0, -3.0, -1.0]
    assert rows[0].label == rows[0].label_text == -2.4  # the only negative sentence with |label| >= 1
    assert {rows[1].label, rows[2].label} == {1.2, 3.0}  # positive ones, drawn without repeats
    assert all(np.sign(r.label) == -np.sign(r.label_audio) for r in rows)


def test_telephone_copies_lose_what_lies_above_the_band(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).normal(0, 0.1, 2 * SAMPLE_RATE).astype(np.float32)
    source = encode_audio(None, tmp_path / "white.flac", [], pcm=noise)
    voices = [(clip("actor_08", 0, 1.0), source)]
    (row,) = degraded_rows(voices, "telephone", tmp_path / "work")
    heard = decode_audio(row.media)
    spectrum = np.abs(np.fft.rfft(heard)) ** 2
    frequencies = np.fft.rfftfreq(len(heard), 1 / SAMPLE_RATE)
    assert spectrum[frequencies > 4000].sum() < 0.01 * spectrum.sum()
    assert spectrum[(frequencies > 500) & (frequencies < 3000)].sum() > 0.5 * spectrum.sum()
    corpus = read_corpus(write_corpus(tmp_path / "telephone", [row]))
    assert [(c.key, c.label, c.split) for c in corpus.clips] == [("actor_08/c0", 1.0, "test")]
    assert (tmp_path / "telephone" / "wav" / "actor_08" / "c0.wav").exists()
    with pytest.raises(ValueError, match="unknown recording condition 'radio'"):
        degraded_rows(voices, "radio", tmp_path / "work")
