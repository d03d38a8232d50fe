"""Every stage's options, as plain dataclasses (faster-whisper style), nested by `annotate.config`.

They live apart from the stages on purpose: importing them costs nothing,
so the command's driver and the decode workers never load torch or
CTranslate2; only the ASR and scoring actors do.

Each option is declared once, here: its default, the `mmml-annotate` flag
that sets it (`Flag`: name, help, where `--help` lists it) and whether it can
change an output value (`result`). The command line, the check that a
resumed run continues the same work (`annotate.config.result_identity`) and
what `--transcripts` inherits from an earlier run are all derived from these
declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from mmml.config import SAMPLE_RATE  # noqa: F401  (the stages import it from here)

WINDOW_SECONDS = 30  # Whisper's receptive field: what one decoder pass sees

# Where `mmml-annotate --help` lists an option: what every user needs first, then by subject.
ESSENTIAL, ASR, UTTERANCES, SCORING, CLUSTER, TUNING = (
    "Essential options",
    "Speech recognition",
    "Utterances",
    "Scoring",
    "Cluster",
    "Tuning (speed and memory)",
)
HELP_GROUPS = (ESSENTIAL, ASR, UTTERANCES, SCORING, CLUSTER, TUNING)


@dataclass(frozen=True)
class Flag:
    """How an option appears on the command line; `annotate.cli` builds the click option from it.

    `minimum`/`maximum` bound a number; `choices` make it a choice. Two fields
    with the same flag name are set together by it (`--device`). `shown_default`
    describes a default that is worked out at run time (None in the field).
    """

    name: str
    help: str = ""
    group: str = TUNING
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    shown_default: str | None = None


def option(default: Any, flag: Flag | None = None, *, result: bool = True) -> Any:
    """A field with its flag (None: set only through the config tree) and whether it can change an output value."""
    return field(default=default, metadata={"flag": flag, "result": result})


_DEVICE = Flag(
    "--device",
    "Device for ASR and scoring workers (auto: GPU workers when the cluster has GPUs).",
    ESSENTIAL,
    choices=("auto", "cpu", "cuda"),
)


@dataclass(frozen=True)
class ASROptions:
    """Which Whisper runs and how.

    `model` is a faster-whisper model name (`small`, `large-v3`: downloaded to
    the hub cache on first use), a local CTranslate2 directory, or a
    `packaged:` alias (offline). `language=None` detects the language of
    each Whisper window (`pipelines.transcribe`).
    """

    model: str = option(
        "packaged:whisper-base",
        Flag(
            "--asr-model",
            "faster-whisper model: a name (small, large-v3), a CTranslate2 directory, or packaged:<alias>.",
            ESSENTIAL,
        ),
    )
    device: str = option("auto", _DEVICE, result=False)
    compute_type: str = option(  # CTranslate2 quantisation; auto: float16 on a GPU, int8 on a CPU
        "auto", Flag("--compute-type", "CTranslate2 compute type (int8, float16, ...).", ASR)
    )
    beam_size: int = option(5, Flag("--beam-size", "Whisper beam width.", ASR, minimum=1))
    language: str | None = option(
        None, Flag("--language", "Spoken language code (e.g. en).", ESSENTIAL, shown_default="detect per video")
    )
    batch_size: int = option(8, Flag("--asr-batch-size", "30 s windows per ASR batch.", minimum=1), result=False)
    cpu_threads: int = option(  # per ASR worker; sized in `pipelines.sizing`
        0,
        Flag("--asr-threads", "CPU threads per ASR worker (0: the cores of the smallest node, at most 8).", minimum=0),
        result=False,
    )
    # Grouping moves word times by Whisper's jitter at most (`pipelines.windows`): resumption and --transcripts
    # accept any grouping.
    group_videos: int = option(
        32,
        Flag(
            "--group-videos",
            "Consecutive videos transcribed together, their speech sharing Whisper windows (1: each alone).",
            minimum=1,
        ),
        result=False,
    )
    group_mb: int = option(
        64,
        Flag("--group-mb", "At most this many MB of input files per group (a larger file goes alone).", minimum=1),
        result=False,
    )
    vad_threshold: float = option(
        0.5, Flag("--vad-threshold", "Silero VAD speech probability threshold.", ASR, minimum=0, maximum=1)
    )
    vad_min_silence_ms: int = option(160)  # faster-whisper's batched default: split speech at short pauses
    vad_speech_pad_ms: int = option(200)  # around each region: where utterances begin and end
    whisper_pad_ms: int = option(400)  # what Whisper hears around each region (`pipelines.vad`)

    # Runs saved before `whisper_pad_ms` existed had Whisper hear the regions' own margin: resuming one goes on so.
    SAVED_BEFORE_FIELD_EXISTED: ClassVar[dict[str, Any]] = {"whisper_pad_ms": 200}


@dataclass(frozen=True)
class SegmentOptions:
    """Utterance boundaries (seconds); see `pipelines.segment`."""

    max_seconds: float = option(
        15.0,
        Flag(
            "--max-utterance",
            "Longest utterance, seconds; never more than the model's audio limit, so that every second of an "
            "utterance is scored.",
            UTTERANCES,
            minimum=0.5,
            shown_default="the model's audio limit, at most 15",
        ),
    )
    min_seconds: float = option(1.0, Flag("--min-utterance", "Shorter fragments are merged.", UTTERANCES, minimum=0))
    pause_seconds: float = option(0.8, Flag("--pause", "A pause this long ends an utterance.", UTTERANCES, minimum=0))


@dataclass(frozen=True)
class ScoreOptions:
    # The checkpoint counts in a run's identity by its content id, not its path (`annotate.run`).
    checkpoint: str = option("", result=False)  # MMML checkpoint directory (`--model`)
    batch_size: int = option(
        16, Flag("--score-batch-size", "Utterances per MMML batch.", SCORING, minimum=1), result=False
    )
    device: str = option("auto", _DEVICE, result=False)
    torch_threads: int = option(0, result=False)  # intra-op threads per scoring call on CPU; 0: sized
    amp: bool = option(True, result=False)  # float16 autocast on a GPU


@dataclass(frozen=True)
class EngineOptions:
    """Where and how wide the pipeline runs.

    None of these change a single output value: a run's identity
    (`annotate.config.result_identity`) leaves this section out.
    """

    mode: str = option(
        "auto",
        Flag(
            "--engine",
            "ray: a Ray Data pipeline (a local Ray unless --ray-address); here: this process alone, no Ray; "
            "auto: here when no cluster is asked for and this machine runs one ASR worker on its CPU "
            "(`pipelines.local.runs_here`), else ray.",
            CLUSTER,
            choices=("auto", "ray", "here"),
        ),
    )
    ray_address: str | None = option(
        None,
        Flag(
            "--ray-address",
            "Join this Ray cluster (e.g. ray://host:10001 or host:6379).",
            CLUSTER,
            shown_default="a local Ray for this run",
        ),
    )
    num_cpus: int | None = option(
        None, Flag("--num-cpus", "CPUs of the local Ray.", CLUSTER, minimum=1, shown_default="all")
    )
    asr_workers: int | None = option(
        None,
        Flag(
            "--asr-workers",
            "ASR workers.",
            CLUSTER,
            minimum=1,
            shown_default="as many as the cluster's cores (or GPUs) keep busy",
        ),
    )
    score_workers: int = option(
        1,
        Flag(
            "--score-workers",
            "Scoring workers, each with its own model (more than 1 re-scores through Ray, never in this process).",
            CLUSTER,
            minimum=1,
        ),
    )
    score_calls: int | None = option(
        None,
        Flag(
            "--score-calls",
            "Scoring calls each scoring worker runs side by side on its one model.",
            SCORING,
            minimum=1,
            shown_default="a CPU core each, at most 4; 1 on a GPU",
        ),
    )
    demux_workers: int = option(
        2,
        Flag(
            "--demux-workers",
            "Groups of videos Ray decodes at once (a re-scoring in this process decodes one group at a time).",
            CLUSTER,
            minimum=1,
        ),
    )
    asr_cpus: float = option(1.0, Flag("--asr-cpus", "Logical CPUs reserved per ASR worker.", minimum=0))
    score_cpus: float = option(0.5, Flag("--score-cpus", "Logical CPUs reserved per scoring worker.", minimum=0))
    demux_cpus: float = option(0.25)
    asr_gpus: float | None = option(
        None, Flag("--asr-gpus", "GPUs per ASR worker.", minimum=0, shown_default="0.5 if the cluster has GPUs")
    )
    score_gpus: float | None = option(
        None, Flag("--score-gpus", "GPUs per scoring worker.", minimum=0, shown_default="0.5 if the cluster has GPUs")
    )
    # Budget for waveforms and utterance audio between stages. Small on purpose: when scoring is slower than
    # ASR, Whisper waits rather than piling audio up (a 2-hour recording would otherwise fill it all).
    object_store_mb: int = option(
        256, Flag("--object-store-mb", "Memory budget for audio in flight between stages.", minimum=64)
    )
    demux_timeout_s: float = option(600.0, Flag("--timeout", "Decoding time limit per file, seconds.", minimum=1))
