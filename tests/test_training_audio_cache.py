"""The decode cache: each file decoded once, re-decoded when it changes, no pickle, errors named."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines.demux import decode_audio
from tests.media import speak, truncate
from training.audio_cache import AudioCache, entry_length, load_entry


class CountingDecoder:
    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, path: Path, *, sample_rate: int) -> np.ndarray:
        self.calls.append(Path(path))
        return decode_audio(path, sample_rate=sample_rate)


def test_second_decode_of_the_same_file_is_free(tmp_path: Path, mmsa_corpus: Path) -> None:
    media = mmsa_corpus / "Raw" / "vid_a" / "1.mp4"
    decoder = CountingDecoder()
    entry = AudioCache(tmp_path, decoder=decoder).ensure(media)
    assert AudioCache(tmp_path, decoder=decoder).ensure(media) == entry  # a fresh instance: the disk is the cache
    assert decoder.calls == [media]
    np.testing.assert_array_equal(load_entry(entry), decode_audio(media))
    assert np.load(entry, allow_pickle=False).dtype == np.float32
    assert entry_length(entry) == len(decode_audio(media))
    assert len(load_entry(entry, max_samples=1600)) == 1600


def test_changed_file_is_decoded_again(tmp_path: Path) -> None:
    wav = speak("first version", tmp_path / "clip.wav")
    decoder = CountingDecoder()
    cache = AudioCache(tmp_path / "cache", decoder=decoder)
    first = load_entry(cache.ensure(wav))
    speak("a rather longer second version of the clip", wav)
    stat = wav.stat()
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_entry(cache.ensure(wav))
    assert len(decoder.calls) == 2 and len(second) > len(first)


def test_failures_are_returned_with_the_file_named(tmp_path: Path, mmsa_corpus: Path) -> None:
    good = mmsa_corpus / "wav" / "vid_b" / "0001.wav"
    broken = truncate(mmsa_corpus / "Raw" / "vid_a" / "2.mp4", tmp_path / "broken.mp4", keep_fraction=0.05)
    results = AudioCache(tmp_path / "cache").ensure_all([good, broken], workers=2)
    assert isinstance(results[0], Path) and results[0].suffix == ".npy"
    assert isinstance(results[1], ValueError) and "broken.mp4" in str(results[1])
    assert not list((tmp_path / "cache").rglob("*.tmp.npy"))  # nothing half-written left behind


def test_cache_entries_do_not_depend_on_the_working_directory(
    tmp_path: Path, mmsa_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = shutil.copy2(mmsa_corpus / "wav" / "vid_b" / "0002.wav", tmp_path / "clip.wav")
    cache = AudioCache(tmp_path / "cache", decoder=CountingDecoder())
    monkeypatch.chdir(tmp_path)
    assert cache.entry(Path("clip.wav")) == cache.entry(Path(copy))
