"""Demux: real ffmpeg on real (synthesised) media, including the broken kinds users have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.demux import DemuxError, decode_audio
from tests import media


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    media.require_tools()
    root = tmp_path_factory.mktemp("demux")
    return media.spoken_video(["Hello there.", "A second sentence."], root / "clip $(rm -rf) 'ü'.mp4", 0.5)


def test_decodes_16k_mono_float_in_memory(clip: Path) -> None:
    samples = decode_audio(clip)
    assert samples.dtype == np.float32 and samples.ndim == 1 and samples.flags.writeable
    assert 1.5 < len(samples) / 16_000 < 6.0
    assert 0.01 < np.abs(samples).max() <= 1.0


def test_resamples_on_request(clip: Path) -> None:
    ratio = len(decode_audio(clip, sample_rate=8_000)) / len(decode_audio(clip))
    assert ratio == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d, c: media.video_without_audio(d / "mute.mp4"), "no audio stream"),
        (lambda d, c: media.truncate(c, d / "cut.mp4"), "cannot decode"),
        (lambda d, c: _write(d / "zero.mp4", b""), "0 bytes"),
        (lambda d, c: _write(d / "text.mp4", b"not media " * 50), "cannot decode"),
        (lambda d, c: d / "missing.mp4", "no such file"),
        (lambda d, c: d, "not a regular file"),
    ],
    ids=["audio-less", "truncated", "zero-byte", "non-media", "missing", "directory"],
)
def test_broken_inputs_raise_demux_error_naming_the_file(tmp_path: Path, clip: Path, make, reason: str) -> None:
    path = make(tmp_path, clip)
    with pytest.raises(DemuxError, match=reason) as info:
        decode_audio(path)
    assert str(Path(path).resolve()) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", ["http://example.com/a.mp4", "concat:/etc/passwd|/etc/hosts", "pipe:0"])
def test_refuses_urls_and_protocols(url: str) -> None:
    with pytest.raises(DemuxError, match="only local files"):
        decode_audio(url)


def test_time_limit(clip: Path) -> None:
    with pytest.raises(DemuxError, match="limit"):
        decode_audio(clip, timeout_s=0.001)
