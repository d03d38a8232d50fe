"""Peak memory of one long recording: a 2-hour file against a 10-minute one, the full `mmml-annotate` run.

1. Recordings, built once under `--workdir`: 10 minutes of real CMU-MOSI
   transcripts spoken by espeak-ng with 0.6 s pauses, muxed under a test
   picture (MP4); the 2-hour one is the same 10 minutes looped 12 times.
2. Each is annotated alone (`python -m annotate FILE --out ...`) with the
   command's defaults, int8 Whisper and the given models; the whole process tree (driver,
   Ray's GCS, raylet, workers) is sampled every 0.25 s for its summed PSS
   and RSS, as in `annotate_throughput.py`.
3. With `--peer`: faster-whisper's own `BatchedInferencePipeline` over each
   recording (batch 8, the same model, int8, beam 5), wall time beside that
   of one more annotate run made without the memory sampler (reading every
   process's smaps four times a second takes CPU the peer would not pay).
4. With `--rescore`: each recording annotated again from the first run's
   utterances (`--transcripts`, the same checkpoint: no ASR), its wall time
   over the first run's. On a recording of hours, what a re-run costs beyond
   scoring (Ray's start, the scoring worker's imports, shutdown) is spread
   thin, as it is on a real corpus.

A recording longer than `pipelines.parts.WHOLE_SECONDS` is streamed and
annotated in parts, so the 2-hour run should need about the memory of the
10-minute one.

    python benchmarks/long_recording.py --workdir /tmp/long-bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
from annotate_throughput import LABELS, annotate, whisper_loop  # also puts the repository on sys.path

from samples.media import concat_with_pauses, require_tools, speak, video_from_audio


def build(folder: Path, minutes: int, loops: int) -> tuple[Path, Path]:
    """A `minutes`-long spoken recording and the same looped `loops` times (made once)."""
    short, long = folder / "short" / f"talk_{minutes}min.mp4", folder / "long" / f"talk_{minutes * loops}min.mp4"
    if not short.exists():
        with LABELS.open(newline="") as handle:
            texts = [row["text"] for row in csv.DictReader(handle)]
        parts, wavs, seconds = folder / ".parts", [], 0.0
        for i, text in enumerate(texts):
            wavs.append(speak(text, parts / f"{i}.wav"))
            seconds += os.path.getsize(wavs[-1]) / 44_100 + 0.6  # espeak-ng: 22.05 kHz 16-bit mono
            if seconds >= minutes * 60:
                break
        joined = concat_with_pauses(wavs, parts / "joined.wav", 0.6)
        trimmed = parts / "trimmed.wav"
        _ffmpeg(["-i", str(joined), "-t", str(minutes * 60), str(trimmed)])
        video_from_audio(trimmed, short)
        shutil.rmtree(parts)
    if not long.exists():
        long.parent.mkdir(parents=True, exist_ok=True)
        _ffmpeg(["-stream_loop", str(loops - 1), "-i", str(short), "-c", "copy", str(long)])
    return short, long


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/long-bench"))
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--loops", type=int, default=12)
    parser.add_argument("--asr-model", default="packaged:whisper-tiny.en")
    parser.add_argument("--model", type=Path, required=True, help="MMML checkpoint")
    parser.add_argument("--rescore", action="store_true", help="re-annotate each recording from its utterances")
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also time faster-whisper's BatchedInferencePipeline (batch 8) on each recording, in this process",
    )
    args = parser.parse_args()

    require_tools()
    runs = {}
    for recording in build(args.workdir, args.minutes, args.loops):
        out = args.workdir / f"{recording.stem}.parquet"
        options = argparse.Namespace(
            asr_model=args.asr_model,
            compute_type="int8",
            beam_size=5,
            memory=True,
            threads=os.cpu_count(),
            peer_batch_size=8,
        )
        timing = annotate(recording.parent, out, args.model, options, "")
        runs[recording.stem] = {
            "last_utterance_end_s": round(float(pq.read_table(out, columns=["end"]).column("end").to_numpy().max()), 1),
            "utterances": pq.read_metadata(out).num_rows,
            "wall_s": round(timing.wall, 1),
            "cpu_s": round(timing.cpu, 1),
            "peak_pss_mib": round(timing.pss / 2**20),
            "peak_rss_mib": round(timing.rss / 2**20),
            "load": round(timing.load, 1),
        }
        if args.peer:  # timed again without the memory sampler, whose reads of /proc/*/smaps take CPU of its own
            alone = annotate(
                recording.parent, out, args.model, argparse.Namespace(**{**vars(options), "memory": False}), ""
            )
            peer = whisper_loop([recording], options, batched=True)
            runs[recording.stem]["batched_peer"] = {
                "annotate_wall_s": round(alone.wall, 1),
                "annotate_load": round(alone.load, 1),
                "wall_s": round(peer.wall, 1),
                "load": round(peer.load, 1),
                "annotate_over_batched_peer": round(alone.wall / peer.wall, 3),
            }
        if args.rescore:
            again = annotate(
                recording.parent,
                out.with_suffix(".rescored.parquet"),
                args.model,
                options,
                f"--transcripts {shlex.quote(str(out))}",
            )
            runs[recording.stem]["rescore"] = {
                "wall_s": round(again.wall, 1),
                "cpu_s": round(again.cpu, 1),
                "load": round(again.load, 1),
                "over_first_run": round(again.wall / timing.wall, 3),
            }
    short, long = runs.values()
    print(
        json.dumps(
            {
                "asr_model": args.asr_model,
                "model": str(args.model),
                "runs": runs,
                "pss_long_over_short": round(long["peak_pss_mib"] / short["peak_pss_mib"], 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
