"""`mmml-annotate VIDEOS... --out scores.parquet [--model CHECKPOINT]`

Without `--model`, the default MMML model is used (`$MMML_MODEL`, else the
one `mmml-train default` installed); with neither, one line says how to get
one and the exit status is 2.

Exit status: 0 every input annotated; 1 at least one input failed (listed in
`<stem>.errors.parquet`, the rest is in `--out`); 2 the run could not start
(bad option, unreadable checkpoint, work directory of a different run).
"""

from __future__ import annotations

import atexit
import gc
import sys
import time
from pathlib import Path

import click
from click.core import ParameterSource

from mmml.config import to_dict
from mmml.packaged import HOW_TO_GET_A_MODEL, default_model
from pipelines.engine import VideoResult
from pipelines.options import ASROptions, EngineOptions, ScoreOptions, SegmentOptions
from pipelines.transcripts import TranscriptsError, stored_settings

from .config import AnnotateConfig, with_settings
from .run import RunError, annotate, utterance_limit

_ASR, _SEG, _SCORE, _ENGINE = ASROptions(), SegmentOptions(), ScoreOptions(), EngineOptions()
# The options that decide what the utterances are, and the setting each sets. With --transcripts, those not given
# are taken from the earlier output: its utterances are reused, so the settings that made them are this run's.
_UTTERANCE_OPTIONS = {
    "asr_model": ("asr", "model"),
    "language": ("asr", "language"),
    "compute_type": ("asr", "compute_type"),
    "beam_size": ("asr", "beam_size"),
    "vad_threshold": ("asr", "vad_threshold"),
    "max_utterance": ("segment", "max_seconds"),
    "min_utterance": ("segment", "min_seconds"),
    "pause": ("segment", "pause_seconds"),
}


class CannotStart(click.ClickException):
    exit_code = 2  # 1 means "some input failed"; a run that never started must not look like that


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Parquet file to write (one row per utterance); failures go to <stem>.errors.parquet.",
)
@click.option(
    "--model",
    "checkpoint",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=str),
    help="MMML checkpoint directory. [default: $MMML_MODEL, else the model `mmml-train default` installed]",
)
@click.option("--overwrite", is_flag=True, help="Discard earlier work for --out and start over.")
@click.option(
    "--transcripts",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    default=None,
    help="An earlier mmml-annotate output: its videos keep their utterances and are only re-scored (no ASR); "
    "other videos are transcribed as usual. ASR and utterance options not given are taken from it.",
)
# ASR
@click.option(
    "--asr-model",
    default=_ASR.model,
    help="faster-whisper model: a name (small, large-v3), a CTranslate2 directory, or packaged:<alias>.",
)
@click.option("--language", default=None, help="Spoken language code (e.g. en); default: detect per video.")
@click.option("--compute-type", default=_ASR.compute_type, help="CTranslate2 compute type (int8, float16, ...).")
@click.option("--beam-size", default=_ASR.beam_size, type=click.IntRange(1))
@click.option("--asr-batch-size", default=_ASR.batch_size, type=click.IntRange(1), help="30 s windows per ASR batch.")
@click.option(
    "--asr-threads",
    default=_ASR.cpu_threads,
    type=click.IntRange(0),
    help="CPU threads per ASR worker (0: the cores of the smallest node, at most 8).",
)
@click.option("--vad-threshold", default=_ASR.vad_threshold, type=click.FloatRange(0, 1))
@click.option(
    "--group-videos",
    default=_ASR.group_videos,
    type=click.IntRange(1),
    help="Consecutive videos transcribed together, their speech sharing Whisper windows (1: each alone).",
)
@click.option(
    "--group-mb",
    default=_ASR.group_mb,
    type=click.IntRange(1),
    help="At most this many MB of input files per group (a larger file goes alone).",
)
# utterances
@click.option(
    "--max-utterance",
    default=None,
    type=click.FloatRange(0.5),
    help="Longest utterance, seconds; never more than the model's audio limit, so that every second of "
    "an utterance is scored. [default: the model's audio limit, at most 15]",
)
@click.option(
    "--min-utterance", default=_SEG.min_seconds, type=click.FloatRange(0), help="Shorter fragments are merged."
)
@click.option(
    "--pause", default=_SEG.pause_seconds, type=click.FloatRange(0), help="A pause this long ends an utterance."
)
# scoring
@click.option(
    "--score-batch-size", default=_SCORE.batch_size, type=click.IntRange(1), help="Utterances per MMML batch."
)
@click.option(
    "--device",
    default="auto",
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Device for ASR and scoring workers (auto: GPU workers when the cluster has GPUs).",
)
# engine
@click.option(
    "--ray-address",
    default=None,
    help="Join this Ray cluster (e.g. ray://host:10001 or host:6379); default: local Ray.",
)
@click.option("--num-cpus", default=None, type=click.IntRange(1), help="CPUs of the local Ray (default: all).")
@click.option(
    "--asr-workers",
    default=None,
    type=click.IntRange(1),
    help="ASR workers. [default: as many as the cluster's cores (or GPUs) keep busy]",
)
@click.option(
    "--score-workers",
    default=_ENGINE.score_workers,
    type=click.IntRange(1),
    help="Scoring workers, each with its own model (more than 1 re-scores through Ray, never in this process).",
)
@click.option(
    "--score-calls",
    default=None,
    type=click.IntRange(1),
    help="Scoring calls each scoring worker runs side by side. [default: a CPU core each, at most 4; 1 on a GPU]",
)
@click.option(
    "--demux-workers",
    default=_ENGINE.demux_workers,
    type=click.IntRange(1),
    help="Groups of videos Ray decodes at once (a re-scoring in this process decodes one group at a time).",
)
@click.option("--asr-cpus", default=_ENGINE.asr_cpus, type=click.FloatRange(0), help="Logical CPUs per ASR worker.")
@click.option("--score-cpus", default=_ENGINE.score_cpus, type=click.FloatRange(0))
@click.option(
    "--asr-gpus", default=None, type=click.FloatRange(0), help="GPUs per ASR worker (default: 0.5 if GPUs exist)."
)
@click.option(
    "--score-gpus", default=None, type=click.FloatRange(0), help="GPUs per scoring worker (default: 0.5 if GPUs exist)."
)
@click.option(
    "--object-store-mb",
    default=_ENGINE.object_store_mb,
    type=click.IntRange(64),
    help="Memory budget for audio in flight between stages.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=_ENGINE.demux_timeout_s,
    type=click.FloatRange(1),
    help="Decoding time limit per file, seconds.",
)
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def main(inputs: tuple[str, ...], out: Path, checkpoint: str, overwrite: bool, progress: bool, **options) -> None:
    """Annotate videos (files, folders searched recursively, or .txt manifests of paths) with sentiment scores.

    Writes one Parquet row per utterance to --out. Re-running the same command after an interruption
    resumes: finished videos are not processed again. To re-score with a retrained model without
    transcribing again, pass the earlier output as --transcripts.

    Exit status: 0 every input annotated; 1 some input failed (see <stem>.errors.parquet; a silent file
    counts as failed, stage "segment"); 2 the run could not start.
    """
    # By exit every output is written and closed: freezing the heap spares the interpreter's final garbage
    # collection over the objects of torch, transformers and Ray, about 1 s of a 12 s re-scoring run (2 cores).
    atexit.register(gc.freeze)
    if checkpoint is None:
        default = default_model()
        if default is None:
            raise CannotStart(HOW_TO_GET_A_MODEL)
        checkpoint = str(default)
    config = _config(checkpoint, options)
    if config.transcripts:
        config = _with_earlier_settings(config, click.get_current_context())
    try:
        summary = annotate(inputs, out, config, overwrite=overwrite, progress=_progress_bar if progress else None)
    except RunError as err:
        raise CannotStart(str(err)) from err
    click.echo(
        f"{summary.videos} inputs: {summary.annotated} annotated ({summary.skipped} from an earlier run), "
        f"{summary.utterances} utterances ({summary.unread} in a language the text encoder does not read) "
        f"-> {summary.out}; {summary.failed} failed -> {summary.errors}",
        err=True,
    )
    sys.exit(summary.exit_code)


