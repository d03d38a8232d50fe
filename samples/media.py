"""Sample media made on the spot: espeak-ng speech, muxed into video by ffmpeg.

The demo, the benchmarks and the tests all build their videos here, so
everything they run on is a real file that goes through the same decoders
users' files do; nothing is shipped or downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mmml.config import SAMPLE_RATE


def require_tools() -> None:
    """Fail loudly (not skip) when the system tools the product needs are absent."""
    missing = [tool for tool in ("ffmpeg", "ffprobe", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"missing system tools: {', '.join(missing)} (install them with `make setup`)")


def speak(text: str, wav_path: Path, *, voice: str = "en-us", words_per_minute: int = 150) -> Path:
    """Synthesise `text` to a WAV file with espeak-ng."""
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            voice,
            "-s",
            str(words_per_minute),
            "-w",
            str(wav_path),
            "--",
            text,
        ],  # text is never an option
        check=True,
        capture_output=True,
    )
    return wav_path


def silence(seconds: float, wav_path: Path) -> Path:
    """A WAV of digital silence."""
    _ffmpeg(["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=mono", "-t", f"{seconds}", str(wav_path)])
    return wav_path


def concat_with_pauses(wavs: Sequence[Path], out: Path, pause_seconds: float = 1.0) -> Path:
    """Join spoken clips with silent gaps, so VAD sees separate utterances."""
    inputs: list[str] = []
    for wav in wavs:
        inputs += ["-i", str(wav)]
    parts = []
    for i in range(len(wavs)):
        parts.append(f"[{i}:a]aresample={SAMPLE_RATE},aformat=channel_layouts=mono,apad=pad_dur={pause_seconds}[a{i}]")
    joined = "".join(f"[a{i}]" for i in range(len(wavs)))
    graph = ";".join(parts) + f";{joined}concat=n={len(wavs)}:v=0:a=1[out]"
    _ffmpeg(inputs + ["-filter_complex", graph, "-map", "[out]", "-ar", str(SAMPLE_RATE), "-ac", "1", str(out)])
    return out


def _test_picture(size: str = "160x120", rate: int = 10) -> list[str]:
    """ffmpeg input: a synthetic test-pattern picture."""
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]


_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def video_from_audio(wav: Path, mp4: Path, *, size: str = "160x120", rate: int = 10) -> Path:
    """Mux `wav` under a synthetic test-pattern picture into an MP4 (H.264 + AAC)."""
    mp4.parent.mkdir(parents=True, exist_ok=True)
    _ffmpeg([*_test_picture(size, rate), "-i", str(wav), "-shortest", *_H264, "-c:a", "aac", "-b:a", "64k", str(mp4)])
    return mp4


def video_without_audio(mp4: Path, seconds: float = 2.0) -> Path:
    """An MP4 with a picture and no audio stream."""
    _ffmpeg([*_test_picture(), "-t", f"{seconds}", *_H264, str(mp4)])
    return mp4


def spoken_video(sentences: Sequence[str], mp4: Path, pause_seconds: float = 1.0, voice: str = "en-us") -> Path:
    """An MP4 in which each sentence is spoken (in an espeak-ng `voice`: a language), separated by pauses."""
    work = mp4.parent / f".{mp4.stem}_parts"
    work.mkdir(parents=True, exist_ok=True)
    wavs = [speak(s, work / f"{i}.wav", voice=voice) for i, s in enumerate(sentences)]
    joined = concat_with_pauses(wavs, work / "joined.wav", pause_seconds)
    video_from_audio(joined, mp4)
    shutil.rmtree(work)
    return mp4


def truncate(src: Path, dst: Path, keep_fraction: float = 0.3) -> Path:
    """A copy of `src` cut short mid-stream, as a partial download would be."""
    data = src.read_bytes()
    dst.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return dst


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True, capture_output=True)
