"""Label Studio, both ways: an annotation as labelling tasks, and the labels people gave as a training corpus.

`mmml-label export SCORES.parquet --out TASKS` writes what a Label Studio project imports as it is:

    TASKS/labeling_config.xml   the labelling interface: the clip's audio, its transcript, a sentiment
                                score on the -3..+3 scale the model learns, a corrected transcript,
                                a "words wrong" flag
    TASKS/tasks.json            one task per utterance: the clip's audio URL, transcript, video and
                                times; the model's three scores as three predictions in Label
                                Studio's own format (model versions `<model id>/fused`, `/text`, `/audio`)
    TASKS/wav/<video_id>/<clip_id>.wav   the clips, cut as `mmml-export` cuts them
    TASKS/export.json           the annotation's configuration and model, the export options
    TASKS/selection.json        with `--select N`: the strategy, seed and chosen utterances

Audio is served by Label Studio's local-files storage: its URL is `/data/local-files/?d=<path>` relative
to the server's `LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT` (`--document-root`, the folder above TASKS by
default); `--audio-url-prefix` serves them from anywhere else (a web server, a bucket).

`mmml-label import EXPORT.json --tasks TASKS --out CORPUS` reads the project's JSON export into the MMSA
layout `mmml-train` reads: a task's label is the mean of its labellers' scores (`annotators` and
`label_std` beside it), skipped tasks and tasks nobody scored are left out (never defaulted to the
prediction), a transcript a labeller corrected is the one written, one flagged "words wrong" with no
correction is left out (its words are not what was said), and every utterance of a video goes to one
split as `mmml-export` chooses it. An export from another project, or with a score off the scale, is
refused naming the task.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import krippendorff
import numpy as np

from mmml.atomic import write_text_atomic

from .cli import CannotStart
from .export import (
    ExportError,
    annotation_class,
    clip_path,
    cut_clips,
    label_rows,
    read_scores,
    split_fractions,
    split_of,
    write_label_file,
    write_provenance,
)
from .selection import STRATEGIES, Selection, SelectionError, key, select

SCALE = (-3.0, 3.0)
SENTIMENT, TRANSCRIPT, FLAGS, AUDIO = "sentiment", "transcript", "flags", "audio"
WORDS_WRONG = "words wrong"
LOCAL_FILES = "/data/local-files/?d="
TASK_FIELDS = ("audio", "text", "video_id", "clip_id", "video_path", "start", "end")
CORPUS_COLUMNS = (
    "video_id",
    "clip_id",
    "text",
    "label",
    "annotation",
    "mode",
    "video_path",
    "start",
    "end",
    "model_score",
    "annotators",
    "label_std",
    "asr_text",
)

LABELING_CONFIG = f"""<View>
  <Header value="Listen, then score what is said and how: -3 very negative, 0 neutral, +3 very positive"/>
  <Audio name="{AUDIO}" value="$audio" hotkey="space"/>
  <Text name="words" value="$text"/>
  <Number name="{SENTIMENT}" toName="{AUDIO}" min="{SCALE[0]:g}" max="{SCALE[1]:g}" step="0.1" required="true"/>
  <Choices name="{FLAGS}" toName="{AUDIO}" choice="multiple" showInline="true">
    <Choice value="{WORDS_WRONG}"/>
  </Choices>
  <TextArea name="{TRANSCRIPT}" toName="{AUDIO}" placeholder="The words as spoken, only where they are wrong above"
            maxSubmissions="1" editable="true" rows="2"/>
</View>
"""


class LabelStudioError(ValueError):
    """A Label Studio export that is not the labelling of an `mmml-label export`, named by its task."""


# --- export ------------------------------------------------------------------------------------------------


def predictions(utterance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The three heads' scores as Label Studio predictions of the sentiment score, one model version each."""
    out = []
    for head in ("fused", "text", "audio"):
        score = utterance[f"score_{head}"]
        if score is None:
            continue
        number = round(min(max(float(score), SCALE[0]), SCALE[1]), 1)
        result = {"from_name": SENTIMENT, "to_name": AUDIO, "type": "number", "value": {"number": number}}
        out.append({"model_version": f"{utterance['model_id']}/{head}", "score": float(score), "result": [result]})
    return out


def task(utterance: Mapping[str, Any], row: Mapping[str, Any], audio_url: str) -> dict[str, Any]:
    """One Label Studio task: what the labeller sees (`data`) and the model's pre-annotations."""
    data = {
        "audio": audio_url,
        "text": row["text"],
        "video_id": row["video_id"],
        "clip_id": row["clip_id"],
        "video_path": row["video_path"],
        "start": row["start"],
        "end": row["end"],
        "model_score": row["model_score"],
    }
    return {"data": data, "predictions": predictions(utterance)}


