"""How wide a run is: workers, threads, scoring calls and GPUs, from the nodes that will run it.

Every size a user leaves open is filled in here, from the cluster's nodes
(or this machine's CPUs and GPUs), so that a run with no tuning flags keeps
every core busy. The Ray pipeline (`pipelines.engine`) and the in-process
re-scoring (`pipelines.local`) size themselves with the same rules, so both
score with the same calls and threads. Plain arithmetic on options: no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from .options import ASROptions, EngineOptions, ScoreOptions

ASR_THREADS = 8  # most CPU threads one ASR worker is given when sized automatically (`sized`)
# Most scoring calls one CPU worker runs side by side (`sized`): each holds a forward pass's activations, so memory
# grows with them while speed stops growing once they fill the cores; a larger node's other cores go to each
# call's torch threads instead.
MAX_SCORE_CALLS = 4


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
    a few utterances splits poorly over threads (on two cores, two calls of
    one thread get about 1.85 cores' worth of work done, one call of two
    threads about 1.45). Beside ASR each call has one thread, and the calls
    interleave with decoding on the same cores; they matter once Whisper is
    done and a backlog of utterances is left to score, which one call would
    leave to a single core. Without ASR (re-scoring `--transcripts`) the
    calls share out the cores as threads.
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


def cpus_needed(engine: EngineOptions) -> float:
    """Logical CPUs the actor pools hold for the whole run, plus one decode task.

    Ray Data schedules nothing until they are free together, so this is the
    least a cluster (or a local Ray) must have.
    """
    return (engine.asr_workers or 1) * engine.asr_cpus + _cpus_beside_asr(engine)


def _cpus_beside_asr(engine: EngineOptions) -> float:
    return engine.score_workers * engine.score_cpus + engine.demux_cpus


def worker_gpus(requested: float | None, has_gpu: bool, device: str) -> float:
    """GPUs per worker: as requested, else half a GPU (ASR and scoring share one) when there are GPUs to use."""
    if requested is not None:
        return requested
    return 0.5 if has_gpu and device != "cpu" else 0.0


def device_for(gpus: float) -> str:
    """The torch or CTranslate2 device of a worker holding `gpus`: a worker without a GPU share runs on the CPU."""
    return "cuda" if gpus > 0 else "cpu"


def scoring_device(scoring: ScoreOptions, engine: EngineOptions, has_gpu: bool) -> str:
    """Where scoring runs: on a GPU when the scoring workers take some (`worker_gpus`, as the pipeline places
    them), else on the CPU."""
    return device_for(worker_gpus(engine.score_gpus, has_gpu, scoring.device))
