"""Re-scoring in this process: stored utterances cut from their files and scored here, no Ray.

    groups ─ demux_group ─ cut_stored ─▶ rows ─ batches ─ Score (calls side by side) ─▶ driver
             one decoding thread, bounded queue        one model, threads

A re-annotation (`--transcripts` for every video) runs no Whisper: what is
left is decoding, cutting and scoring, which one machine does alone. Starting
a private Ray for that costs more than the work on a small corpus (its
start, Ray Data's actor start, its shutdown: a re-run of 20 minutes of
audio took 21.8 s through Ray and 12.2 s here, on 2 cores), so a run that
would start its own local Ray only to re-score (`runs_here`) runs the same
Ray-free stages of `pipelines.engine` here instead. The checkpoint loads in a thread while the
first files decode; scoring calls run side by side on the one model, as
many as a Ray scoring worker runs (`pipelines.engine.sized`), each of up to
`CALL_ROWS` utterances (`call_size`). A run that joins a
cluster, finds Ray already running in its process, or asks for several
scoring workers keeps Ray.

Memory stays bounded as in the Ray pipeline: one group of videos is decoded
at a time, cutting runs at most `ROWS_AHEAD` utterances ahead of the calls
(each a copy, not a view holding its group's waveform), one call more than
there are threads is submitted at a time, and a long
recording streams its stored utterances a few at a time
(`pipelines.engine.cut_stored`).
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

from .discover import Video
from .engine import (
    Collector,
    Score,
    VideoResult,
    check_gpus,
    cut_stored,
    demux_group,
    group_items,
    scoring_device,
    sized,
)
from .options import ASROptions, EngineOptions, ScoreOptions

ROWS_AHEAD = 64  # utterances cut ahead of scoring: at most 64 x --max-utterance (under 125 MiB at 30 s)
# Most utterances in one scoring call (unless one pass, --score-batch-size, holds more). A call sorts its utterances
# by length and cuts them into passes (`pipelines.score.length_batches`); the more it holds, the fuller its passes:
# 245 utterances, two calls side by side on 2 cores, 5.6-5.9 s in calls of 16, 5.0-5.3 s in calls of 32 to 64.
# With one call more than threads submitted, at most (calls + 1) x 64 + ROWS_AHEAD utterances are held at once:
# 3 x 64 + 64 = 256 on 2 cores, under 250 MiB even if every one were 15 s long.
CALL_ROWS = 64


def runs_here(engine: EngineOptions, videos: Sequence[Video], transcripts: Mapping[str, str]) -> bool:
    """Whether a run re-scores in this process: every video has stored utterances and no Ray is asked for.

    Ray is asked for by `--ray-address`, by `RAY_ADDRESS` (set inside a Ray
    job), by a Ray the caller already started in this process, or by
    several scoring workers (`--score-workers`, e.g. one per GPU), which
    are Ray's to place.
    """
    ray = sys.modules.get("ray")  # never imported: certainly not running
    ray_running = ray is not None and ray.is_initialized()
    wants_ray = engine.ray_address or os.environ.get("RAY_ADDRESS") or ray_running or engine.score_workers > 1
    return not wants_ray and all(v.video_id in transcripts for v in videos)


def rescore(
    videos: list[Video],
    asr: ASROptions,
    scoring: ScoreOptions,
    engine: EngineOptions,
    transcripts: Mapping[str, str],
) -> Iterator[VideoResult]:
    """Score `videos`' stored utterances (`transcripts`: video_id -> stored utterances) here, yielding each video
    as soon as it is complete, like `pipelines.engine.run`."""
    by_id = {v.video_id: v for v in videos}
    collector = Collector()
    with contextlib.ExitStack() as cleanup:  # on failure or Ctrl-C: stop decoding, drop queued batches, no waiting
        loading = ThreadPoolExecutor(max_workers=1)
        cleanup.callback(loading.shutdown, wait=False, cancel_futures=True)
        ready = loading.submit(_load_scorer, asr, scoring, engine)  # imports torch while the first files decode
        rows = _Ahead(_stored_rows(group_items(videos, asr, transcripts), engine.demux_timeout_s), ROWS_AHEAD)
        cleanup.callback(rows.close)
        scorer, calls = ready.result()
        size = call_size(_stored_count(videos, transcripts, calls * CALL_ROWS), calls, scoring.batch_size)
        pool = ThreadPoolExecutor(max_workers=calls)
        cleanup.callback(pool.shutdown, cancel_futures=True)
        for scored in _as_scored(pool, scorer, _batches(rows, size), ahead=calls + 1):
            for row in scored:
                result = collector.add(row, by_id[row["video_id"]])
                if result is not None:
                    yield result


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


def _load_scorer(asr: ASROptions, scoring: ScoreOptions, engine: EngineOptions) -> tuple[Score, int]:
    """The checkpoint on this machine's device, and how many scoring calls run side by side on it.

    `--device cuda` on a machine without CUDA is refused here, before any
    video is scored, as on a cluster without GPUs.
    """
    import torch

    machine = {"CPU": float(engine.num_cpus or os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}
    check_gpus(asr, scoring, engine, machine, place="this machine")
    _, scoring, engine = sized(asr, scoring, engine, [machine], needs_asr=False)
    device = scoring_device(scoring, engine, machine["GPU"] > 0)
    return Score(scoring, device), engine.score_calls or 1


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
    rather than wait for an older call to end (`Collector` regroups the rows
    of a video whatever their order).
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
