"""Why our words differ from `BatchedInferencePipeline`'s on a recording: windows, options, or the audio itself.

For each recording (a `.mp4` with its spoken text in `.txt` beside it, as
`annotate_throughput.py --shape long` builds them):

1. whether our VAD regions and Whisper windows are the peer's (its
   `get_speech_timestamps` and `collect_chunks` on its own decoded audio);
2. window by window, whether our lanes' words are the peer's words, once from
   our decoded audio (ffmpeg to float samples, `pipelines.demux`) and once from
   the peer's (faster-whisper's PyAV decoder, 16-bit samples);
3. the corpus word error rate of our transcripts (each recording alone) from
   each decoding, and from ours rounded to 16 bits, against the peer's own.

Same Whisper, int8, beam 5, batch 8 on both sides; no scoring. Our loop repair
stays on (the peer has none): a window it decodes again counts as differing.

    python benchmarks/peer_words.py /tmp/annotate-bench/videos --asr-model packaged:whisper-tiny.en
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from annotate_throughput import normalised, word_error_rate  # also puts the repository on sys.path
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import decode_audio as peer_decode
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

from mmml.packaged import resolve
from pipelines.demux import decode_audio
from pipelines.options import WINDOW_SECONDS, ASROptions
from pipelines.transcribe import load_asr, transcribe_many
from pipelines.vad import heard, speech_samples
from pipelines.windows import pack


def as_16_bit(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32768).clip(-32768, 32767).astype(np.float32) / 32768


def peer_chunks(audio: np.ndarray) -> tuple[list[dict], list[np.ndarray]]:
    """The peer's VAD regions and chunks, with the VAD options its `transcribe` uses by default."""
    vad = VadOptions(max_speech_duration_s=WINDOW_SECONDS, min_silence_duration_ms=160)
    regions = get_speech_timestamps(audio, vad)
    chunks, _ = collect_chunks(audio, regions, max_duration=WINDOW_SECONDS)
    return regions, chunks


def window_words(options: ASROptions, audio: np.ndarray) -> list[str]:
    """Our lanes' words, window by window, for one recording decoded alone."""
    windows = pack([heard(speech_samples(audio, options), len(audio), options)])
    lane = load_asr(options).lanes[0]
    decoded = lane.decode([w.audio([audio]) for w in windows])
    return [normalised("".join(w.text for w in window.words)) for window in decoded]


def corpus_wer(options: ASROptions, videos: list[Path], decode: Callable[[Path], np.ndarray]) -> float:
    """Each recording transcribed alone, as the peer does (annotate would share a window between two files)."""
    pipeline = load_asr(options)
    texts = {}
    for video in videos:
        [transcript] = transcribe_many(pipeline, [decode(video)])
        texts[str(video.resolve())] = "".join(w.text for w in transcript.words)
    return word_error_rate(videos, texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", type=Path, help="folder of .mp4 recordings with their .txt")
    parser.add_argument("--asr-model", default="packaged:whisper-tiny.en")
    args = parser.parse_args()

    videos = sorted(args.videos.glob("*.mp4"))
    options = ASROptions(model=args.asr_model, beam_size=5, compute_type="int8", cpu_threads=2)
    peer = BatchedInferencePipeline(WhisperModel(resolve(args.asr_model), device="cpu", compute_type="int8"))
    result: dict = {"asr_model": args.asr_model, "recordings": {}}
    peer_texts: dict[str, str] = {}
    for video in videos:
        ours, theirs = decode_audio(video), peer_decode(str(video))
        regions, chunks = peer_chunks(theirs)
        mine = heard(speech_samples(theirs, options), len(theirs), options)
        segments = list(peer.transcribe(str(video), beam_size=5, batch_size=8)[0])
        peer_words = [normalised(s.text) for s in segments]
        peer_texts[str(video.resolve())] = " ".join(s.text for s in segments)
        same = {
            name: sum(a == b for a, b in zip(window_words(options, audio), peer_words, strict=True))
            for name, audio in (("our_audio", ours), ("peer_audio", theirs))
        }
        result["recordings"][video.name] = {
            "largest_sample_difference": float(np.abs(ours - theirs).max()) if len(ours) == len(theirs) else None,
            "same_regions": mine == [(r["start"], r["end"]) for r in regions],
            "same_windows": [w.length for w in pack([mine])] == [len(c) for c in chunks],
            "windows": len(chunks),
            "windows_with_the_peers_words": same,
        }
    result["wer"] = {
        "peer": word_error_rate(videos, peer_texts),
        "ours_from_our_audio": corpus_wer(options, videos, decode_audio),
        "ours_from_our_audio_in_16_bits": corpus_wer(options, videos, lambda v: as_16_bit(decode_audio(v))),
        "ours_from_the_peers_audio": corpus_wer(options, videos, lambda v: peer_decode(str(v))),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
