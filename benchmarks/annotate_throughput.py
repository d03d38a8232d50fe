"""Annotation throughput: the full `mmml-annotate` run against a plain faster-whisper loop.

1. Corpus, built once under `--workdir`: `--shape long`, `--files` MP4
   videos, each `--sentences` real CMU-MOSI transcripts spoken by espeak-ng
   with short pauses (>= 10 minutes of speech by default); `--shape short`,
   `--clips` MP4 clips of one real CMU-MOSEI sentence each, 3-15 s spoken.
2. Baselines, both with the same model, compute type, beam size and CPU
   threads, model loading counted, segments consumed so the work is done:
   the plain sequential loop of `faster_whisper.WhisperModel.transcribe`
   over the files, and faster-whisper's own `BatchedInferencePipeline`
   (`--peer-batch-size` windows per batch, its defaults otherwise: no word
   timestamps), file by file.
3. Annotate: the whole command (`python -m annotate ... --overwrite`) in a
   subprocess with its default workers and threads (it sizes them from the
   cores), start-up of local Ray and of every worker included, writing
   the Parquet output and scoring every utterance with an MMML checkpoint
   (a tiny random one unless `--model` names another).
4. With `--rescore-model`: the same command re-scoring that output with
   another checkpoint, its utterances reused through `--transcripts` (the
   retrain-and-re-annotate loop: decoding and scoring, no ASR).
5. Scoring's share: every utterance of the last annotate output scored
   again in this process with the same checkpoint, batch size and one torch
   thread (as the scoring worker runs), timed alone; its seconds over the
   annotate run's wall time.

Reported, as medians over `--repeat` interleaved rounds: wall time and audio
seconds per wall second for each, the ratios (annotate / plain loop and
annotate / batched peer; below 1 means the full run is faster than that
transcription alone), the word error rate of each against the sentences
spoken (jiwer, on lower-cased words without punctuation), CPU seconds (user +
system, summed over every process: a figure that other load on a shared
machine disturbs far less than wall time), and, with `--memory`, the peak
memory of the annotate run summed over the command and all its descendants
(Ray's GCS, raylet, workers): proportional set size (PSS: shared pages are
split between the processes that map them, so the object store is not
counted once per worker) and, for reference, RSS. Memory is off by default:
reading every process's PSS four times a second costs CPU that the measured
run then lacks (6.4-6.6 s of CPU over a 40 s tiny.en run on 2 cores, which
took 2.4-3.0 s longer sampled than not), while the plain loop it is compared
with runs unsampled.

    python benchmarks/annotate_throughput.py --workdir /tmp/annotate-bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmml.packaged import OFFLINE_ENV, resolve  # noqa: E402
from pipelines.demux import decode_audio  # noqa: E402
from samples.media import concat_with_pauses, require_tools, speak, video_from_audio  # noqa: E402

LABELS = REPO.parent / "shared" / "data" / "mosi_label.csv"
MOSEI = REPO.parent / "shared" / "data" / "mosei_label_trainvalid.csv"


def build_corpus(folder: Path, files: int, sentences: int, labels: Path) -> list[Path]:
    """`files` videos of `sentences` MOSI transcripts each, spoken with 0.6 s pauses (made once).

    What each video says is written beside it (`<video>.txt`), for the word error rate.
    """
    with labels.open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    videos = []
    for f in range(files):
        video = folder / f"talk_{f:02d}.mp4"
        if not video.exists():
            parts = folder / f".parts_{f:02d}"
            spoken = texts[f * sentences : (f + 1) * sentences]
            wavs = [speak(text, parts / f"{i}.wav") for i, text in enumerate(spoken)]
            video_from_audio(concat_with_pauses(wavs, parts / "joined.wav", 0.6), video)
            video.with_suffix(".txt").write_text(" ".join(spoken))
            shutil.rmtree(parts)
        videos.append(video)
    return videos


def build_clips(folder: Path, clips: int, labels: Path, seconds: tuple[float, float] = (3.0, 15.0)) -> list[Path]:
    """The first `clips` real CMU-MOSEI sentences that espeak-ng speaks in 3-15 s, one video each (made once)."""
    with labels.open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    videos: list[Path] = []
    for i, text in enumerate(texts):
        if len(videos) == clips:
            break
        video, wav = folder / f"clip_{i:05d}.mp4", folder / ".parts" / f"{i}.wav"
        if not video.exists():
            speak(text, wav)
            if not seconds[0] <= len(decode_audio(wav)) / 16_000 <= seconds[1]:
                continue
            video_from_audio(wav, video)
            video.with_suffix(".txt").write_text(text)
        videos.append(video)
    shutil.rmtree(folder / ".parts", ignore_errors=True)
    return videos


@dataclass
class Timing:
    wall: float  # seconds
    cpu: float  # user + system seconds, summed over every process involved
    pss: int = 0  # peak bytes, summed over the process tree (annotate only)
    rss: int = 0
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # 1-min load average when it finished
    texts: dict[str, str] = field(default_factory=dict)  # video path -> what was recognised


def whisper_loop(videos: list[Path], args: argparse.Namespace, batched: bool, word_timestamps: bool = False) -> Timing:
    """A faster-whisper baseline in this process, model loading included: the plain loop or the batched peer."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    wall, cpu = time.perf_counter(), time.process_time()
    model = WhisperModel(
        resolve(args.asr_model), device="cpu", compute_type=args.compute_type, cpu_threads=args.threads
    )
    texts = {}
    for video in videos:
        if batched:
            segments, _ = BatchedInferencePipeline(model).transcribe(
                str(video), beam_size=args.beam_size, batch_size=args.peer_batch_size, word_timestamps=word_timestamps
            )
        else:
            segments, _ = model.transcribe(str(video), beam_size=args.beam_size)
        texts[str(video.resolve())] = " ".join(segment.text for segment in segments)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, texts=texts)


