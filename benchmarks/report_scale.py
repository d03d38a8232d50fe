"""`mmml-report` on a million utterances: wall time and peak memory, alone and with `--compare`.

1. A synthetic annotation is written once under `--workdir` with the
   pipeline's own schema: `--utterances` rows over `--videos` videos of
   equal size, real CMU-MOSI transcripts as text (drawn with replacement),
   3-15 s utterances, 5 % without words (null text score and confidence),
   scores drawn from a normal distribution clipped to [-3, 3] (a shape real
   annotations have), 1 % of the videos failed in an errors file. A second
   file is the same corpus "re-scored": the same utterances and times,
   every fused and audio score moved by noise, so that `--compare` matches
   every row.
2. `mmml-report` runs as a child process, once alone and once with
   `--compare`; its wall time and peak resident memory (the kernel's
   `ru_maxrss` of that child, from `wait4`) are printed as one JSON line each.

    python benchmarks/report_scale.py --workdir /tmp/report-bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate.run import RunPaths  # noqa: E402
from pipelines.write import ERRORS, UTTERANCES, with_metadata, write_atomic  # noqa: E402

LABELS = REPO.parent / "shared" / "data" / "mosi_label.csv"


def synthetic(utterances: int, videos: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    with LABELS.open(newline="") as handle:
        texts = np.array([row["text"] for row in csv.DictReader(handle)], dtype=object)
    per_video = utterances // videos
    video = np.repeat(np.arange(videos), per_video)
    utterance = np.tile(np.arange(per_video), videos)
    length = rng.uniform(3.0, 15.0, video.size)
    gap = rng.uniform(0.3, 3.0, video.size)
    end = np.cumsum(length + gap).reshape(videos, per_video)
    end -= end[:, :1] - length.reshape(videos, per_video)[:, :1]  # each video starts at 0
    end = end.reshape(-1)
    words = rng.random(video.size) > 0.05
    fused = np.clip(rng.normal(0, 1.4, video.size), -3, 3)
    text_score = np.clip(fused + rng.normal(0, 0.6, video.size), -3, 3)
    audio_score = np.clip(0.5 * fused + rng.normal(0, 1.0, video.size), -3, 3)
    columns = {
        "video_path": pa.array([f"/corpus/channel_{v // 100:03d}/video_{v:06d}.mp4" for v in range(videos)]).take(
            pa.array(video)
        ),
        "video_id": pa.array([f"{v:016x}" for v in range(videos)]).take(pa.array(video)),
        "utterance": utterance.astype(np.int32),
        "start": end - length,
        "end": end,
        "text": pa.array(np.where(words, rng.choice(texts, video.size), "")),
        "language": pa.array(np.full(video.size, "en")),
        "language_probability": np.ones(video.size),
        "asr_confidence": pa.array(rng.uniform(0.3, 1.0, video.size), mask=~words),
        "score_fused": fused.astype(np.float32),
        "score_text": pa.array(text_score.astype(np.float32), mask=~words),
        "score_audio": audio_score.astype(np.float32),
        "model_id": pa.array(np.full(video.size, "0123456789abcdef")),
        "asr_model": pa.array(np.full(video.size, "packaged:whisper-base")),
    }
    return pa.Table.from_pydict(columns, schema=UTTERANCES)


def rescored(table: pa.Table, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    for name in ("score_fused", "score_audio"):
        moved = np.clip(table[name].to_numpy() + rng.normal(0, 0.4, table.num_rows), -3, 3).astype(np.float32)
        table = table.set_column(table.schema.get_field_index(name), UTTERANCES.field(name), pa.array(moved))
    return table


def failures(table: pa.Table, videos: int) -> pa.Table:
    failed = [f"/corpus/failed/video_{v:06d}.mp4" for v in range(videos // 100)]
    rows = [
        {"video_path": p, "video_id": None, "stage": "demux", "error_type": "DecodeError", "message": "corrupt"}
        for p in failed
    ]
    return pa.Table.from_pylist([{**r, "traceback": None} for r in rows], schema=ERRORS)


def measure(args: list[str]) -> dict[str, float]:
    """Wall time and peak RSS of one `mmml-report` child process (`wait4` gives that child's own rusage)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "annotate.report", *args], cwd=REPO)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status:
        raise RuntimeError(f"mmml-report {' '.join(args)} failed ({status})")
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=1_000_000)
    parser.add_argument("--videos", type=int, default=10_000)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    shape = f"{args.utterances}x{args.videos}"  # a workdir holds each shape once
    this, other = args.workdir / f"scores-{shape}.parquet", args.workdir / f"earlier-{shape}.parquet"
    if not this.exists():
        table = synthetic(args.utterances, args.videos, seed=0)
        write_atomic(with_metadata(rescored(table, seed=1), {"config": {"synthetic": True}}), other)
        write_atomic(failures(table, args.videos), RunPaths(this).errors)
        write_atomic(with_metadata(table, {"config": {"synthetic": True}}), this)
    size_mib = round(this.stat().st_size / 2**20, 1)
    alone = measure([str(this), "--out", str(args.workdir / "report.html")])
    compared = measure([str(this), "--compare", str(other), "--out", str(args.workdir / "compared.html")])
    for name, result in (("alone", alone), ("--compare", compared)):
        print(json.dumps({"run": name, "utterances": args.utterances, "parquet_mib": size_mib, **result}))


if __name__ == "__main__":
    main()