def _config(checkpoint: str, o: dict) -> AnnotateConfig:
    asr_device = score_device = o["device"]
    return AnnotateConfig(
        transcripts=str(Path(o["transcripts"]).absolute()) if o["transcripts"] else None,
        score=ScoreOptions(checkpoint=checkpoint, batch_size=o["score_batch_size"], device=score_device),
        asr=ASROptions(
            model=o["asr_model"],
            device=asr_device,
            compute_type=o["compute_type"],
            beam_size=o["beam_size"],
            language=o["language"],
            batch_size=o["asr_batch_size"],
            cpu_threads=o["asr_threads"],
            vad_threshold=o["vad_threshold"],
            group_videos=o["group_videos"],
            group_mb=o["group_mb"],
        ),
        segment=SegmentOptions(
            max_seconds=o["max_utterance"] or utterance_limit(checkpoint),
            min_seconds=o["min_utterance"],
            pause_seconds=o["pause"],
        ),
        engine=EngineOptions(
            ray_address=o["ray_address"],
            num_cpus=o["num_cpus"],
            asr_workers=o["asr_workers"],
            score_workers=o["score_workers"],
            score_calls=o["score_calls"],
            demux_workers=o["demux_workers"],
            asr_cpus=o["asr_cpus"],
            score_cpus=o["score_cpus"],
            asr_gpus=o["asr_gpus"],
            score_gpus=o["score_gpus"],
            object_store_mb=o["object_store_mb"],
            demux_timeout_s=o["timeout_s"],
        ),
    )


def _with_earlier_settings(config: AnnotateConfig, context: click.Context) -> AnnotateConfig:
    """The ASR and utterance settings of the --transcripts output wherever the command line gives none."""
    try:
        earlier = stored_settings(config.transcripts)
    except TranscriptsError as err:
        raise CannotStart(f"--transcripts: {err}") from err
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    given = {
        setting for name, setting in _UTTERANCE_OPTIONS.items() if context.get_parameter_source(name) not in defaults
    }
    taken = with_settings(config, earlier, keep=given)
    before, after = to_dict(config), to_dict(taken)
    changed = [
        f"{section}.{key} {value!r}"
        for section in earlier
        for key, value in after[section].items()
        if before[section][key] != value
    ]
    if changed:
        click.echo(f"--transcripts: taking the earlier run's {', '.join(changed)}", err=True)
    return taken


def _progress_bar(total: int, done: int):
    """tqdm bar: videos done, utterances, audio hours, speed as a multiple of real time."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="video", dynamic_ncols=True, file=sys.stderr)
    started, totals = time.monotonic(), {"utterances": 0, "audio": 0.0}

    def update(result: VideoResult) -> None:
        totals["utterances"] += len(result.rows)
        totals["audio"] += result.audio_seconds
        elapsed = max(time.monotonic() - started, 1e-9)
        bar.set_postfix(
            utt=totals["utterances"],
            audio_h=f"{totals['audio'] / 3600:.2f}",
            speed=f"{totals['audio'] / elapsed:.1f}x realtime",
            refresh=False,
        )
        bar.update(1)
        if bar.n >= total:
            bar.close()

    return update
