"""Ray wiring: the stages as a streaming Ray Data pipeline, one group of videos at a time.

    groups ─ map(demux) ─ flat_map(Transcribe) ─ map_batches(Score) ─▶ driver
             tasks         actor pool            actor pool

* Videos travel in groups of consecutive inputs (`groups`): thousands of
  short clips become a few hundred Whisper batches, their speech packed into
  shared windows (`pipelines.windows`), instead of one small decode per clip.
* Demux runs as plain tasks, so ffmpeg decodes the next groups while the ASR
  actors transcribe the current ones (decode overlaps ASR).
* Transcribe and Score are actor pools: Whisper and the MMML checkpoint are
  loaded once per actor (`__init__`), in the style of Ray's batch-inference
  examples. Score batches utterances across videos. A re-annotation
  (`--transcripts` for every video) replaces Transcribe by `cut_stored`
  tasks: no Whisper, no ASR actor to start. Run on this machine alone, it
  needs no Ray at all (`pipelines.local`).
* Ray Data streams: with one group per input block and an object-store
  budget, memory holds a bounded number of waveforms however large the
  corpus. The driver keeps only text rows of videos still in flight.
* Decode workers stay light: this module imports neither torch nor
  CTranslate2; the actors import their stage modules when they start.
* Failures stay per video: a stage that cannot handle a video emits an error
  row for it instead of raising, so the run goes on. A dying actor is
  restarted and its task retried (Ray Data's default for actor pools); a
  dying task is retried by Ray.

The driver regroups utterance rows by video and yields a `VideoResult` once
every row of a video has arrived; the caller (`annotate.run`) persists it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from .demux import DemuxError, TooLong, decode_audio, stream_audio
from .discover import Video
from .memory import release_freed_memory
from .options import SAMPLE_RATE, ASROptions, EngineOptions, ScoreOptions, SegmentOptions
from .parts import PART_SECONDS, WHOLE_SECONDS, parts
from .segment import utterance_audio, utterances
from .transcripts import utterance_fields
from .write import UTTERANCES


@dataclass
class VideoResult:
    video: Video
    rows: list[dict[str, Any]] = field(default_factory=list)  # utterance rows (`pipelines.write.UTTERANCES`)
    error: dict[str, Any] | None = None  # error row (`pipelines.write.ERRORS`)
    audio_seconds: float = 0.0


_DECODES_PER_GROUP = 4  # ffmpeg processes a demux task runs at once
BLOCK_BYTES = 8 * 2**20  # Ray Data blocks: rows leave the ASR actor a few videos (or a part) at a time
ASR_THREADS = 8  # most CPU threads one ASR worker is given when sized automatically (`sized`)
# Most scoring calls one CPU worker runs side by side (`sized`): each holds a forward pass's
# activations, so memory grows with them while speed stops growing once they fill the cores (measured on 2 cores;
# above that, the rest of a node's cores go to each call's torch threads).
MAX_SCORE_CALLS = 4


class ClusterTooSmall(ValueError):
    """The worker pools ask for more logical CPUs than the Ray cluster has."""


class NoSpeech(ValueError):
    """A decodable file in which VAD and ASR found nothing to annotate."""


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
            return decode_audio(path, timeout_s=timeout_s, max_seconds=whole_seconds), _NO_ERROR, False
        except TooLong:
            return np.zeros(0, np.float32), _NO_ERROR, True
        except Exception as err:  # one bad file must never stop the run
            return np.zeros(0, np.float32), _failure(path, "demux", err), False

    with ThreadPoolExecutor(max_workers=_DECODES_PER_GROUP) as pool:
        audios, failures, streamed = zip(*pool.map(decode, group["video_path"]))
    return {
        **group,
        "audio": np.concatenate(audios),
        "samples": np.array([len(a) for a in audios], np.int64),
        "streamed": list(streamed),
        **{key: [f[key] for f in failures] for key in _NO_ERROR},
    }


def cut_stored(group: dict[str, Any], timeout_s: float) -> Iterator[dict[str, Any]]:
    """The rows of a group whose every video has stored utterances (`--transcripts`): their audio cut, no Whisper.

    A re-annotation runs this as plain tasks, so it starts no ASR actor.
    """
    yield from _unheard_rows(_videos(group), timeout_s)


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
        videos = _videos(group)
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
                found = self._fields(transcript) or _no_speech(videos[i]["video_path"], transcript.duration)
                done = i + 1
                yield from _rows(videos[i], found)
            release_freed_memory()
        except Exception as err:  # Whisper failed: each video not yet done is reported, the run goes on
            for video in videos[done:]:
                yield from _rows(video, _failure(video["video_path"], "asr", err))

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
        for part in parts(stream, vad, self.part_samples, self.part_samples // 4):
            [transcript] = self.stage.transcribe_many(self.pipeline, [part.audio], regions=[part.regions])
            release_freed_memory()
            offset = part.offset / SAMPLE_RATE
            for fields in self._fields(transcript, offset):
                yield fields, utterance_audio(part.audio, fields["start"] - offset, fields["end"] - offset)


def _needs_asr(video: dict[str, Any]) -> bool:
    return not (video["error_stage"] or video["transcript"])


def _unheard_rows(videos: list[dict[str, Any]], timeout_s: float) -> Iterator[dict[str, Any]]:
    """Rows that need no Whisper: a video's decoding error, or its stored utterances with their audio."""
    for video in videos:
        if video["error_stage"]:
            yield from _rows(video, {key: video[key] for key in _NO_ERROR})
        elif video["streamed"]:
            yield from _streamed_rows(video, timeout_s)
        else:
            yield from _rows(video, _stored(video))


