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
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import ffmpeg
import numpy as np

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # http://..., concat:..., pipe:...
_STDERR_TAIL = 600


class DemuxError(ValueError):
    """A file that cannot be decoded to audio; the message names the file and what is wrong."""


def decode_audio(path: str | os.PathLike[str], *, sample_rate: int = 16_000, timeout_s: float = 600.0) -> np.ndarray:
    """The first audio stream of a local media file as float32 mono samples at `sample_rate`."""
    source = _local_file(path)
    try:
        completed = subprocess.run(
            ffmpeg_command(source, sample_rate),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise DemuxError(f"{source}: decoding took longer than the {timeout_s:g} s limit") from err
    if completed.returncode != 0:
        raise DemuxError(f"{source}: ffmpeg cannot decode an audio stream ({_explain(completed.stderr)})")
    samples = np.frombuffer(completed.stdout, dtype=np.float32)
    if samples.size == 0:
        raise DemuxError(f"{source}: no audio samples decoded ({_explain(completed.stderr) or 'empty audio stream'})")
    return samples.copy()  # writable, and frees ffmpeg's byte buffer


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
