"""Run management: what is left to do, resuming after a kill, failures, the final merge.

The run's state lives in a work directory beside the output:

    <out>.parts/
      run.json                 the configuration and its result identity
      done/<video_id>.parquet  utterance rows of one finished video
      failed/<video_id>.parquet  the error row of one failed video

Each part is written atomically the moment its video is finished, so killing
the command at any instant (SIGKILL included) loses at most the videos in
flight. Re-running the same command skips every video with a `done` part,
retries the failed ones (a file may have been fixed; a broken one fails again
quickly) and finally merges all parts, in discovery order, into `--out` and
`<stem>.errors.parquet`, both written atomically. Because rows are merged per
video from whole parts, no row is ever lost or duplicated. The work directory
stays after the merge (it is what makes a later re-run cheap); `--overwrite`
deletes it and starts over.

Re-annotating with a retrained model need not transcribe again: with
`config.transcripts` (an earlier output made with the same ASR and
utterance settings, which is checked), the videos found in it keep their
utterances and are only decoded and scored (`pipelines.transcripts`).

Where no cluster is asked for and Ray would bring nothing (a re-scoring, or
a machine that runs one ASR worker on its CPU), the run happens in this
process, without Ray (`pipelines.local`; `--engine` decides otherwise).

Exit status (`RunSummary.exit_code`): 0 when every input was annotated, 1 when
any input failed (see the errors file). A silent file, or one whose audio has
no speech, yields no utterance and is reported as failed at stage "segment"
(error_type `NoSpeech`), so a run over a corpus with silent videos exits 1.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mmml.atomic import write_text_atomic
from mmml.config import to_dict
from mmml.integrity import audio_seconds, checkpoint_id, text_languages, verify_checkpoint
from pipelines import engine, local
from pipelines.collecting import VideoResult
from pipelines.discover import Missing, Video, discover
from pipelines.options import SegmentOptions
from pipelines.transcripts import TranscriptsError, stored_settings, stored_utterances
from pipelines.write import (
    UTTERANCES,
    error_table,
    unread_words,
    utterance_table,
    with_metadata,
    write_atomic,
    write_concatenated,
)

from .config import TOOL, AnnotateConfig, result_identity, tool_version


class RunError(Exception):
    """A run that cannot start (bad model, conflicting work directory): nothing was annotated."""


@dataclass(frozen=True)
class RunPaths:
    out: Path

    @property
    def errors(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.errors.parquet")

    @property
    def config(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.config.json")

    @property
    def work(self) -> Path:
        return self.out.with_name(f"{self.out.name}.parts")

    def done(self, video_id: str) -> Path:
        return self.work / "done" / f"{video_id}.parquet"

    def failed(self, video_id: str) -> Path:
        return self.work / "failed" / f"{video_id}.parquet"


@dataclass(frozen=True)
class RunSummary:
    videos: int
    annotated: int
    failed: int
    utterances: int
    unread: int  # utterances with words in a language the text encoder does not read: scored from the voice
    skipped: int  # finished by an earlier run
    out: Path
    errors: Path

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


VideoCallback = Callable[[VideoResult], None]


def annotate(
    inputs: Iterable[str],
    out: str | Path,
    config: AnnotateConfig,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], VideoCallback] | None = None,
) -> RunSummary:
    """Annotate every media file `inputs` name into `out`; resume earlier work unless `overwrite`.

    `progress(total, already_done)` may return a callback that sees each finished video.
    """
    paths = RunPaths(Path(out).absolute())
    model_id = _checked_model(config.score.checkpoint)
    identity = result_identity(config, model_id)
    if config.transcripts:  # first: a given option that differs from the earlier run's is the error to name
        _check_transcript_settings(config.transcripts, identity)
    _check_utterances_fit(config)
    videos, missing = discover(inputs)
    _prepare_work_dir(paths, config, identity, overwrite)

    unique = _first_of_each_content(videos)
    todo = [v for v in unique if not paths.done(v.video_id).is_file()]
    if todo:
        transcripts = _stored_utterances(config.transcripts, todo) if config.transcripts else {}
        on_video = progress(len(unique), len(unique) - len(todo)) if progress else None
        try:
            for result in _results(todo, config, transcripts):
                _persist(paths, result)
                if on_video:
                    on_video(result)
        except engine.ClusterTooSmall as err:  # says which cluster (or this machine) and what it has
            raise RunError(str(err)) from err

    metadata = {
        "tool": TOOL,
        "version": tool_version(),
        "config": to_dict(config),
        "identity": identity,
        "text_languages": list(text_languages(config.score.checkpoint)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    annotated, utterances, unread = _merge(paths, videos, metadata)
    failures = _write_errors(paths, videos, missing, metadata)
    write_text_atomic(json.dumps(metadata, indent=2, sort_keys=True) + "\n", paths.config)
    return RunSummary(
        videos=len(videos) + len(missing),
        annotated=annotated,
        failed=failures,
        utterances=utterances,
        unread=unread,
        skipped=len(unique) - len(todo),
        out=paths.out,
        errors=paths.errors,
    )


def _results(todo: list[Video], config: AnnotateConfig, transcripts: dict[str, str]) -> Iterator[VideoResult]:
    """Each video's result as it completes: from the Ray pipeline, or from this process alone where a private Ray
    would only add its start and shutdown (`pipelines.local.runs_here`)."""
    if config.engine.mode == "here" and (config.engine.ray_address or config.engine.score_workers > 1):
        raise RunError("--engine here runs without Ray: it cannot take --ray-address or several --score-workers")
    if local.runs_here(config.engine, todo, transcripts, config.asr, config.score):
        yield from local.run_here(todo, config.asr, config.segment, config.score, config.engine, transcripts)
        return
    try:
        with engine.ray_session(config.engine):
            yield from engine.run(todo, config.asr, config.segment, config.score, config.engine, transcripts)
    except ConnectionError as err:  # joining or losing the cluster
        raise RunError(f"Ray: {err}") from err


def _first_of_each_content(videos: list[Video]) -> list[Video]:
    """Byte-identical copies are annotated once, under the first path; the merge gives every copy its rows."""
    first: dict[str, Video] = {}
    for video in videos:
        first.setdefault(video.video_id, video)
    return list(first.values())


def _checked_model(checkpoint: str) -> str:
    if not checkpoint:
        raise RunError("no MMML checkpoint given (--model)")
    try:
        verify_checkpoint(checkpoint)
        return checkpoint_id(checkpoint)
    except ValueError as err:
        raise RunError(f"--model: {err}") from err


def utterance_limit(checkpoint: str) -> float:
    """The default `--max-utterance`: all the audio the model reads, at most 15 s (what MOSI/MOSEI clips span)."""
    usual = SegmentOptions().max_seconds
    try:
        seconds = audio_seconds(checkpoint)
    except (OSError, ValueError, KeyError):  # not a readable checkpoint: `_checked_model` says what is wrong
        return usual
    return usual if seconds is None else min(usual, seconds)


def _check_utterances_fit(config: AnnotateConfig) -> None:
    """Every second of an utterance must reach the model: refuse utterances longer than the audio it reads."""
    seconds = audio_seconds(config.score.checkpoint)
    if seconds is None or config.segment.max_seconds <= seconds:
        return
    remedy = (
        f"the utterances of --transcripts {config.transcripts} were cut that long: drop --transcripts to cut them again"
        if config.transcripts
        else f"pass --max-utterance {seconds:g} or less"
    )
    raise RunError(
        f"--max-utterance {config.segment.max_seconds:g} s is longer than the {seconds:g} s of audio the model "
        f"scores ({config.score.checkpoint}: audio.max_seconds), so the end of longer utterances would go "
        f"unscored; {remedy}"
    )


def _check_transcript_settings(path: str, identity: dict[str, Any]) -> None:
    """Reused utterances must be the ones this run's ASR and utterance settings would have made."""
    try:
        settings = stored_settings(path)
    except TranscriptsError as err:
        raise RunError(f"--transcripts: {err}") from err
    _refuse_differences(
        settings,
        {section: identity[section] for section in settings},
        f"--transcripts: {path} was made with other ASR or utterance settings",
        "its utterances would not be this run's. Options left out take the earlier run's values and a given "
        "one must match them; or drop --transcripts.",
    )