Pieces = Iterator[tuple[dict[str, Any], np.ndarray]]  # (utterance fields, its audio), in order


def _streamed_rows(
    video: dict[str, Any], timeout_s: float, hear: Callable[[_Stream], Pieces] | None = None
) -> Iterator[dict[str, Any]]:
    """A long recording's rows, a part at a time; only its last row says how many there are (and how long).

    Its utterances are the stored ones, or what `hear` finds in the stream.
    """
    path = video["video_path"]
    head = {"video_path": path, "video_id": video["video_id"]}
    stored = _stored(video) if video["transcript"] else None
    if isinstance(stored, dict):  # unreadable stored utterances: the same error row as for a short video
        yield from _rows(video, stored)
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
                **_NO_ERROR,
            }
        if held is None:
            raise _no_speech_error(path, stream.seconds)
        yield {**held, "n_utterances": held["utterance"] + 1, "duration": stream.seconds}
    except Exception as err:  # rows already sent are dropped by the driver when the error row arrives
        stage = "demux" if isinstance(err, DemuxError) else "segment" if isinstance(err, NoSpeech) else "asr"
        yield {**head, **_EMPTY_UTTERANCE, "duration": stream.seconds, **_failure(path, stage, err)}


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
                    for key, value in _failure(batch["video_path"][i], "score", err).items():
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
    asr, scoring, engine = sized(asr, scoring, engine, _alive_nodes(), needs_asr)
    _check_fits(engine, resources.get("CPU", 0))
    check_gpus(asr, scoring, engine, resources)
    items = group_items(videos, asr, transcripts)
    has_gpu = resources.get("GPU", 0) > 0
    asr_gpus = _gpus(engine.asr_gpus, has_gpu, asr.device)
    score_gpus = _gpus(engine.score_gpus, has_gpu, scoring.device)
    transcribe = (
        {
            "fn": Transcribe,
            "fn_constructor_kwargs": {
                "asr": asr,
                "segment": segment,
                "device": _device(asr_gpus),
                "timeout_s": engine.demux_timeout_s,
            },
            "compute": ray.data.ActorPoolStrategy(size=min(engine.asr_workers, len(items))),
            "num_cpus": engine.asr_cpus,
            "num_gpus": asr_gpus,
        }
        if needs_asr
        else {  # re-annotation: only cutting stored utterances' audio, as light tasks beside the decoding
            "fn": cut_stored,
            "fn_kwargs": {"timeout_s": engine.demux_timeout_s},
            "compute": ray.data.TaskPoolStrategy(size=min(engine.demux_workers, len(items))),
            "num_cpus": engine.demux_cpus,
        }
    )
    dataset = (
        ray.data.from_items(items, override_num_blocks=len(items))  # one group per block: bounded streaming
        .map(
            demux_group,
            fn_kwargs={"timeout_s": engine.demux_timeout_s},
            compute=ray.data.TaskPoolStrategy(size=min(engine.demux_workers, len(items))),
            num_cpus=engine.demux_cpus,
        )
        .flat_map(**transcribe)
        .map_batches(
            Score,
            fn_constructor_kwargs={"options": scoring, "device": _device(score_gpus)},
            batch_size=scoring.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(
                size=engine.score_workers,
                max_concurrent_calls_per_actor=engine.score_calls,
                enable_true_multi_threading=engine.score_calls > 1,
            ),
            num_cpus=engine.score_cpus,
            num_gpus=score_gpus,
        )
    )
    by_id = {v.video_id: v for v in videos}
    collector = Collector()
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            result = collector.add(row, by_id[row["video_id"]])
            if result is not None:
                yield result


