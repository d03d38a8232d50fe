"""`mmml-export SCORES.parquet --out CORPUS`: an annotation, as a corpus to label and train on.

This closes the loop the product exists for: annotate, let people fix the
labels, `mmml-train fit --data CORPUS`, then re-annotate with the retrained
model (`mmml-annotate --transcripts SCORES.parquet`, no ASR again). The corpus
is in the MMSA raw layout that `mmml-train` reads:

    CORPUS/label.csv                      video_id, clip_id, text, label, annotation, mode,
                                          + video_path, start, end, model_score (provenance)
    CORPUS/wav/<video_id>/<clip_id>.wav   16 kHz mono 16-bit PCM of each utterance
    CORPUS/export.json                    the annotation's configuration and model id, the export options

* `label` starts as the model's fused score rounded to 0.1 (`--no-prefill`
  leaves it empty, and `mmml-train` then refuses every row nobody labelled,
  naming its line); `model_score` keeps the unrounded score, so what people
  changed stays visible.
* Every utterance of a video goes to the same split, chosen from a hash of
  its `video_id` with the `--split` fractions: no speaker or scene leaks
  from train into test, and the choice is the same on every export.
* Utterances without words are left out (MMML trains on transcribed clips).
* Each video is decoded once with the pipeline's own ffmpeg decoder and cut
  into clips in memory. A video that cannot be decoded any more (moved,
  deleted) loses its rows, is named, and makes the exit status 1; the
  others are exported. `label.csv` is written last and atomically, and an
  existing one is never overwritten: it may hold people's work.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow.parquet as pq

from mmml.atomic import replacing_file, write_text_atomic
from pipelines.demux import decode_audio
from pipelines.options import SAMPLE_RATE
from pipelines.segment import utterance_audio
from pipelines.write import UTTERANCES, read_metadata
from training.dataset import SPLITS

from .cli import CannotStart
from .config import TOOL, tool_version


class ExportError(ValueError):
    """An export that cannot start: unreadable scores, or an --out that already holds people's labels."""


COLUMNS = ("video_id", "clip_id", "text", "label", "annotation", "mode", "video_path", "start", "end", "model_score")


@dataclass(frozen=True)
class ExportSummary:
    clips: int
    videos: int
    wordless: int  # utterances left out for having no words
    failed: dict[str, str]  # video_path -> why its clips are missing
    label_file: Path


def split_position(video_id: str) -> float:
    """Where a video lies in [0, 1): a stable function of its id, uniform over videos."""
    return int(hashlib.sha256(video_id.encode()).hexdigest()[:8], 16) / 16**8


def split_of(video_id: str, fractions: Sequence[float]) -> str:
    """The split a video belongs to: the fraction its `split_position` falls in."""
    position = split_position(video_id)
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions):
        edge += fraction
        if position < edge:
            return name
    return SPLITS[len(fractions) - 1]


def annotation_class(score: float) -> str:
    return "Positive" if score > 0 else "Negative" if score < 0 else "Neutral"


def label_rows(scores: list[dict[str, Any]], fractions: Sequence[float], prefill: bool) -> list[dict[str, Any]]:
    """label.csv rows for the utterances that have words, one clip per (video, utterance)."""
    rows, seen = [], set()
    for u in scores:
        key = (u["video_id"], u["utterance"])
        if not u["text"].strip() or key in seen:  # wordless, or a byte-identical copy already exported
            continue
        seen.add(key)
        score = u["score_fused"]
        prefilled = round(score, 1) if prefill and score is not None else None
        rows.append(
            {
                "video_id": u["video_id"],
                "clip_id": str(u["utterance"]),
                "text": u["text"].strip(),
                "label": "" if prefilled is None else f"{prefilled:.1f}",
                "annotation": "" if prefilled is None else annotation_class(prefilled),
                "mode": split_of(u["video_id"], fractions),
                "video_path": u["video_path"],
                "start": u["start"],
                "end": u["end"],
                "model_score": "" if score is None else f"{score:.4f}",
            }
        )
    return rows


def read_scores(scores_file: Path) -> list[dict[str, Any]]:
    """Every utterance row of an annotation; `ExportError` naming the file if it is not one."""
    try:
        table = pq.read_table(scores_file, columns=[f.name for f in UTTERANCES])
    except (OSError, ValueError, KeyError) as err:
        raise ExportError(f"{scores_file}: not an mmml-annotate output ({err})") from err
    return table.to_pylist()


