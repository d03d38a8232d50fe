"""Ray wiring: the stages as a streaming Ray Data pipeline, one group of videos at a time.

    groups ─ map(demux) ─ flat_map(Transcribe) ─ map_batches(Score) ─▶ driver
             tasks         actor pool            actor pool

* Videos travel in groups of consecutive inputs (`pipelines.grouping`):
  thousands of short clips become a few hundred Whisper batches, their
  speech packed into shared windows (`pipelines.windows`), instead of one
  small decode per clip.
* Demux runs as plain tasks, so ffmpeg decodes the next groups while the ASR
  actors transcribe the current ones (decode overlaps ASR).
* Transcribe and Score are actor pools: Whisper and the MMML checkpoint are
  loaded once per actor (`__init__`), in the style of Ray's batch-inference
  examples. Score batches utterances across videos. A re-annotation
  (`--transcripts` for every video) replaces Transcribe by `cut_stored`
  tasks: no Whisper, no ASR actor to start. Run on this machine alone, it
  needs no Ray at all (`pipelines.local`).
* Pools and threads are sized from the cluster's nodes (`pipelines.sizing`),
  and a pipeline the cluster can never schedule is refused before any work.
* Ray Data streams: with one group per input block and an object-store
  budget, memory holds a bounded number of waveforms however large the
  corpus. The driver keeps only text rows of videos still in flight.
* Decode workers stay light: this module imports neither torch nor
  CTranslate2; the actors import their stage modules when they start.
* Failures stay per video: a stage that cannot handle a video emits an error
  row for it instead of raising (`pipelines.rows`), so the run goes on. A
  dying actor is restarted and its task retried (Ray Data's default for
  actor pools); a dying task is retried by Ray.

The driver regroups utterance rows by video (`pipelines.collecting`) and
yields a `VideoResult` once every row of a video has arrived; the caller
(`annotate.run`) persists it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .collecting import VideoResult, collected
from .demux import DemuxError, TooLong, decode_audio, stream_audio
from .discover import Video
from .grouping import group_items
from .memory import release_freed_memory
from .options import SAMPLE_RATE, ASROptions, EngineOptions, ScoreOptions, SegmentOptions
from .parts import PART_SECONDS, WHOLE_SECONDS, parts
from .rows import (
    EMPTY_UTTERANCE,
    NO_ERROR,
    NoSpeech,
    failure,
    no_speech,
    no_speech_error,
    stored_fields,
    video_rows,
    videos_of,
)
from .segment import utterance_audio, utterances
from .sizing import cpus_needed, device_for, sized, worker_gpus

if TYPE_CHECKING:
    from ray.data import Dataset

_DECODES_PER_GROUP = 4  # ffmpeg processes a demux task runs at once
BLOCK_BYTES = 8 * 2**20  # Ray Data blocks: rows leave the ASR actor a few videos (or a part) at a time


class ClusterTooSmall(ValueError):
    """The worker pools ask for more logical CPUs (or for GPUs) than the Ray cluster (or this machine) has."""


# ---------------------------------------------------------------- stages (Ray-free callables)


def demux_group(group: dict[str, Any], timeout_s: float, whole_seconds: float = WHOLE_SECONDS) -> dict[str, Any]:
    """A group's {video_path, video_id, transcript} lists -> the same with each video's audio or decoding error.

    The group's waveforms travel as one array (`audio`, cut at `samples`), so a
    group is one block however many videos it holds. A recording longer than
    `whole_seconds` is left to the ASR actor to stream (`streamed`). The
    files are decoded a few at a time (each by its own ffmpeg process).
    """

    def decode(path: str) -> tuple[np.ndarray, dict[str, str], bool]:
        try:
            return decode_audio(path, timeout_s=timeout_s, max_seconds=whole_seconds), NO_ERROR, False
        except TooLong:
            return np.zeros(0, np.float32), NO_ERROR, True
        except Exception as err:  # one bad file must never stop the run
            return np.zeros(0, np.float32), failure(path, "demux", err), False

    with ThreadPoolExecutor(max_workers=_DECODES_PER_GROUP) as pool:
        audios, failures, streamed = zip(*pool.map(decode, group["video_path"]))
    return {
        **group,
        "audio": np.concatenate(audios),
        "samples": np.array([len(a) for a in audios], np.int64),
        "streamed": list(streamed),
        **{key: [f[key] for f in failures] for key in NO_ERROR},
    }


def cut_stored(group: dict[str, Any], timeout_s: float) -> Iterator[dict[str, Any]]:
    """The rows of a group whose every video has stored utterances (`--transcripts`): their audio cut, no Whisper.

    A re-annotation runs this as plain tasks, so it starts no ASR actor.
    """
    yield from _unheard_rows(videos_of(group), timeout_s)


class Transcribe:
    """VAD + Whisper + utterance boundaries for a group of videos (or their stored utterances); one Whisper per actor.

    Rows are yielded as they are made: a long recording's utterances leave a
    part at a time (`pipelines.parts`), so its audio is never all in memory.
    """

    def __init__(
        self,
        asr: ASROptions,
        segment: SegmentOptions,
        device: str | None = None,
        timeout_s: float = 600.0,
        part_seconds: float = PART_SECONDS,
    ) -> None:
        self.asr, self.segment, self.timeout_s = asr, segment, timeout_s
        self.part_samples = int(part_seconds * SAMPLE_RATE)  # search: a quarter of a part

        self.stage = importlib.import_module(".transcribe", __package__)  # CTranslate2: ASR actors only
        self.vad = importlib.import_module(".vad", __package__)
        self.pipeline = self.stage.load_asr(asr, device)

    def __call__(self, group: dict[str, Any]) -> Iterator[dict[str, Any]]:
        videos = videos_of(group)
        short = [v for v in videos if not v["streamed"]]
        yield from _unheard_rows([v for v in short if not _needs_asr(v)], self.timeout_s)
        heard = [v for v in short if _needs_asr(v)]
        if heard:
            yield from self._recognise(heard)
        for video in videos:  # long recordings last, stored or heard: each streams its whole file
            if video["streamed"]:
                yield from _streamed_rows(video, self.timeout_s, self._heard_pieces)

    def _recognise(self, videos: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Each video's utterance rows as soon as Whisper and the segmenter are through with it, or its error row."""
        done = 0
        try:
            for i, transcript in self.stage.transcribe_each(self.pipeline, [v["audio"] for v in videos]):
                found = self._fields(transcript) or no_speech(videos[i]["video_path"], transcript.duration)
                done = i + 1
                yield from video_rows(videos[i], found)
            release_freed_memory()
        except Exception as err:  # Whisper failed: each video not yet done is reported, the run goes on
            for video in videos[done:]:
                yield from video_rows(video, failure(video["video_path"], "asr", err))

    def _fields(self, transcript: Any, offset: float = 0.0) -> list[dict[str, Any]]:
        return [
            {
                "start": round(offset + u.start, 3),
                "end": round(offset + u.end, 3),
                "text": u.text,
                "language": transcript.language,
                "language_probability": transcript.language_probability,
                "asr_confidence": np.nan if u.asr_confidence is None else u.asr_confidence,
                "asr_model": self.asr.model,
            }
            for u in utterances(transcript.words, transcript.speech, self.segment)
        ]

    def _heard_pieces(self, stream: _Stream) -> Pieces:
        vad = partial(self.vad.speech_samples, options=self.asr)
        for part, transcript in self.stage.transcribe_parts(
            self.pipeline, parts(stream, vad, self.part_samples, self.part_samples // 4)
        ):
            release_freed_memory()
            offset = part.offset / SAMPLE_RATE
            for fields in self._fields(transcript, offset):
                yield fields, utterance_audio(part.audio, fields["start"] - offset, fields["end"] - offset)


class Score:
    """MMML scoring of utterance batches (which may span videos); one checkpoint per actor."""

    def __init__(self, options: ScoreOptions, device: str | None = None) -> None:
        self.options = options
        self.stage = importlib.import_module(".score", __package__)  # torch: scoring actors only
        self.checkpoint = self.stage.load_scorer(options, device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        audios = list(batch.pop("audio"))
        size = len(audios)
        heads = {name: np.full(size, np.nan, np.float32) for name in ("score_fused", "score_text", "score_audio")}
        todo = np.flatnonzero(batch["error_stage"] == "")
        texts = self.stage.readable_words(batch["text"], batch["language"], self.checkpoint.config.text_languages)
        try:
            self._score(todo, texts, audios, heads)
        except Exception:  # one at a time, so that only the videos whose utterances fail are reported
            for i in todo:
                try:
                    self._score([i], texts, audios, heads)
                except Exception as err:
                    for key, value in failure(batch["video_path"][i], "score", err).items():
                        batch[key][i] = value
        return {**batch, **heads, "model_id": np.full(size, self.checkpoint.id, dtype=object)}

    def _score(
        self, indices: Sequence[int], texts: Sequence[str], audios: Sequence[np.ndarray], heads: dict[str, np.ndarray]
    ) -> None:
        scores = self.stage.score(
            self.checkpoint,
            [texts[i] for i in indices],
            [audios[i] for i in indices],
            self.options.batch_size,
            self.options.amp,
        )
        for name, values in zip(heads, (scores.fused, scores.text, scores.audio)):
            heads[name][indices] = values


# ---------------------------------------------------------------- the Ray pipeline


def run(
    videos: list[Video],
    asr: ASROptions,
    segment: SegmentOptions,
    scoring: ScoreOptions,
    engine: EngineOptions,
    transcripts: Mapping[str, str] | None = None,
) -> Iterator[VideoResult]:
    """Annotate `videos` on the connected Ray cluster, yielding each video's result as soon as it is complete.

    `transcripts` maps a video_id to its stored utterances (`pipelines.transcripts`): those videos skip ASR.
    """
    import ray

    if not videos:
        return
    _configure_data_context(engine)
    resources = ray.cluster_resources()
    transcripts = transcripts or {}
    needs_asr = not all(v.video_id in transcripts for v in videos)
    asr, scoring, engine = _sized_to_fit(asr, scoring, engine, resources, needs_asr)
    items = group_items(videos, asr, transcripts)
    has_gpu = resources.get("GPU", 0) > 0

    inputs = ray.data.from_items(items, override_num_blocks=len(items))  # one group per block: bounded streaming
    decoded = inputs.map(demux_group, **_light_tasks(engine, len(items)))
    if needs_asr:
        heard = decoded.flat_map(Transcribe, **_asr_actors(asr, segment, engine, has_gpu, len(items)))
    else:  # re-annotation: only cutting stored utterances' audio, as light tasks beside the decoding
        heard = decoded.flat_map(cut_stored, **_light_tasks(engine, len(items)))
    scored = heard.map_batches(Score, **_scoring_actors(scoring, engine, has_gpu))
    yield from collected(_output_rows(scored), videos)


def _sized_to_fit(
    asr: ASROptions,
    scoring: ScoreOptions,
    engine: EngineOptions,
    resources: Mapping[str, float],
    needs_asr: bool,
) -> tuple[ASROptions, ScoreOptions, EngineOptions]:
    """The sizes left open, filled in from the live nodes; refused before any work if the cluster cannot hold them."""
    asr, scoring, engine = sized(asr, scoring, engine, _alive_nodes(), needs_asr)
    _check_fits(engine, resources.get("CPU", 0))
    check_gpus(asr, scoring, engine, resources)
    return asr, scoring, engine


def _light_tasks(engine: EngineOptions, groups: int) -> dict[str, Any]:
    """Decoding (and cutting stored utterances) as plain tasks: they load no model, so they need no actor.

    Each reserves a fraction of a CPU (`demux_cpus`) beside the actor pools,
    and at most `demux_workers` run at once.
    """
    from ray.data import TaskPoolStrategy

    return {
        "fn_kwargs": {"timeout_s": engine.demux_timeout_s},
        "compute": TaskPoolStrategy(size=min(engine.demux_workers, groups)),
        "num_cpus": engine.demux_cpus,
    }


def _asr_actors(
    asr: ASROptions, segment: SegmentOptions, engine: EngineOptions, has_gpu: bool, groups: int
) -> dict[str, Any]:
    """ASR as a pool of actors, each loading Whisper once; no more actors than groups, as an idle one would hold
    Whisper and its CPUs for nothing."""
    from ray.data import ActorPoolStrategy

    gpus = worker_gpus(engine.asr_gpus, has_gpu, asr.device)
    return {
        "fn_constructor_kwargs": {
            "asr": asr,
            "segment": segment,
            "device": device_for(gpus),
            "timeout_s": engine.demux_timeout_s,
        },
        "compute": ActorPoolStrategy(size=min(engine.asr_workers, groups)),
        "num_cpus": engine.asr_cpus,
        "num_gpus": gpus,
    }


def _scoring_actors(scoring: ScoreOptions, engine: EngineOptions, has_gpu: bool) -> dict[str, Any]:
    """Scoring as a pool of actors, each loading the checkpoint once and running `score_calls` batches side by
    side on it (`pipelines.sizing.sized`)."""
    from ray.data import ActorPoolStrategy

    gpus = worker_gpus(engine.score_gpus, has_gpu, scoring.device)
    return {
        "fn_constructor_kwargs": {"options": scoring, "device": device_for(gpus)},
        "batch_size": scoring.batch_size,
        "batch_format": "numpy",
        "compute": ActorPoolStrategy(
            size=engine.score_workers,
            max_concurrent_calls_per_actor=engine.score_calls,
            enable_true_multi_threading=engine.score_calls > 1,
        ),
        "num_cpus": engine.score_cpus,
        "num_gpus": gpus,
    }


def _output_rows(dataset: Dataset) -> Iterator[dict[str, Any]]:
    """The scored rows, one block at a time as the pipeline streams them to the driver."""
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield from batch.to_pylist()


def _configure_data_context(engine: EngineOptions) -> None:
    from ray.data import DataContext, ExecutionResources

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the command draws its own bar; keep Ray Data's chatter about it quiet
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    logging.getLogger("ray.data._internal.execution.streaming_executor").setLevel(logging.WARNING)
    context.print_on_execution_start = False
    context.execution_options.resource_limits = ExecutionResources(object_store_memory=engine.object_store_mb * 2**20)
    context.target_max_block_size = BLOCK_BYTES


def _alive_nodes() -> list[dict[str, float]]:
    import ray

    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def _check_fits(engine: EngineOptions, available_cpus: float) -> None:
    """Refuse a pipeline the cluster can never schedule: Ray Data would otherwise wait forever."""
    if cpus_needed(engine) > available_cpus:
        raise ClusterTooSmall(
            f"the pipeline needs {cpus_needed(engine):g} logical CPUs "
            f"(ASR {engine.asr_workers} x {engine.asr_cpus:g}, "
            f"scoring {engine.score_workers} x {engine.score_cpus:g}, decoding {engine.demux_cpus:g}) but the Ray "
            f"cluster has {available_cpus:g}; lower --asr-cpus/--score-cpus or the worker counts"
        )


def check_gpus(
    asr: ASROptions,
    scoring: ScoreOptions,
    engine: EngineOptions,
    resources: Mapping[str, float],
    place: str = "the Ray cluster",
) -> None:
    """Refuse GPU work on a cluster (or `place`) without GPUs before any work.

    `--device cuda` would otherwise run on the CPU without a word, and GPUs
    reserved per worker (`--asr-gpus`) would leave Ray Data waiting forever.
    """
    if resources.get("GPU", 0) > 0:
        return
    asked = [
        option
        for option, wanted in (
            ("--device cuda", "cuda" in (asr.device, scoring.device)),
            ("--asr-gpus", (engine.asr_gpus or 0) > 0),
            ("--score-gpus", (engine.score_gpus or 0) > 0),
        )
        if wanted
    ]
    if asked:
        raise ClusterTooSmall(
            f"{' and '.join(asked)} asks for GPUs but {place} has none "
            f"({resources.get('CPU', 0):g} CPUs); use --device cpu or auto, or join a cluster with GPU nodes"
        )


# ---------------------------------------------------------------- Ray for the length of a run


def start_ray(engine: EngineOptions) -> bool:
    """Join `engine.ray_address`, or start a private local Ray (no dashboard) for this run; False if already joined.

    A local Ray gets at least the logical CPUs the pipeline holds
    (`pipelines.sizing.cpus_needed`), so that a small machine still runs it.
    """
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if engine.ray_address:
        ray.init(address=engine.ray_address, **common)
    else:
        ray.init(num_cpus=max(engine.num_cpus or os.cpu_count() or 1, math.ceil(cpus_needed(engine))), **common)
    return True


@contextlib.contextmanager
def ray_session(engine: EngineOptions) -> Iterator[None]:
    """Ray for the length of a run: started (or joined) on entry, shut down on exit if this run started it.

    Shutting down here, not at interpreter exit, lets Ray Data's threads and
    the actors stop while the interpreter is whole: Ray shut down during
    interpreter finalisation can make a run that wrote every row exit with
    status 1, and makes the exit slower. A Ray the caller started stays up.
    """
    import ray

    started = start_ray(engine)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------- rows made without Whisper; long recordings in parts


def _needs_asr(video: dict[str, Any]) -> bool:
    return not (video["error_stage"] or video["transcript"])


def _unheard_rows(videos: list[dict[str, Any]], timeout_s: float) -> Iterator[dict[str, Any]]:
    """Rows that need no Whisper: a video's decoding error, or its stored utterances with their audio."""
    for video in videos:
        if video["error_stage"]:
            yield from video_rows(video, {key: video[key] for key in NO_ERROR})
        elif video["streamed"]:
            yield from _streamed_rows(video, timeout_s)
        else:
            yield from video_rows(video, stored_fields(video))


Pieces = Iterator[tuple[dict[str, Any], np.ndarray]]  # (utterance fields, its audio), in order


def _streamed_rows(
    video: dict[str, Any], timeout_s: float, hear: Callable[[_Stream], Pieces] | None = None
) -> Iterator[dict[str, Any]]:
    """A long recording's rows, a part at a time; only its last row says how many there are (and how long).

    Its utterances are the stored ones, or what `hear` finds in the stream.
    """
    path = video["video_path"]
    head = {"video_path": path, "video_id": video["video_id"]}
    stored = stored_fields(video) if video["transcript"] else None
    if isinstance(stored, dict):  # unreadable stored utterances: the same error row as for a short video
        yield from video_rows(video, stored)
        return
    stream = _Stream(stream_audio(path, sample_rate=SAMPLE_RATE, timeout_s=timeout_s))
    try:
        pieces = _stored_pieces(stored, stream) if stored is not None else hear(stream)
        held: dict[str, Any] | None = None
        for i, (fields, audio) in enumerate(pieces):
            if held is not None:
                yield held
            held = {
                **head,
                **fields,
                "utterance": i,
                "n_utterances": 0,
                "duration": stream.seconds,
                "audio": np.ascontiguousarray(audio),
                **NO_ERROR,
            }
        if held is None:
            raise no_speech_error(path, stream.seconds)
        yield {**held, "n_utterances": held["utterance"] + 1, "duration": stream.seconds}
    except Exception as err:  # rows already sent are dropped by the driver when the error row arrives
        stage = "demux" if isinstance(err, DemuxError) else "segment" if isinstance(err, NoSpeech) else "asr"
        yield {**head, **EMPTY_UTTERANCE, "duration": stream.seconds, **failure(path, stage, err)}


def _stored_pieces(found: list[dict[str, Any]], stream: _Stream) -> Pieces:
    """Stored utterances of a streamed recording, each with its audio cut from the stream as it passes."""
    return zip(found, stream.slices([(f["start"], f["end"]) for f in found]))


class _Stream:
    """An audio stream that counts the seconds it has delivered and can cut time spans out as it passes."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self.blocks, self.samples = blocks, 0

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            self.samples += len(block)
            yield block

    def slices(self, spans: list[tuple[float, float]]) -> Iterator[np.ndarray]:
        """The audio of each (start, end) span in seconds, in order of start, keeping only what is still ahead."""
        buffer, offset = np.zeros(0, np.float32), 0
        blocks = iter(self)
        for start, end in spans:
            while offset + len(buffer) < int(round(end * SAMPLE_RATE)):
                block = next(blocks, None)
                if block is None:
                    break
                buffer = np.concatenate([buffer, block])
            yield utterance_audio(buffer, start - offset / SAMPLE_RATE, end - offset / SAMPLE_RATE).copy()
            drop = max(0, min(len(buffer), int(round(start * SAMPLE_RATE)) - offset))
            buffer, offset = buffer[drop:], offset + drop
        for _ in blocks:  # the rest of the file still counts towards its duration
            pass