def group_items(videos: Sequence[Video], asr: ASROptions, transcripts: Mapping[str, str]) -> list[dict[str, list]]:
    """The pipeline's input rows: one per group of videos (`groups`), with each video's stored utterances or ""."""
    return [
        {
            "video_path": [v.path for v in group],
            "video_id": [v.video_id for v in group],
            "transcript": [transcripts.get(v.video_id, "") for v in group],
        }
        for group in groups(videos, asr.group_videos, asr.group_mb * 2**20)
    ]


def groups(videos: Sequence[Video], max_videos: int, max_bytes: int) -> list[list[Video]]:
    """Consecutive videos, at most `max_videos` and `max_bytes` of input files per group (a larger file alone).

    A group is decoded by one task and transcribed together, its speech
    sharing Whisper windows; the input order alone fixes the groups, so the
    same inputs are always packed the same way.
    """
    out: list[list[Video]] = []
    size = 0
    for video in videos:
        bytes_ = _file_bytes(video.path)
        if not out or len(out[-1]) >= max_videos or size + bytes_ > max_bytes:
            out.append([])
            size = 0
        out[-1].append(video)
        size += bytes_
    return out


def _file_bytes(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # vanished or unreadable: demux reports it
        return 0


def sized(
    asr: ASROptions,
    scoring: ScoreOptions,
    engine: EngineOptions,
    nodes: Sequence[Mapping[str, float]],
    needs_asr: bool = True,
) -> tuple[ASROptions, ScoreOptions, EngineOptions]:
    """ASR workers and their threads, and scoring calls and threads, from the cluster's nodes, where left open.

    A run with no tuning flags keeps every core busy: each ASR worker gets
    the cores of the smallest node, up to `ASR_THREADS`, as decoding lanes of
    one thread each on a CPU (`pipelines.transcribe.Decoder`), and there are
    as many workers as fit (one per GPU on GPU nodes). Scoring on a CPU runs
    calls side by side on its one model, one per core (at most
    `MAX_SCORE_CALLS`), rather than threads within a call: a forward pass of
    a few utterances splits poorly over threads (two threads scored at 1.45
    cores' worth of work, two calls of one thread at 1.85). Beside ASR each
    call has one thread, and the calls interleave with decoding on the same
    cores; they matter once Whisper is done and a backlog of utterances is
    left to score (one call left a core idle for the last 7 s of a 37 s
    run). Without ASR (re-scoring `--transcripts`) the calls share out the
    cores as threads.
    """
    cpus = [int(node.get("CPU", 0)) for node in nodes if node.get("CPU", 0) >= 1]
    smallest = max(1, min(cpus, default=1))
    gpus = sum(node.get("GPU", 0) for node in nodes)
    on_cpu = scoring_device(scoring, engine, gpus > 0) == "cpu"
    calls = engine.score_calls or (min(MAX_SCORE_CALLS, smallest) if on_cpu else 1)
    scoring = replace(scoring, torch_threads=scoring.torch_threads or (1 if needs_asr else max(1, smallest // calls)))
    threads = asr.cpu_threads or min(ASR_THREADS, smallest)
    if engine.asr_workers:
        workers = engine.asr_workers
    elif gpus and asr.device != "cpu":
        workers = max(1, int(gpus))
    else:  # as many as the cores hold, and as the logical CPUs hold beside scoring and decoding
        room = (sum(cpus) - _cpus_beside_asr(engine)) / engine.asr_cpus
        workers = max(1, min(sum(c // threads for c in cpus), math.floor(room)))
    engine = replace(engine, asr_workers=workers, score_calls=calls)
    return replace(asr, cpu_threads=threads), scoring, engine


def _alive_nodes() -> list[dict[str, float]]:
    import ray

    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def start_ray(engine: EngineOptions) -> bool:
    """Join `engine.ray_address`, or start a private local Ray (no dashboard) for this run; False if already joined."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if engine.ray_address:
        ray.init(address=engine.ray_address, **common)
    else:
        ray.init(num_cpus=max(engine.num_cpus or os.cpu_count() or 1, math.ceil(_cpus_needed(engine))), **common)
    return True


@contextlib.contextmanager
def ray_session(engine: EngineOptions) -> Iterator[None]:
    """Ray for the length of a run: started (or joined) on entry, shut down on exit if this run started it.

    Shutting down here, not at interpreter exit, lets Ray Data's threads and
    the actors stop while the interpreter is whole: a run that had written
    every row once exited 1 from Ray's shutdown during finalisation, and the
    exit took a second longer. A Ray the caller started stays up.
    """
    import ray

    started = start_ray(engine)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _cpus_needed(engine: EngineOptions) -> float:
    """Logical CPUs the actor pools hold for the whole run, plus one decode task."""
    return (engine.asr_workers or 1) * engine.asr_cpus + _cpus_beside_asr(engine)


def _cpus_beside_asr(engine: EngineOptions) -> float:
    return engine.score_workers * engine.score_cpus + engine.demux_cpus


def _check_fits(engine: EngineOptions, available_cpus: float) -> None:
    """Refuse a pipeline the cluster can never schedule: Ray Data would otherwise wait forever."""
    if _cpus_needed(engine) > available_cpus:
        raise ClusterTooSmall(
            f"the pipeline needs {_cpus_needed(engine):g} logical CPUs "
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


def _configure_data_context(engine: EngineOptions) -> None:
    from ray.data import DataContext, ExecutionResources

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the command draws its own bar; keep Ray Data's chatter about it quiet
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    logging.getLogger("ray.data._internal.execution.streaming_executor").setLevel(logging.WARNING)
    context.print_on_execution_start = False
    context.execution_options.resource_limits = ExecutionResources(object_store_memory=engine.object_store_mb * 2**20)
    context.target_max_block_size = BLOCK_BYTES


def _gpus(requested: float | None, has_gpu: bool, device: str) -> float:
    """GPUs per worker: as requested, else half a GPU (ASR and scoring share one) when there are GPUs to use."""
    if requested is not None:
        return requested
    return 0.5 if has_gpu and device != "cpu" else 0.0


def scoring_device(scoring: ScoreOptions, engine: EngineOptions, has_gpu: bool) -> str:
    """Where scoring runs: on a GPU when the scoring workers take some (`_gpus`, as `run` places them), else on the
    CPU."""
    return _device(_gpus(engine.score_gpus, has_gpu, scoring.device))


def _device(gpus: float) -> str:
    return "cuda" if gpus > 0 else "cpu"


# ---------------------------------------------------------------- rows

_NO_ERROR = {"error_stage": "", "error_type": "", "error_message": "", "error_traceback": ""}
_EXPECTED = (
    DemuxError,
    NoSpeech,
)  # a bad or silent file, said in its message; anything else is kept with its traceback
_EMPTY_UTTERANCE = {
    "utterance": -1,
    "start": np.nan,
    "end": np.nan,
    "text": "",
    "language": "",
    "language_probability": np.nan,
    "asr_confidence": np.nan,
    "asr_model": "",
    "n_utterances": 0,
    "duration": 0.0,
    "audio": np.zeros(0, np.float32),
}


def _failure(path: str, stage: str, err: Exception) -> dict[str, str]:
    message = str(err) if path in str(err) else f"{path}: {err}"
    trace = "" if isinstance(err, _EXPECTED) else "".join(traceback.format_exception(err))
    return {"error_stage": stage, "error_type": type(err).__name__, "error_message": message, "error_traceback": trace}


def _no_speech_error(path: str, seconds: float) -> NoSpeech:
    return NoSpeech(f"{path}: no speech found in {seconds:.1f} s of audio (silent or no voice); nothing to annotate")


def _no_speech(path: str, seconds: float) -> dict[str, str]:
    return _failure(path, "segment", _no_speech_error(path, seconds))


def _stored(video: dict[str, Any]) -> list[dict[str, Any]] | dict[str, str]:
    try:
        return utterance_fields(video["transcript"])
    except Exception as err:
        return _failure(video["video_path"], "segment", err)


def _stored_pieces(found: list[dict[str, Any]], stream: _Stream) -> Pieces:
    """Stored utterances of a streamed recording, each with its audio cut from the stream as it passes."""
    return zip(found, stream.slices([(f["start"], f["end"]) for f in found]))


def _videos(group: dict[str, Any]) -> list[dict[str, Any]]:
    """The demuxed group, one dict per video (its audio a view into the group's array)."""
    ends = np.cumsum(group["samples"])
    names = ("video_path", "video_id", "transcript", "streamed", *_NO_ERROR)
    return [
        {**{name: group[name][i] for name in names}, "audio": group["audio"][end - n : end]}
        for i, (n, end) in enumerate(zip(group["samples"], ends))
    ]


def _rows(video: dict[str, Any], found: list[dict[str, Any]] | dict[str, str]) -> list[dict[str, Any]]:
    """A video's utterance rows, each with its audio, or its one error row."""
    duration = len(video["audio"]) / SAMPLE_RATE
    head = {"video_path": video["video_path"], "video_id": video["video_id"]}
    if isinstance(found, dict):
        return [{**head, **_EMPTY_UTTERANCE, "duration": duration, **found}]
    return [
        {
            **head,
            **fields,
            "utterance": i,
            "n_utterances": len(found),
            "duration": duration,
            "audio": np.ascontiguousarray(utterance_audio(video["audio"], fields["start"], fields["end"])),
            **_NO_ERROR,
        }
        for i, fields in enumerate(found)
    ]


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


class Collector:
    """Regroups the stream of rows into whole videos (rows of one video may arrive in several batches).

    A video is whole when it holds as many rows as one of them announces
    (`n_utterances`; a long recording announces it on its last row only).
    """

    def __init__(self) -> None:
        self.pending: dict[str, dict[int, dict[str, Any]]] = {}
        self.expected: dict[str, int] = {}
        self.finished: set[str] = set()

    def add(self, row: dict[str, Any], video: Video) -> VideoResult | None:
        key = video.video_id
        if key in self.finished:  # rows of a long recording that failed later on
            return None
        if row["utterance"] < 0:  # failed before segmentation (or part-way through a stream): its only result
            return self._finish(key, VideoResult(video, error=_error_fields(row), audio_seconds=row["duration"]))
        rows = self.pending.setdefault(key, {})
        rows[row["utterance"]] = row  # keyed: a retried task can never duplicate a row
        if row["n_utterances"]:
            self.expected[key] = row["n_utterances"]
        if len(rows) < self.expected.get(key, len(rows) + 1):
            return None
        ordered = [rows[i] for i in sorted(rows)]
        seconds = max(r["duration"] for r in ordered)
        failed = next((r for r in ordered if r["error_stage"]), None)
        if failed is not None:
            return self._finish(key, VideoResult(video, error=_error_fields(failed), audio_seconds=seconds))
        return self._finish(key, VideoResult(video, rows=[_output_fields(r) for r in ordered], audio_seconds=seconds))

    def _finish(self, key: str, result: VideoResult) -> VideoResult:
        self.pending.pop(key, None)
        self.expected.pop(key, None)
        self.finished.add(key)
        return result


_OUTPUT = tuple(UTTERANCES.names)  # the output columns, in order


def _output_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in _OUTPUT}


def _error_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "video_path": row["video_path"],
        "video_id": row["video_id"],
        "stage": row["error_stage"],
        "error_type": row["error_type"],
        "message": row["error_message"],
        "traceback": row["error_traceback"],
    }