def audio_url(clip: Path, prefix: str | None, document_root: Path) -> str:
    """The clip's URL: under `prefix`, or Label Studio's local-files URL relative to its document root."""
    if prefix is not None:
        return prefix + quote(clip.as_posix())
    try:
        relative = clip.resolve().relative_to(document_root.resolve())
    except ValueError:
        raise ExportError(f"{clip} is not under the document root {document_root}; pass --document-root") from None
    return LOCAL_FILES + quote(relative.as_posix(), safe="/")


@dataclass(frozen=True)
class TaskExport:
    tasks: int
    failed: dict[str, str]
    tasks_file: Path


def export_tasks(
    scores_file: Path,
    out: Path,
    *,
    selection: Selection | None = None,
    ensemble: Sequence[Path] = (),
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    document_root: Path | None = None,
    audio_url_prefix: str | None = None,
    workers: int = 2,
) -> TaskExport:
    tasks_file = out / "tasks.json"
    if tasks_file.exists():
        raise ExportError(f"{tasks_file} exists (a project may already label it); choose another --out")
    scores = [u for u in read_scores(scores_file) if u["text"].strip()]
    chosen = None
    if selection is not None:
        others = [fused_scores(path) for path in ensemble]
        chosen = select(scores, selection, others)
        scores = [scores[i] for i, _ in chosen]
    rows = label_rows(scores, fractions, prefill=False)
    failed = cut_clips(rows, out, workers)
    by_key = {key(u): u for u in scores}
    root = document_root if document_root is not None else out.parent
    tasks = [
        task(by_key[(r["video_id"], int(r["clip_id"]))], r, audio_url(out / clip_path(r), audio_url_prefix, root))
        for r in rows
        if r["video_path"] not in failed
    ]
    options = {"split": list(fractions), "document_root": str(root), "audio_url_prefix": audio_url_prefix}
    write_provenance(out / "export.json", scores_file, {"label_studio": True, **options})
    if selection is not None and chosen is not None:
        record = {
            **asdict(selection),
            "ensemble": [str(p) for p in ensemble],
            "chosen": [
                {"video_id": u["video_id"], "utterance": u["utterance"], "score": s}
                for u, (_, s) in zip(scores, chosen)
            ],
        }
        write_text_atomic(json.dumps(record, indent=2) + "\n", out / "selection.json")
    write_text_atomic(LABELING_CONFIG, out / "labeling_config.xml")
    write_text_atomic(json.dumps(tasks, indent=1) + "\n", tasks_file)
    return TaskExport(len(tasks), failed, tasks_file)


def fused_scores(path: Path) -> dict[tuple[str, int], float | None]:
    """An ensemble member: each utterance's fused score in another annotation of the same corpus."""
    return {key(u): u["score_fused"] for u in read_scores(path)}


# --- import ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """One labeller's submitted annotation of one task."""

    annotator: str
    score: float
    transcript: str | None  # the words as corrected, None where left as heard
    words_wrong: bool


@dataclass(frozen=True)
class LabelledTask:
    task_id: int
    data: dict[str, Any]
    judgements: tuple[Judgement, ...]
    skipped: int  # annotations the labellers skipped (cancelled)