def export(
    scores_file: Path,
    out: Path,
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    audio: bool = True,
    prefill: bool = True,
    workers: int = 2,
) -> ExportSummary:
    label_file = out / "label.csv"
    if label_file.exists():
        raise ExportError(f"{label_file} exists and may hold people's labels; choose another --out")
    scores = read_scores(scores_file)
    rows = label_rows(scores, fractions, prefill)
    failed = cut_clips(rows, out, workers) if audio else {}
    rows = [row for row in rows if row["video_path"] not in failed]
    write_provenance(out / "export.json", scores_file, {"split": list(fractions), "audio": audio, "prefill": prefill})
    write_label_file(rows, label_file)
    return ExportSummary(
        clips=len(rows),
        videos=len({r["video_id"] for r in rows}),
        wordless=sum(1 for u in scores if not u["text"].strip()),
        failed=failed,
        label_file=label_file,
    )


def cut_clips(rows: Sequence[dict[str, Any]], out: Path, workers: int = 2) -> dict[str, str]:
    """`out/wav/<video_id>/<clip_id>.wav` for every row; {video_path: why} for the videos that failed."""
    by_video: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_video.setdefault(row["video_path"], []).append(row)
    failed = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:  # ffmpeg runs outside the GIL
        for path, error in zip(by_video, pool.map(lambda p: _write_clips(p, by_video[p], out), by_video)):
            if error:
                failed[path] = error
    return failed


def clip_path(row: dict[str, Any]) -> Path:
    """Where a row's clip lies inside the corpus (or export) directory."""
    return Path("wav") / row["video_id"] / f"{row['clip_id']}.wav"


def _write_clips(video_path: str, rows: list[dict[str, Any]], out: Path) -> str | None:
    """Decode the video once and write each of its clips; the reason it failed, or None."""
    try:
        waveform = decode_audio(video_path)
    except Exception as err:  # one lost video must not stop the export
        return str(err)
    for row in rows:
        clip = out / clip_path(row)
        clip.parent.mkdir(parents=True, exist_ok=True)
        _write_wav(utterance_audio(waveform, row["start"], row["end"]), clip)
    return None


def _write_wav(samples: np.ndarray, path: Path) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with replacing_file(path) as file, wave.open(file, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())


def write_provenance(target: Path, scores_file: Path, options: dict[str, Any]) -> None:
    """Where an export came from (the annotation's own configuration and model) and how it was made."""
    try:
        source = read_metadata(scores_file)
    except (KeyError, TypeError, ValueError):  # a hand-made scores file without our metadata
        source = None
    record = {
        "tool": TOOL,
        "version": tool_version(),
        "scores": str(scores_file.absolute()),
        "options": options,
        "annotation": source,
    }
    write_text_atomic(json.dumps(record, indent=2, sort_keys=True) + "\n", target)


def write_label_file(rows: list[dict[str, Any]], label_file: Path, columns: Sequence[str] = COLUMNS) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(text.getvalue(), label_file)


def split_fractions(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        fractions = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected up to three numbers, e.g. 0.8,0.1,0.1") from None
    if not 1 <= len(fractions) <= 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise click.BadParameter(f"{value!r}: up to three non-negative fractions (train,valid,test) summing to 1")
    return fractions


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("scores", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Corpus directory to create (MMSA layout: label.csv + wav/).",
)
@click.option(
    "--split",
    "fractions",
    default="0.8,0.1,0.1",
    callback=split_fractions,
    help="Fractions of videos for train,valid,test.",
)
@click.option(
    "--audio/--no-audio",
    default=True,
    help="Cut a WAV per clip (--no-audio: label.csv only, enough for text-only training).",
)
@click.option("--prefill/--no-prefill", default=True, help="Start each label at the model's fused score.")
@click.option("--workers", default=2, type=click.IntRange(1), help="Videos decoded at once.")
def main(scores: Path, out: Path, fractions: tuple[float, ...], audio: bool, prefill: bool, workers: int) -> None:
    """Export an mmml-annotate output as a labelling and training corpus (MMSA layout).

    Exit status: 0 every transcribed utterance exported; 1 some videos could not be decoded (named on stderr,
    their clips left out); 2 nothing was exported (unreadable SCORES, or --out already holds a label.csv).
    """
    try:
        summary = export(scores, out, fractions=fractions, audio=audio, prefill=prefill, workers=workers)
    except ExportError as err:
        raise CannotStart(str(err)) from err
    for path, why in summary.failed.items():
        click.echo(f"not exported: {path}: {why}", err=True)
    click.echo(
        f"{summary.clips} clips from {summary.videos} videos -> {summary.label_file} "
        f"({summary.wordless} utterances without words left out, {len(summary.failed)} videos failed)",
        err=True,
    )
    sys.exit(1 if summary.failed else 0)


if __name__ == "__main__":
    main()