def _stored_utterances(path: str, videos: list[Video]) -> dict[str, str]:
    try:
        return stored_utterances(path, {v.video_id for v in videos})
    except TranscriptsError as err:
        raise RunError(f"--transcripts: {err}") from err


def _prepare_work_dir(paths: RunPaths, config: AnnotateConfig, identity: dict[str, Any], overwrite: bool) -> None:
    """Create the work directory, or check that the one found was made by a compatible run."""
    state = paths.work / "run.json"
    if overwrite:
        shutil.rmtree(paths.work, ignore_errors=True)
    if state.is_file():
        _refuse_differences(
            json.loads(state.read_text())["identity"],
            identity,
            f"{paths.work} holds a run with different settings",
            "its rows cannot be mixed with this run's. Re-run with --overwrite to start over, or choose another --out.",
        )
    paths.work.mkdir(parents=True, exist_ok=True)
    for leftover in paths.work.rglob(".*.partial"):  # a killed run's unfinished writes
        leftover.unlink(missing_ok=True)
    write_text_atomic(
        json.dumps({"identity": identity, "config": to_dict(config)}, indent=2, sort_keys=True) + "\n", state
    )


def _refuse_differences(old: dict[str, Any], new: dict[str, Any], what: str, remedy: str) -> None:
    """Refuse settings that must match and do not: a `RunError` saying `what`, each setting that differs, `remedy`."""
    if old != new:
        raise RunError(f"{what} ({', '.join(sorted(_differences(old, new)))}); {remedy}")


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            yield f"{prefix}{key}: {a!r} -> {b!r}"