def read_export(path: Path) -> list[LabelledTask]:
    """Parse a Label Studio JSON export, refusing one that is not of an `mmml-label export` project."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelStudioError(f"{path}: not a Label Studio JSON export ({err})") from err
    if not isinstance(tasks, list):
        kind = type(tasks).__name__
        raise LabelStudioError(f"{path}: a Label Studio JSON export is a list of tasks, this is a {kind}")
    return [parse_task(t, n) for n, t in enumerate(tasks)]


def parse_task(raw: Any, n: int) -> LabelledTask:
    name = f"task {raw.get('id', f'#{n}') if isinstance(raw, dict) else f'#{n}'}"
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        raise LabelStudioError(f"{name}: no task data")
    missing = [f for f in TASK_FIELDS if f not in raw["data"]]
    if missing:
        raise LabelStudioError(
            f"{name}: data lacks {', '.join(missing)}: not a task of an mmml-label export (wrong project?)"
        )
    judgements, skipped = [], 0
    for annotation in raw.get("annotations") or []:
        if annotation.get("was_cancelled"):
            skipped += 1
            continue
        judgement = parse_annotation(annotation, name)
        if judgement is not None:
            judgements.append(judgement)
    return LabelledTask(int(raw.get("id", n)), raw["data"], tuple(judgements), skipped)


def parse_annotation(annotation: Mapping[str, Any], name: str) -> Judgement | None:
    """A submitted annotation; None where it gives no sentiment score (nothing to learn from)."""
    by_control = {r.get("from_name"): r.get("value", {}) for r in annotation.get("result") or []}
    who = str(annotation.get("completed_by", "?"))
    if SENTIMENT not in by_control:
        return None
    number = by_control[SENTIMENT].get("number")
    if not isinstance(number, (int, float)) or isinstance(number, bool) or not math.isfinite(number):
        raise LabelStudioError(f"{name}: annotator {who}'s sentiment {number!r} is not a number")
    if not SCALE[0] <= number <= SCALE[1]:
        raise LabelStudioError(f"{name}: annotator {who}'s sentiment {number} is outside {SCALE[0]:g}..{SCALE[1]:g}")
    typed = " ".join(by_control.get(TRANSCRIPT, {}).get("text") or []).strip()
    flags = by_control.get(FLAGS, {}).get("choices") or []
    return Judgement(who, float(number), typed or None, WORDS_WRONG in flags)


def corrected_transcript(task: LabelledTask) -> str | None:
    """The words as the labellers corrected them: the commonest correction, the latest among equals."""
    typed = [j.transcript for j in task.judgements if j.transcript and j.transcript != task.data["text"].strip()]
    if not typed:
        return None
    counts = Counter(typed)
    best = max(counts.values())
    return next(t for t in reversed(typed) if counts[t] == best)


def agreement(tasks: Iterable[LabelledTask]) -> dict[str, float | int | None]:
    """How far labellers agree where several scored one task: Krippendorff's alpha (interval), the mean
    absolute difference between two labellers' scores, and how often two labellers agree on the sign."""
    shared = [t for t in tasks if len(t.judgements) > 1]
    annotators = sorted({j.annotator for t in shared for j in t.judgements})
    if not shared:
        return {"tasks": 0, "annotators": 0, "alpha_interval": None, "mean_abs_diff": None, "sign_agreement": None}
    matrix = np.full((len(annotators), len(shared)), np.nan)
    differences, same_sign = [], []
    for column, t in enumerate(shared):
        scores = [j.score for j in t.judgements]
        for j in t.judgements:
            matrix[annotators.index(j.annotator), column] = j.score
        for a in range(len(scores)):
            for b in range(a + 1, len(scores)):
                differences.append(abs(scores[a] - scores[b]))
                same_sign.append(np.sign(scores[a]) == np.sign(scores[b]))
    alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    return {
        "tasks": len(shared),
        "annotators": len(annotators),
        "alpha_interval": None if not np.isfinite(alpha) else round(float(alpha), 4),
        "mean_abs_diff": round(float(np.mean(differences)), 4),
        "sign_agreement": round(float(np.mean(same_sign)), 4),
    }


def corpus_row(task: LabelledTask, fractions: Sequence[float]) -> dict[str, Any]:
    scores = [j.score for j in task.judgements]
    label = float(np.mean(scores))
    data = task.data
    fixed = corrected_transcript(task)
    return {
        "video_id": data["video_id"],
        "clip_id": str(data["clip_id"]),
        "text": fixed or data["text"].strip(),
        "label": f"{label:.4f}",
        "annotation": annotation_class(label),
        "mode": split_of(data["video_id"], fractions),
        "video_path": data["video_path"],
        "start": data["start"],
        "end": data["end"],
        "model_score": data.get("model_score", ""),
        "annotators": len(scores),
        "label_std": f"{float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0:.4f}",
        "asr_text": data["text"].strip() if fixed else "",
    }


@dataclass(frozen=True)
class CorpusImport:
    clips: int
    skipped: int  # tasks every labeller skipped
    unlabelled: int  # tasks nobody scored
    words_wrong: int  # tasks flagged "words wrong" with no correction, left out
    corrected: int  # tasks trained on a corrected transcript
    agreement: dict[str, float | int | None]
    label_file: Path