def normalised(text: str) -> str:
    """Words as the word error rate compares them: lower-cased, no punctuation, single spaces."""
    import jiwer

    return jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])(
        text
    )


def word_error_rate(videos: list[Path], texts: dict[str, str]) -> float:
    """Corpus WER of `texts` against what each video says (`<video>.txt`), on lower-cased words, no punctuation."""
    import jiwer

    references = [normalised(v.with_suffix(".txt").read_text()) for v in videos]
    hypotheses = [normalised(texts.get(str(v.resolve()), "")) for v in videos]
    return jiwer.wer(references, hypotheses)


def annotated_texts(scores: Path) -> dict[str, str]:
    """video path -> its utterances' words in time order, from an annotate output."""
    rows = pq.read_table(scores, columns=["video_path", "start", "text"]).to_pylist()
    texts: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: (r["video_path"], r["start"])):
        texts.setdefault(str(Path(row["video_path"]).resolve()), []).append(row["text"] or "")
    return {path: " ".join(words) for path, words in texts.items()}


def annotate(videos_dir: Path, out: Path, checkpoint: Path, args: argparse.Namespace, variant: str) -> Timing:
    """The whole command in a subprocess: Python start-up, local Ray, every worker, the Parquet output."""
    command = [
        sys.executable,
        "-m",
        "annotate",
        str(videos_dir),
        "--out",
        str(out),
        "--model",
        str(checkpoint),
        "--asr-model",
        args.asr_model,
        "--compute-type",
        args.compute_type,
        "--beam-size",
        str(args.beam_size),
        "--overwrite",
        "--no-progress",
        *shlex.split(variant),
    ]
    env = {**os.environ, **OFFLINE_ENV}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    tree = _ProcessTree(process.pid, memory=args.memory)
    tree.start()
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    tree.stop()
    if process.returncode != 0:
        raise SystemExit(f"annotate failed ({process.returncode}):\n{stderr[-4000:]}")
    return Timing(elapsed, tree.cpu, tree.pss, tree.rss)


