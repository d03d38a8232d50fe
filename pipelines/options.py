"""Every stage's options, as plain dataclasses (faster-whisper style), nested by `annotate.config`.

They live apart from the stages on purpose: importing them costs nothing,
so the command's driver and the decode workers never load torch or
CTranslate2; only the ASR and scoring actors do.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmml.config import SAMPLE_RATE  # noqa: F401  (the stages import it from here)

WINDOW_SECONDS = 30  # Whisper's receptive field: what one decoder pass sees


@dataclass(frozen=True)
class ASROptions:
    """Which Whisper runs and how.

    `model` is a faster-whisper model name (`small`, `large-v3`: downloaded to
    the hub cache on first use), a local CTranslate2 directory, or a
    `packaged:` alias (offline). `language=None` detects the language of
    each Whisper window (`pipelines.transcribe`).
    """

    model: str = "packaged:whisper-base"
    device: str = "auto"  # "cpu", "cuda" or "auto"
    compute_type: str = "auto"  # CTranslate2 quantisation; auto: float16 on a GPU, int8 on a CPU
    beam_size: int = 5
    language: str | None = None
    batch_size: int = 8  # 30 s windows decoded together
    cpu_threads: int = 0  # per ASR worker; 0: sized from the machine's cores (`pipelines.engine`)
    group_videos: int = 32  # consecutive videos whose speech may share Whisper windows (`pipelines.windows`)
    group_mb: int = 64  # ... and at most this many MB of input files per group (a larger file goes alone)
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 160  # faster-whisper's batched default: split speech at short pauses
    vad_speech_pad_ms: int = 200


@dataclass(frozen=True)
class SegmentOptions:
    """Utterance boundaries (seconds); see `pipelines.segment`."""

    max_seconds: float = 15.0
    min_seconds: float = 1.0
    pause_seconds: float = 0.8


@dataclass(frozen=True)
class ScoreOptions:
    checkpoint: str = ""  # MMML checkpoint directory (`--model`)
    batch_size: int = 16  # utterances per forward pass
    device: str = "auto"  # "cpu", "cuda" or "auto"
    torch_threads: int = 0  # intra-op threads per scoring call on CPU; 0: sized (`pipelines.engine.sized`)
    amp: bool = True  # float16 autocast on a GPU


@dataclass(frozen=True)
class EngineOptions:
    """Where and how wide the pipeline runs. None of these change a single output value."""

    ray_address: str | None = None  # None: start a local Ray for this run
    num_cpus: int | None = None  # CPUs of the local Ray (None: all)
    asr_workers: int | None = None  # None: sized from the cluster (`pipelines.engine.sized`)
    score_workers: int = 1
    score_calls: int | None = None  # scoring calls one worker runs side by side on its one model; None: sized
    demux_workers: int = 2  # concurrent ffmpeg decodes
    asr_cpus: float = 1.0  # logical CPUs reserved per ASR actor (fractional is fine)
    score_cpus: float = 0.5
    demux_cpus: float = 0.25
    asr_gpus: float | None = None  # None: 0.5 when the cluster has GPUs, else 0
    score_gpus: float | None = None
    # Budget for waveforms and utterance audio between stages. Small on purpose: when scoring is slower than
    # ASR, Whisper waits rather than piling audio up (a 2-hour recording would otherwise fill it all).
    object_store_mb: int = 256
    demux_timeout_s: float = 600.0  # per file
