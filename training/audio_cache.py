"""Decode each media file once: 16 kHz mono float32 kept as `.npy` files on disk.

Decoding a corpus through ffmpeg costs far more than an epoch of a small
model, and every seed and every experiment of a paper table reads the same
clips. The cache key is sha256(resolved path, size, mtime_ns, sample rate):
touching or replacing a file changes the key, so a stale decode is never
served. Entries are plain `.npy` arrays (never pickle), written to a
temporary name and renamed, so a concurrent or interrupted writer never
leaves half an entry behind. The whole clip is stored; truncation to
`max_seconds` happens at batch time, so changing it needs no re-decode.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mmml.atomic import replacing_file
from mmml.config import SAMPLE_RATE
from mmml.packaged import cache_dir

AudioDecoder = Callable[..., np.ndarray]


def default_cache_dir() -> Path:
    return cache_dir() / "audio"


def _ffmpeg_decoder() -> AudioDecoder:
    from pipelines.demux import decode_audio  # the annotation pipeline's decoder: one ffmpeg path for both

    return decode_audio


def trim_to_speech(audio: np.ndarray) -> np.ndarray:
    """From the first to the last speech region that Silero VAD finds, with annotation's VAD settings.

    Annotation scores VAD-cut utterances, so a training clip with a second
    of silence at each end (RAVDESS) is cut the same way; a clip without
    detected speech is kept whole.
    """
    from pipelines.options import ASROptions
    from pipelines.vad import speech_regions

    regions = speech_regions(audio, ASROptions())
    if not regions:
        return audio
    return audio[int(regions[0][0] * SAMPLE_RATE) : int(np.ceil(regions[-1][1] * SAMPLE_RATE))]


class AudioCache:
    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        decoder: AudioDecoder | None = None,
        trim_silence: bool = False,
    ) -> None:
        if trim_silence and sample_rate != SAMPLE_RATE:
            raise ValueError(f"cutting clips to their speech needs 16 kHz audio (Silero VAD), not {sample_rate} Hz")
        self.directory = Path(directory) if directory else default_cache_dir()
        self.sample_rate = sample_rate
        self.trim_silence = trim_silence
        self._decoder = decoder

    def key(self, media: Path) -> str:
        stat = media.stat()
        trimmed = "|speech" if self.trim_silence else ""
        identity = f"{media.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.sample_rate}{trimmed}"
        return hashlib.sha256(identity.encode()).hexdigest()

    def entry(self, media: Path) -> Path:
        key = self.key(media)
        return self.directory / key[:2] / f"{key}.npy"

    def ensure(self, media: str | Path) -> Path:
        """The cache entry for `media`, decoding it first if needed; decoder errors propagate."""
        media = Path(media)
        entry = self.entry(media)
        if entry.is_file():
            return entry
        decoder = self._decoder or _ffmpeg_decoder()
        audio = np.ascontiguousarray(decoder(media, sample_rate=self.sample_rate), dtype=np.float32)
        if self.trim_silence and audio.ndim == 1 and audio.size:
            audio = np.ascontiguousarray(trim_to_speech(audio))
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"{media}: decoded to no mono audio samples (shape {audio.shape})")
        with replacing_file(entry) as handle:
            np.save(handle, audio, allow_pickle=False)
        return entry

    def ensure_all(
        self, media: Iterable[Path], *, workers: int | None = None, progress: Callable[[], None] | None = None
    ) -> list[Path | Exception]:
        """Entries for many files, decoded in parallel (ffmpeg runs out of process); failures returned, not raised."""

        def one(path: Path) -> Path | Exception:
            try:
                return self.ensure(path)
            except (ValueError, OSError) as err:  # DemuxError is a ValueError
                return err
            finally:
                if progress is not None:
                    progress()

        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            return list(pool.map(one, list(media)))


def load_entry(entry: Path, max_samples: int | None = None) -> np.ndarray:
    """A cached waveform, memory-mapped and cut to `max_samples` (no pickle is ever loaded)."""
    audio = np.load(entry, mmap_mode="r", allow_pickle=False)
    return np.array(audio[:max_samples], dtype=np.float32)


def entry_length(entry: Path) -> int:
    """Number of samples in a cached waveform, read from the header only."""
    return int(np.load(entry, mmap_mode="r", allow_pickle=False).shape[0])
