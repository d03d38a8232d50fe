"""Annotation in this process alone, no Ray: a run one machine does with one ASR worker.

    groups ─ demux_group ─ Transcribe (or cut_stored) ─▶ rows ─ batches ─ Score (calls side by side) ─▶ driver
             one background thread, bounded queue                  one model, threads

On a machine the Ray pipeline would give one ASR worker (up to `ASR_THREADS`
cores, no GPU), Ray buys nothing but costs its start, Ray Data's actor
start and its shutdown: about 10 s of a run, which on a few recordings is a
third of the time. So a run that would start its own local Ray for that
(`runs_here`) runs the same stages of `pipelines.engine` here instead:
decoding, Whisper (the same lanes the ASR worker would run,
`pipelines.sizing.sized`) and the segmenter in one background thread, the
scoring calls beside it on one model, as many as a Ray scoring worker runs.
A re-annotation (`--transcripts` for every video) runs no Whisper and always
runs here. A run that joins a cluster, finds Ray already running in its
process, asks for several scoring workers, or is told `--engine ray`, keeps
Ray. The checkpoint loads in a thread while the first files decode.

Memory stays bounded as in the Ray pipeline: one group of videos is decoded
at a time, the background thread runs at most `ROWS_AHEAD` utterances ahead
of the calls (each a copy, not a view holding its group's waveform), one
call more than there are threads is submitted at a time, and a long
recording is heard, or its stored utterances cut, a part at a time
(`pipelines.parts`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import queue
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from typing import Any

import numpy as np

from .collecting import VideoResult, collected
from .discover import Video
from .engine import Score, Transcribe, check_gpus, cut_stored, demux_group
from .grouping import group_items
from .options import ASROptions, EngineOptions, ScoreOptions, SegmentOptions
from .sizing import scoring_device, sized

ROWS_AHEAD = 64  # utterances cut ahead of scoring: at most 64 x --max-utterance (under 125 MiB at 30 s)
# Most utterances in one scoring call (unless one pass, --score-batch-size, holds more). A call sorts its utterances
# by length and cuts them into passes (`pipelines.score.length_batches`); the more it holds, the fuller its passes:
# calls of 32 to 64 utterances score about 10% faster than calls of 16. With one call more than threads submitted,
# at most (calls + 1) x 64 + ROWS_AHEAD utterances are held at once: with two calls, 3 x 64 + 64 = 256, under
# 250 MiB even if every one were 15 s long.
CALL_ROWS = 64


def runs_here(
    engine: EngineOptions,
    videos: Sequence[Video],
    transcripts: Mapping[str, str],
    asr: ASROptions = ASROptions(),
    scoring: ScoreOptions = ScoreOptions(),
) -> bool:
    """Whether a run goes through this process alone (`--engine`; see the module docstring for `auto`).

    Ray is asked for by `--engine ray`, `--ray-address`, `RAY_ADDRESS` (set
    inside a Ray job), a Ray the caller already started in this process, or
    several scoring workers (`--score-workers`, e.g. one per GPU), which are
    Ray's to place. Otherwise a re-scoring always runs here, and a run that
    needs Whisper does when this machine, sized as the Ray pipeline would
    size it, runs one ASR worker on its CPU: then a private Ray would only
    add its start, its actors' start and its shutdown to the same work.
    """
    if engine.mode != "auto":
        return engine.mode == "here"
    ray = sys.modules.get("ray")  # never imported: certainly not running
    ray_running = ray is not None and ray.is_initialized()
    wants_ray = engine.ray_address or os.environ.get("RAY_ADDRESS") or ray_running or engine.score_workers > 1
    if wants_ray:
        return False
    if all(v.video_id in transcripts for v in videos):
        return True
    return _one_cpu_worker(asr, scoring, engine)


def _one_cpu_worker(asr: ASROptions, scoring: ScoreOptions, engine: EngineOptions) -> bool:
    """Whether this machine, sized as the Ray pipeline sizes a cluster, runs one ASR worker and no GPU."""
    if "cuda" in (asr.device, scoring.device):
        return False
    if asr.device == "auto" or scoring.device == "auto":
        import ctranslate2  # the ASR stage imports it anyway; torch would cost more to ask

        if ctranslate2.get_cuda_device_count() > 0:
            return False
    _, _, sized_engine = sized(asr, scoring, engine, [_this_machine(engine, gpus=0)])
    return sized_engine.asr_workers == 1


def run_here(
    videos: list[Video],
    asr: ASROptions,
    segment: SegmentOptions,
    scoring: ScoreOptions,
    engine: EngineOptions,
    transcripts: Mapping[str, str],
) -> Iterator[VideoResult]:
    """Annotate `videos` in this process, yielding each video as soon as it is complete, like `pipelines.engine.run`.

    `transcripts` maps a video_id to its stored utterances: those videos skip Whisper.
    """
    needs_asr = not all(v.video_id in transcripts for v in videos)
    with contextlib.ExitStack() as cleanup:  # on failure or Ctrl-C: stop decoding, drop queued batches, no waiting
        loading = ThreadPoolExecutor(max_workers=1)
        cleanup.callback(loading.shutdown, wait=False, cancel_futures=True)
        # torch imports and the checkpoint loads while the first files decode (and Whisper loads)
        ready = loading.submit(_load_scorer, asr, scoring, engine, needs_asr)
        items = group_items(videos, asr, transcripts)
        if needs_asr:
            heard = _heard_rows(items, _sized_asr(asr, scoring, engine), segment, engine.demux_timeout_s)
        else:
            heard = _stored_rows(items, engine.demux_timeout_s)
        rows = _Ahead(heard, ROWS_AHEAD)
        cleanup.callback(rows.close)
        scorer, calls = ready.result()
        # Beside Whisper, utterances come a few at a time: calls of one pass score them as they come.
        utterances = scoring.batch_size if needs_asr else _stored_count(videos, transcripts, calls * CALL_ROWS)
        size = call_size(utterances, calls, scoring.batch_size)
        pool = ThreadPoolExecutor(max_workers=calls)
        cleanup.callback(pool.shutdown, cancel_futures=True)
        scored = _as_scored(pool, scorer, _batches(rows, size), ahead=calls + 1)
        yield from collected(itertools.chain.from_iterable(scored), videos)


def call_size(utterances: int, calls: int, batch_size: int) -> int:
    """Utterances per scoring call: up to `CALL_ROWS` (or one pass of `batch_size`, if larger), and no more than
    spreads `utterances` over `calls` threads, so that a small corpus keeps every thread busy."""
    return min(max(CALL_ROWS, batch_size), max(batch_size, math.ceil(utterances / calls)))


def _stored_count(videos: Iterable[Video], transcripts: Mapping[str, str], enough: int) -> int:
    """Utterances stored for `videos`, counted until `enough` (a large corpus is not parsed twice); an unreadable
    entry counts none (it becomes the video's error row when its turn comes)."""
    count = 0
    for video in videos:
        with contextlib.suppress(ValueError, TypeError):
            count += len(json.loads(transcripts[video.video_id]))
        if count >= enough:
            break
    return count


def _this_machine(engine: EngineOptions, gpus: float) -> dict[str, float]:
    return {"CPU": float(engine.num_cpus or os.cpu_count() or 1), "GPU": gpus}


def _sized_asr(asr: ASROptions, scoring: ScoreOptions, engine: EngineOptions) -> ASROptions:
    """The ASR options of the one worker this machine runs (its decoding lanes), on its CPU."""
    asr, _, _ = sized(asr, scoring, engine, [_this_machine(engine, gpus=0)])
    return asr


def _load_scorer(asr: ASROptions, scoring: ScoreOptions, engine: EngineOptions, needs_asr: bool) -> tuple[Score, int]:
    """The checkpoint on this machine's device, and how many scoring calls run side by side on it.

    `--device cuda` on a machine without CUDA is refused here, before any
    video is scored, as on a cluster without GPUs.
    """
    import torch

    machine = _this_machine(engine, gpus=float(torch.cuda.device_count()))
    check_gpus(asr, scoring, engine, machine, place="this machine")
    _, scoring, engine = sized(asr, scoring, engine, [machine], needs_asr=needs_asr)
    device = scoring_device(scoring, engine, machine["GPU"] > 0)
    return Score(scoring, device), engine.score_calls or 1


def _heard_rows(
    items: Iterable[dict[str, Any]], asr: ASROptions, segment: SegmentOptions, timeout_s: float
) -> Iterator[dict[str, Any]]:
    """Every group decoded, heard by Whisper and cut into utterances, one group after another (a copy each)."""
    transcribe = Transcribe(asr, segment, "cpu", timeout_s)
    for item in items:
        for row in transcribe(demux_group(item, timeout_s)):
            yield {**row, "audio": row["audio"].copy()}


def _stored_rows(items: Iterable[dict[str, Any]], timeout_s: float) -> Iterator[dict[str, Any]]:
    """Every group decoded and its stored utterances cut, one group after another.

    Each row's audio is copied out: a view would keep its group's whole
    waveform alive while the row waits to be scored (Ray copies when it
    builds a block; here nothing else would).
    """
    for item in items:
        for row in cut_stored(demux_group(item, timeout_s), timeout_s):
            yield {**row, "audio": row["audio"].copy()}


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        yield batch


def _as_scored(
    pool: ThreadPoolExecutor, scorer: Score, batches: Iterable[list[dict[str, Any]]], ahead: int
) -> Iterator[list[dict[str, Any]]]:
    """Each batch's rows with their scores as soon as its call is done, with at most `ahead` calls submitted.

    Not in input order: a thread that finishes first takes the next batch
    rather than wait for an older call to end (`pipelines.collecting`
    regroups the rows of a video whatever their order).
    """
    pending: set[Future[list[dict[str, Any]]]] = set()
    for batch in batches:
        pending.add(pool.submit(_scored_rows, scorer, batch))
        if len(pending) >= ahead:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    for future in as_completed(pending):
        yield future.result()


def _scored_rows(scorer: Score, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`Score` works on columns, as Ray Data hands them over; rows in, rows (with scores) out."""
    columns = {key: np.array([row[key] for row in rows], dtype=object) for key in rows[0] if key != "audio"}
    columns["audio"] = np.empty(len(rows), dtype=object)
    columns["audio"][:] = [row["audio"] for row in rows]
    scored = {key: values.tolist() for key, values in scorer(columns).items()}
    return [dict(zip(scored, values)) for values in zip(*scored.values())]


class _Ahead:
    """An iterator run in a background thread, at most `limit` items ahead of its reader.

    Decoding waits on ffmpeg (no GIL held), so it overlaps scoring; `close`
    stops the thread at its next item when the reader gives up early.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], limit: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=limit)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(items,), daemon=True, name="mmml-decode")
        self._thread.start()

    def _fill(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as err:  # handed to the reader (rows are dicts), which raises it
            self._put(err)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
