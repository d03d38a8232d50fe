"""A small annotation corpus with known answers: spoken sentences with measured timings, and broken files.

Sentences are spoken by espeak-ng and joined with clear pauses, so each one
is one utterance; where each sentence starts and ends is measured from the
synthesised audio itself (first and last non-silent sample), not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.demux import decode_audio
from pipelines.discover import content_id
from tests import media

PAUSE = 1.0
SPOKEN = {
    "review.mp4": [
        "I really loved this movie, the acting was great.",
        "That was the worst film I have seen in years.",
        "The music was beautiful and the story was moving.",
    ],
    "café $(echo pwned) 'quoted' ü;.mp4": [
        "It was okay, nothing special at all.",
        "I would not watch it again.",
    ],
    "nested/audio only.wav": [
        "Honestly, what a waste of time.",
        "The ending was terrible.",
    ],
}
# file name -> the stage whose failure it must be recorded under
BROKEN = {
    "zero.mp4": "demux",
    "truncated.mp4": "demux",
    "no audio.mp4": "demux",
    "notes.mp4": "demux",
    "silent.mp4": "segment",
}


@dataclass
class Corpus:
    good: Path  # folder of spoken videos
    broken: Path  # folder of broken files
    sentences: dict[Path, list[tuple[str, float, float]]] = field(default_factory=dict)  # text, start, end


def build(root: Path) -> Corpus:
    media.require_tools()
    corpus = Corpus(root / "good", root / "broken")
    for name, lines in SPOKEN.items():
        path = corpus.good / name
        path.parent.mkdir(parents=True, exist_ok=True)
        corpus.sentences[path.resolve()] = _timeline(lines, root / ".measure")
        if path.suffix == ".wav":
            wavs = [media.speak(line, root / ".wav" / f"{i}.wav") for i, line in enumerate(lines)]
            media.concat_with_pauses(wavs, path, PAUSE)
        else:
            media.spoken_video(lines, path, PAUSE)
    corpus.broken.mkdir(parents=True, exist_ok=True)
    (corpus.broken / "zero.mp4").write_bytes(b"")
    media.truncate(corpus.good / "review.mp4", corpus.broken / "truncated.mp4", 0.3)
    media.video_without_audio(corpus.broken / "no audio.mp4")
    (corpus.broken / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    media.video_from_audio(media.silence(3.0, root / ".silence.wav"), corpus.broken / "silent.mp4")
    return corpus


def _timeline(lines: list[str], scratch: Path) -> list[tuple[str, float, float]]:
    """Where each sentence is audible once the clips are joined with `PAUSE` seconds after each."""
    timeline, offset = [], 0.0
    for i, line in enumerate(lines):
        audio = decode_audio(media.speak(line, scratch / f"{i}.wav"))
        loud = np.flatnonzero(np.abs(audio) > 0.02)
        timeline.append((line, offset + loud[0] / 16_000, offset + loud[-1] / 16_000))
        offset += len(audio) / 16_000 + PAUSE
    return timeline


GONE = "/gone/away.mp4"


def annotation_rows(corpus: Corpus) -> list[dict]:
    """An annotation of the spoken corpus at its measured sentence times, with known scores (fused = text =
    1.26 - 0.5 × the utterance's index, audio 0), one wordless utterance and one video that has vanished."""
    rows = []
    for path, sentences in corpus.sentences.items():
        for i, (text, start, end) in enumerate(sentences):
            rows.append(_row(str(path), content_id(path), i, text, start, end, score=1.26 - 0.5 * i))
    first = rows[0]
    rows.append({**first, "utterance": 99, "text": "", "start": 0.1, "end": 0.6, "asr_confidence": float("nan")})
    rows.append(_row(GONE, "f" * 16, 0, "this video was moved away", 0.0, 1.0, score=-2.0))
    return rows


def _row(video_path, video_id, utterance, text, start, end, score) -> dict:
    return {
        "video_path": video_path,
        "video_id": video_id,
        "utterance": utterance,
        "text": text,
        "start": round(start, 3),
        "end": round(end, 3),
        "language": "en",
        "language_probability": 1.0,
        "asr_confidence": 0.9,
        "score_fused": score,
        "score_text": score,
        "score_audio": 0.0,
        "model_id": "m" * 16,
        "asr_model": "packaged:whisper-tiny.en",
    }