class _ProcessTree(threading.Thread):
    """Samples a process and all its descendants (Ray's GCS, raylet, workers): CPU time (the last reading of
    each process, summed) and, with `memory`, peak summed PSS and RSS (four times a second: costly)."""

    def __init__(self, pid: int, memory: bool) -> None:
        super().__init__(daemon=True)
        self.root, self.memory, self.pss, self.rss = psutil.Process(pid), memory, 0, 0
        self.interval = 0.25 if memory else 0.5
        self.cpu_by_pid: dict[int, float] = {}
        self.halt = threading.Event()

    @property
    def cpu(self) -> float:
        return sum(self.cpu_by_pid.values())

    def run(self) -> None:
        while not self.halt.is_set():
            pss = rss = 0
            try:
                family = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for process in family:
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        if self.memory:
                            info = process.memory_full_info()
                            pss, rss = pss + info.pss, rss + info.rss
                except psutil.Error:
                    continue
                self.cpu_by_pid[process.pid] = times.user + times.system
            self.pss, self.rss = max(self.pss, pss), max(self.rss, rss)
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/annotate-bench"))
    parser.add_argument(
        "--shape",
        choices=("long", "short"),
        default="long",
        help="long: --files files of --sentences sentences; short: --clips one-sentence clips of 3-15 s",
    )
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--sentences", type=int, default=32, help="per file")
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--asr-model", default="packaged:whisper-tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="CPU threads of the plain loop's Whisper (annotate sizes its own)",
    )
    parser.add_argument(
        "--peer-batch-size", type=int, default=8, help="batch size of the BatchedInferencePipeline baseline"
    )
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds; medians are reported")
    parser.add_argument("--model", type=Path, default=None, help="MMML checkpoint (default: a tiny random one)")
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="extra mmml-annotate options for one timed run (repeatable; default: one plain run)",
    )
    parser.add_argument(
        "--rescore-model",
        type=Path,
        default=None,
        help="also time re-scoring the annotate output with this checkpoint via --transcripts (no ASR)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also sample the annotate runs' peak PSS and RSS (costs CPU: slows the runs it measures)",
    )
    args = parser.parse_args()

    require_tools()
    videos_dir = args.workdir / ("videos" if args.shape == "long" else "clips")
    videos_dir.mkdir(parents=True, exist_ok=True)
    if args.shape == "long":
        videos = build_corpus(videos_dir, args.files, args.sentences, args.labels)
    else:
        videos = build_clips(videos_dir, args.clips, MOSEI)
    audio_seconds = sum(len(decode_audio(v)) / 16_000 for v in videos)
    checkpoint = args.model or _tiny_checkpoint(args.workdir / "tiny_checkpoint")

    variants = args.variant or [""]
    scores = args.workdir / "scores.parquet"
    rescore = f"--transcripts {shlex.quote(str(scores))}"
    plain: list[Timing] = []
    peer: list[Timing] = []
    runs: dict[str, list[Timing]] = {v: [] for v in variants}
    if args.rescore_model:
        runs[f"{rescore} --model {args.rescore_model}"] = []
    utterances = 0
    for _ in range(args.repeat):  # interleaved, so that load from other processes hits both sides alike
        plain.append(whisper_loop(videos, args, batched=False))
        peer.append(whisper_loop(videos, args, batched=True))
        for variant in variants:
            runs[variant].append(annotate(videos_dir, scores, checkpoint, args, variant))
            runs[variant][-1].texts = annotated_texts(scores)
            utterances = pq.read_metadata(scores).num_rows
        if args.rescore_model:
            rescored = annotate(videos_dir, args.workdir / "rescored.parquet", args.rescore_model, args, rescore)
            runs[f"{rescore} --model {args.rescore_model}"].append(rescored)

    base_wall, base_cpu = _median(t.wall for t in plain), _median(t.cpu for t in plain)
    peer_wall = _median(t.wall for t in peer)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU, load average before "
        f"{os.getloadavg()[0]:.1f}",
        "shape": args.shape,
        "files": len(videos),
        "audio_seconds": round(audio_seconds, 1),
        "utterances": utterances,
        "asr_model": args.asr_model,
        "compute_type": args.compute_type,
        "beam_size": args.beam_size,
        "threads": args.threads,
        "repeat": args.repeat,
        "baseline": _summary(plain, audio_seconds, videos),
        "batched_peer": {"batch_size": args.peer_batch_size, **_summary(peer, audio_seconds, videos)},
        "annotate": [],
    }
    for variant, timings in runs.items():
        wall, cpu = _median(t.wall for t in timings), _median(t.cpu for t in timings)
        result["annotate"].append(
            {
                "options": variant,
                **_summary(timings, audio_seconds, videos if timings[-1].texts else []),
                "wall_over_baseline": round(wall / base_wall, 3),
                "wall_over_batched_peer": round(wall / peer_wall, 3),
                "cpu_over_baseline": round(cpu / base_cpu, 3),
                "peak_pss_mib": round(max(t.pss for t in timings) / 2**20) if args.memory else None,
                "peak_rss_mib": round(max(t.rss for t in timings) / 2**20) if args.memory else None,
            }
        )
    seconds = scoring_seconds(scores, videos_dir, checkpoint)
    result["scoring_s_one_thread"] = round(seconds, 1)
    result["scoring_share_of_annotate_wall"] = round(seconds / result["annotate"][0]["wall_s"], 3)
    print(json.dumps(result, indent=2))


def scoring_seconds(scores: Path, videos_dir: Path, checkpoint: Path, batch_size: int = 16) -> float:
    """Seconds to score every utterance of `scores` again, one torch thread, audio decoded beforehand."""
    import numpy as np
    import torch

    from pipelines.options import ScoreOptions
    from pipelines.score import load_scorer, score

    table = pq.read_table(scores, columns=["video_path", "start", "end", "text"]).to_pylist()
    audio = {path: decode_audio(path) for path in {row["video_path"] for row in table}}
    clips = [audio[r["video_path"]][int(r["start"] * 16_000) : int(np.ceil(r["end"] * 16_000))] for r in table]
    scorer = load_scorer(ScoreOptions(checkpoint=str(checkpoint), device="cpu", torch_threads=1))
    started = time.perf_counter()
    score(scorer, [r["text"] for r in table], clips, batch_size)
    elapsed = time.perf_counter() - started
    torch.set_num_threads(os.cpu_count() or 1)
    return elapsed


def _summary(timings: list[Timing], audio_seconds: float, videos: list[Path]) -> dict:
    """Median wall and CPU time of some runs, each run's wall time and load, the last run's WER."""
    wall = _median(t.wall for t in timings)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(_median(t.cpu for t in timings), 1),
        "audio_s_per_wall_s": round(audio_seconds / wall, 2),
        "wer": round(word_error_rate(videos, timings[-1].texts), 4) if videos else None,
        "walls": [round(t.wall, 1) for t in timings],
        "loads": [round(t.load, 1) for t in timings],
    }


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def _tiny_checkpoint(directory: Path) -> Path:
    if not (directory / "checksums.json").exists():
        from samples.tiny import build_tiny_checkpoint

        build_tiny_checkpoint(directory)
    return directory


if __name__ == "__main__":
    main()
