"""Where the time of a run over recordings goes, stage by stage, beside faster-whisper's batched pipeline.

On `--files` recordings (built as `annotate_throughput.py --shape long`
builds them: real CMU-MOSI transcripts spoken by espeak-ng), each figure
measured alone, in this order:

1. fixed cost: the whole `mmml-annotate` command on one 2 s clip (Python
   and Ray start-up, the workers' model loads, writing, shutdown);
2. decoding every recording to 16 kHz (ffmpeg) and Silero VAD over it;
3. faster-whisper's `BatchedInferencePipeline` over the recordings, as a
   user would run it, with and without word timestamps: what word-level
   alignment costs on top of decoding;
4. the whole `mmml-annotate` run over the recordings;
5. scoring every utterance of that run again in this process, one torch
   thread (what the scoring worker does beside ASR).

Stages 1-5 run one after another on an otherwise idle machine; in the real
run they overlap (scoring runs beside ASR), so they need not add up.

    python benchmarks/recording_profile.py --workdir /tmp/recording-profile --model CHECKPOINT
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
from annotate_throughput import (  # also puts the repository on sys.path
    LABELS,
    annotate,
    annotated_texts,
    build_corpus,
    scoring_seconds,
    whisper_loop,
    word_error_rate,
)

from pipelines.demux import decode_audio
from pipelines.options import ASROptions
from pipelines.vad import speech_samples
from samples.media import require_tools, speak, video_from_audio


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recording-profile"))
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=64, help="per recording (about 5.5 minutes)")
    parser.add_argument("--asr-model", default="packaged:whisper-base")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--peer-batch-size", type=int, default=8)
    parser.add_argument("--model", type=Path, required=True, help="MMML checkpoint")
    args = parser.parse_args()
    args.memory = False

    require_tools()
    folder = args.workdir / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    videos = build_corpus(folder, args.files, args.sentences, LABELS)
    clip = args.workdir / "clip" / "hello.mp4"
    if not clip.exists():
        video_from_audio(speak("Hello, this is a short test.", args.workdir / "clip.wav"), clip)

    fixed = annotate(clip.parent, args.workdir / "clip.parquet", args.model, args, "")
    decode_s, audios = timed(lambda: [decode_audio(v) for v in videos])
    vad_s, _ = timed(lambda: [speech_samples(a, ASROptions()) for a in audios])
    peer = whisper_loop(videos, args, batched=True)
    peer_words = whisper_loop(videos, args, batched=True, word_timestamps=True)
    scores = args.workdir / "scores.parquet"
    whole = annotate(folder, scores, args.model, args, "")
    scoring = scoring_seconds(scores, folder, args.model)

    seconds = sum(len(a) for a in audios) / 16_000
    print(
        json.dumps(
            {
                "asr_model": args.asr_model,
                "recordings": len(videos),
                "audio_s": round(seconds, 1),
                "utterances": pq.read_metadata(scores).num_rows,
                "fixed_cost_s (annotate, one 2 s clip)": round(fixed.wall, 1),
                "decode_s": round(decode_s, 1),
                "vad_s": round(vad_s, 1),
                "batched_peer_s": round(peer.wall, 1),
                "batched_peer_word_timestamps_s": round(peer_words.wall, 1),
                "annotate_s": round(whole.wall, 1),
                "annotate_over_batched_peer": round(whole.wall / peer.wall, 3),
                "scoring_s_one_thread": round(scoring, 1),
                "wer": {
                    "batched_peer": round(word_error_rate(videos, peer.texts), 4),
                    "batched_peer_word_timestamps": round(word_error_rate(videos, peer_words.texts), 4),
                    "annotate": round(word_error_rate(videos, annotated_texts(scores)), 4),
                },
                "load_average_1min_end": round(os.getloadavg()[0], 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