def _persist(paths: RunPaths, result: VideoResult) -> None:
    """One atomic part per finished video: the unit of resumption."""
    video_id = result.video.video_id
    if result.error is None:
        write_atomic(utterance_table(result.rows), paths.done(video_id))
        paths.failed(video_id).unlink(missing_ok=True)
    else:
        write_atomic(error_table([result.error]), paths.failed(video_id))


def _merge(paths: RunPaths, videos: list[Video], metadata: dict[str, Any]) -> tuple[int, int, int]:
    """Concatenate the done parts in discovery order; each input path gets its video's rows.

    Returns the videos, the rows and the rows whose words the text encoder did not read (`unread_words`).
    """
    counts = {"videos": 0, "rows": 0, "unread": 0}

    def tables() -> Iterator[pa.Table]:
        for video in videos:
            part = paths.done(video.video_id)
            if part.is_file():
                table = pq.read_table(part)
                table = table.set_column(0, "video_path", pa.array([video.path] * table.num_rows, pa.string()))
                counts["videos"] += 1
                counts["rows"] += table.num_rows
                counts["unread"] += unread_words(table, metadata["text_languages"])
                yield table

    schema = with_metadata(UTTERANCES.empty_table(), metadata).schema
    write_concatenated(tables(), schema, paths.out)
    return counts["videos"], counts["rows"], counts["unread"]


def _write_errors(paths: RunPaths, videos: list[Video], missing: list[Missing], metadata: dict[str, Any]) -> int:
    rows = [
        {
            "video_path": m.path,
            "video_id": None,
            "stage": "discover",
            "error_type": m.error_type,
            "message": f"{m.path}: {m.message}",
            "traceback": "",
        }
        for m in missing
    ]
    for video in videos:
        part = paths.failed(video.video_id)
        if part.is_file() and not paths.done(video.video_id).is_file():
            rows += [{**row, "video_path": video.path} for row in pq.read_table(part).to_pylist()]
    write_atomic(with_metadata(error_table(rows), metadata), paths.errors)
    return len(rows)
