"""Stage 2: demux a container's first audio stream to 16 kHz mono float PCM, in memory.

ffmpeg reads every container and codec users throw at us, so it is the only
decoder in the project (training decodes through this function too). The
command is built with ffmpeg-python and run as a list of arguments, never
through a shell; raw `f32le` samples come back on a pipe, so no temporary WAV
ever touches the disk.

Inputs are untrusted: the path must be an existing local regular file, it is
handed to ffmpeg with an explicit `file:` prefix and a `file,pipe` protocol
whitelist (a file named `http://...` or `concat:...` cannot make ffmpeg reach
the network or other files), and every decode runs under a time limit.

Short files are decoded whole (`decode_audio`); a long recording streams
in blocks (`stream_audio`), so its waveform is never whole in memory.
"""

from __future__ import annotations

import collections
import os
import re
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import ffmpeg
import numpy as np

from .options import SAMPLE_RATE

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # http://..., concat:..., pipe:...
_STDERR_TAIL = 600


class DemuxError(ValueError):
    """A file that cannot be decoded to audio; the message names the file and what is wrong."""


class TooLong(DemuxError):
    """Longer than the caller wants whole in memory: stream it instead (`stream_audio`)."""


def decode_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = SAMPLE_RATE,
    timeout_s: float = 600.0,
    max_seconds: float | None = None,
) -> np.ndarray:
    """The first audio stream of a local media file as float32 mono samples at `sample_rate`.

    `max_seconds`: stop and raise `TooLong` as soon as the audio runs longer.
    """
    blocks, total = [], 0
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    for block in stream_audio(path, sample_rate=sample_rate, timeout_s=timeout_s, deadline=True):
        blocks.append(block)
        total += len(block)
        if limit is not None and total > limit:
            raise TooLong(f"{_local_file(path)}: longer than {max_seconds:g} s")
    return np.concatenate(blocks)


def stream_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = SAMPLE_RATE,
    block_seconds: float = 30.0,
    timeout_s: float = 600.0,
    deadline: bool = False,
) -> Iterator[np.ndarray]:
    """The first audio stream in blocks of `block_seconds` (the last one shorter): any length in bounded memory.

    `timeout_s` bounds ffmpeg's silence between two blocks (the consumer may
    take its time), or the whole decode with `deadline=True`. A file that
    fails part-way raises `DemuxError` after the blocks decoded before the fault.
    """
    source = _local_file(path)
    block_bytes = int(block_seconds * sample_rate) * 4
    process = subprocess.Popen(
        ffmpeg_command(source, sample_rate), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stderr = _Drain(process.stderr)
    limit = time.monotonic() + timeout_s
    produced = False
    try:
        while True:
            data = _read(process.stdout, block_bytes, limit if deadline else time.monotonic() + timeout_s)
            if data is None:
                raise DemuxError(f"{source}: decoding took longer than the {timeout_s:g} s limit")
            usable = len(data) - len(data) % 4
            if usable:
                produced = True
                yield np.frombuffer(data[:usable], dtype=np.float32).copy()  # writable, owns its memory
            if len(data) < block_bytes:
                break
        if process.wait() != 0:
            raise DemuxError(f"{source}: ffmpeg cannot decode an audio stream ({_explain(stderr.text())})")
        if not produced:
            raise DemuxError(f"{source}: no audio samples decoded ({_explain(stderr.text()) or 'empty audio stream'})")
    finally:
        process.kill()
        process.wait()
        stderr.join()


def _read(pipe: IO[bytes], size: int, deadline: float) -> bytes | None:
    """Up to `size` bytes (fewer only at the end of the stream), or None past `deadline`."""
    parts, got = [], 0
    while got < size:
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        chunk = os.read(pipe.fileno(), min(size - got, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class _Drain(threading.Thread):
    """Reads ffmpeg's stderr as it comes, so a chatty decoder never blocks on a full pipe; keeps the tail."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe, self.tail = pipe, collections.deque(maxlen=64)
        self.start()

    def run(self) -> None:
        for line in self.pipe:
            self.tail.append(line)

    def text(self) -> bytes:
        self.join(timeout=5)
        return b"".join(self.tail)


def ffmpeg_command(source: Path, sample_rate: int) -> list[str]:
    """ffmpeg argv: first audio stream of `source`, resampled, downmixed, as raw f32le on stdout."""
    stream = ffmpeg.input(f"file:{source}", protocol_whitelist="file,pipe")
    stream = stream.output(
        "pipe:1", map="0:a:0", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, vn=None, sn=None, dn=None
    )
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *stream.get_args()]


def _local_file(path: str | os.PathLike[str]) -> Path:
    """Resolve `path` to an existing, non-empty regular file, refusing URLs and protocols."""
    text = os.fspath(path)
    if _URL.match(text) and not Path(text).exists():
        raise DemuxError(f"{text}: only local files are accepted, not URLs or ffmpeg protocols")
    source = Path(text).resolve()
    if not source.exists():
        raise DemuxError(f"{source}: no such file")
    if not source.is_file():
        raise DemuxError(f"{source}: not a regular file")
    if source.stat().st_size == 0:
        raise DemuxError(f"{source}: empty file (0 bytes)")
    return source


def _explain(stderr: bytes) -> str:
    """The end of ffmpeg's complaint, on one line: enough to tell 'no audio stream' from 'corrupt data'."""
    message = " ".join(stderr.decode("utf-8", "replace").split())
    if "matches no streams" in message:
        return "the file has no audio stream"
    return message[-_STDERR_TAIL:]
