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
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_type_hints

import click
from click.core import ParameterSource

from mmml.cli_help import GroupedCommand, GroupedOption, option_in
from mmml.config import to_dict
from mmml.packaged import HOW_TO_GET_A_MODEL, default_model
from pipelines.collecting import VideoResult
from pipelines.options import ESSENTIAL, HELP_GROUPS, Flag
from pipelines.transcripts import STORED_SECTIONS, TranscriptsError, stored_settings

from .config import AnnotateConfig, with_settings
from .run import RunError, annotate, utterance_limit


@dataclass(frozen=True)
class _Declared:
    """One flag as declared in `pipelines.options`: the settings it sets and its click type and default."""

    flag: Flag
    settings: tuple[tuple[str, str], ...]  # (section, field) of AnnotateConfig
    type: Any
    default: Any
    result: bool  # whether it can change an output value


_SECTIONS = {name: options for name, options in get_type_hints(AnnotateConfig).items() if is_dataclass(options)}


def _declared() -> dict[str, _Declared]:
    """Every flag of the option dataclasses, by click parameter name (`--asr-model` -> `asr_model`)."""
    declared: dict[str, _Declared] = {}
    for section, options in _SECTIONS.items():
        hints = get_type_hints(options)
        for f in fields(options):
            flag = f.metadata.get("flag")
            if flag is None:
                continue
            name = flag.name.removeprefix("--").replace("-", "_")
            settings = (*declared[name].settings, (section, f.name)) if name in declared else ((section, f.name),)
            default = None if flag.shown_default else f.default
            declared[name] = _Declared(flag, settings, _click_type(flag, hints[f.name]), default, f.metadata["result"])
    return declared


def _click_type(flag: Flag, hint: Any) -> Any:
    if flag.choices:
        return click.Choice(flag.choices)
    kind = next(t for t in (get_args(hint) or (hint,)) if t is not type(None))
    low = flag.minimum
    if kind is int:
        return click.IntRange(None if low is None else int(low), flag.maximum)
    if kind is float:
        return click.FloatRange(low, flag.maximum)
    return kind


_FLAGS = _declared()
# With --transcripts, the options that decide what the utterances are and are not given are taken from the
# earlier output: its utterances are reused, so the settings that made them are this run's.
_UTTERANCE_OPTIONS = {
    name: setting
    for name, declared in _FLAGS.items()
    if declared.result
    for setting in declared.settings
    if setting[0] in STORED_SECTIONS
}


def _declared_options(command: Callable) -> Callable:
    """The click options of every declared flag, in declaration order."""
    for name, declared in reversed(_FLAGS.items()):
        shown = f" [default: {declared.flag.shown_default}]" if declared.flag.shown_default else ""
        command = click.option(
            declared.flag.name,
            name,
            cls=GroupedOption,
            group=declared.flag.group,
            type=declared.type,
            default=declared.default,
            help=declared.flag.help + shown,
        )(command)
    return command


class CannotStart(click.ClickException):
    exit_code = 2  # 1 means "some input failed"; a run that never started must not look like that


_essential = option_in(ESSENTIAL)


@click.command(
    cls=GroupedCommand,
    groups=HELP_GROUPS,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 110},
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@_essential(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Parquet file to write (one row per utterance); failures go to <stem>.errors.parquet.",
)
@_essential(
    "--model",
    "checkpoint",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=str),
    help="MMML checkpoint directory. [default: $MMML_MODEL, else the model `mmml-train default` installed]",
)
@_essential(
    "--transcripts",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    default=None,
    help="An earlier mmml-annotate output: its videos keep their utterances and are only re-scored (no ASR); "
    "other videos are transcribed as usual. ASR and utterance options not given are taken from it.",
)
@_essential("--overwrite", is_flag=True, help="Discard earlier work for --out and start over.")
@_declared_options
@_essential("--progress/--no-progress", default=True, help="Progress bar on stderr.")
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


def _config(checkpoint: str, given: dict[str, Any]) -> AnnotateConfig:
    """The run's config tree: every declared flag's value in the settings it sets."""
    sections: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for name, declared in _FLAGS.items():
        for section, setting in declared.settings:
            sections[section][setting] = given[name]
    sections["score"]["checkpoint"] = checkpoint
    if sections["segment"]["max_seconds"] is None:
        sections["segment"]["max_seconds"] = utterance_limit(checkpoint)
    transcripts = str(Path(given["transcripts"]).absolute()) if given["transcripts"] else None
    return AnnotateConfig(transcripts=transcripts, **{s: options(**sections[s]) for s, options in _SECTIONS.items()})


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