def import_export(
    export_file: Path, tasks_dir: Path, out: Path, *, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> CorpusImport:
    label_file = out / "label.csv"
    if label_file.exists():
        raise LabelStudioError(f"{label_file} exists; choose another --out")
    tasks = read_export(export_file)
    scored = [t for t in tasks if t.judgements]
    flagged = [t for t in scored if any(j.words_wrong for j in t.judgements) and corrected_transcript(t) is None]
    kept = [t for t in scored if t not in flagged]
    rows = [corpus_row(t, fractions) for t in kept]
    for row in rows:
        source = tasks_dir / clip_path(row)
        if not source.is_file():
            raise LabelStudioError(f"task clip {row['video_id']}/{row['clip_id']}: no audio at {source} (--tasks?)")
        target = out / clip_path(row)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    summary = CorpusImport(
        clips=len(rows),
        skipped=sum(1 for t in tasks if not t.judgements and t.skipped),
        unlabelled=sum(1 for t in tasks if not t.judgements and not t.skipped),
        words_wrong=len(flagged),
        corrected=sum(1 for r in rows if r["asr_text"]),
        agreement=agreement(kept),
        label_file=label_file,
    )
    record = {"export": str(Path(export_file).absolute()), "tasks": str(tasks_dir.absolute()), **asdict(summary)}
    record["label_file"] = str(label_file)
    write_text_atomic(json.dumps(record, indent=2) + "\n", out / "import.json")
    write_label_file(rows, label_file, CORPUS_COLUMNS)
    return summary


# --- command -----------------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Label an annotation in Label Studio and read the labels back as a training corpus."""


@main.command("export")
@click.argument("scores", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Task directory.")
@click.option("--select", "n", type=click.IntRange(min=1), help="Only the N utterances most worth labelling.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="disagreement", help="How --select chooses.")
@click.option("--seed", type=int, default=0, help="Seed of --select's tie-breaks (and of 'random').")
@click.option(
    "--ensemble",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another annotation of the same utterances (other seed): for --strategy uncertainty. Repeatable.",
)
@click.option("--split", "fractions", default="0.8,0.1,0.1", callback=split_fractions, help="train,valid,test.")
@click.option(
    "--document-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT  [default: the folder above --out]",
)
@click.option("--audio-url-prefix", help="Serve clips from PREFIX + wav/<video>/<clip>.wav instead of local files.")
@click.option("--workers", default=2, type=click.IntRange(1), help="Videos decoded at once.")
def export_command(
    scores: Path,
    out: Path,
    n: int | None,
    strategy: str,
    seed: int,
    ensemble: tuple[Path, ...],
    fractions: tuple[float, ...],
    document_root: Path | None,
    audio_url_prefix: str | None,
    workers: int,
) -> None:
    """Write SCORES (an mmml-annotate output) as Label Studio tasks, clips and labelling configuration."""
    try:
        summary = export_tasks(
            scores,
            out,
            selection=None if n is None else Selection(strategy, n, seed),
            ensemble=ensemble,
            fractions=fractions,
            document_root=document_root,
            audio_url_prefix=audio_url_prefix,
            workers=workers,
        )
    except (ExportError, SelectionError) as err:
        raise CannotStart(str(err)) from err
    for path, why in summary.failed.items():
        click.echo(f"not exported: {path}: {why}", err=True)
    click.echo(f"{summary.tasks} tasks -> {summary.tasks_file} ({len(summary.failed)} videos failed)", err=True)
    sys.exit(1 if summary.failed else 0)


@main.command("import")
@click.argument("export_file", metavar="EXPORT.json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--tasks",
    "tasks_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The mmml-label export directory (its clips are copied into the corpus).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Corpus to create.")
@click.option("--split", "fractions", default="0.8,0.1,0.1", callback=split_fractions, help="train,valid,test.")
def import_command(export_file: Path, tasks_dir: Path, out: Path, fractions: tuple[float, ...]) -> None:
    """Turn a Label Studio JSON export of an mmml-label project into a corpus mmml-train reads."""
    try:
        summary = import_export(export_file, tasks_dir, out, fractions=fractions)
    except LabelStudioError as err:
        raise CannotStart(str(err)) from err
    a = summary.agreement
    agreed = (
        f"; {a['annotators']} labellers agree on {a['tasks']} shared tasks: alpha {a['alpha_interval']}, "
        f"mean |difference| {a['mean_abs_diff']}, same sign {a['sign_agreement']}"
        if a["tasks"]
        else ""
    )
    click.echo(
        f"{summary.clips} labelled clips -> {summary.label_file} ({summary.corrected} with corrected words; left out: "
        f"{summary.skipped} skipped, {summary.unlabelled} unlabelled, {summary.words_wrong} with wrong words){agreed}",
        err=True,
    )


if __name__ == "__main__":
    main()
