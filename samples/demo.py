"""The end-to-end demo behind `make demo`: the default model, then sample videos annotated with it.

Everything is made or found on this machine, with no network:

1. the default MMML model, unless one is already installed (or `MMML_MODEL`
   names one): `mmml-train default` trains it on real data (MOSI and MOSEI
   transcripts, RAVDESS speech; see `training.default_model`) and installs
   it in the cache, so `mmml-annotate ./videos --out scores.parquet` works
   as written afterwards;
2. sample videos: English sentences spoken by espeak-ng, muxed under a test
   pattern by ffmpeg (one with a shell-hostile, non-ASCII name);
3. `mmml-annotate` over them with the packaged Whisper tiny.en and no
   `--model`, then a summary of the Parquet output;
4. `mmml-report` of that output: `<workdir>/report.html`.

Running the demo again reuses the model and resumes the annotation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np

from annotate.run import RunPaths
from mmml.integrity import checkpoint_id
from mmml.packaged import default_model

from .media import require_tools, spoken_video

# Each sentence with the sign of what its words say: the fused score should have it (the voice says nothing).
SAMPLE_VIDEOS: dict[str, list[tuple[str, int]]] = {
    "review_positive.mp4": [
        ("I absolutely loved this film.", +1),
        ("The acting was wonderful and the music was beautiful.", +1),
        ("I would happily watch it again with my friends.", +1),
    ],
    "review_negative.mp4": [
        ("This movie was a complete waste of time.", -1),
        ("The plot made no sense and the dialogue was terrible.", -1),
        ("I really hated the ending.", -1),
    ],
    "café review (final) $1 & 'mixed'.mp4": [
        ("The first half was boring and slow.", -1),
        ("But the last scene was really great.", +1),
    ],
}


def make_sample_videos(directory: Path) -> Path:
    for name, sentences in SAMPLE_VIDEOS.items():
        if not (directory / name).exists():
            spoken_video([sentence for sentence, _ in sentences], directory / name)
    return directory


def ensure_default_model(workdir: Path) -> None:
    """Train and install the default model unless one is there (resumable: same run directory)."""
    if default_model() is None:
        _run(["-m", "training", "default", "--out", str(workdir / "default-model"), "--quiet"])
    click.echo(f"default model: {default_model()}", err=True)


def annotate(videos: Path, out: Path) -> int:
    """The headline command, with no --model: the default model scores.

    Scores made with another model (an older default) are started over
    rather than refused; the same model resumes.
    """
    command = ["-m", "annotate", str(videos), "--out", str(out), "--asr-model", "packaged:whisper-tiny.en"]
    if _scored_with_another_model(out):
        click.echo(f"{out}: made with another model; annotating again with the default", err=True)
        command.append("--overwrite")
    return _run(command, check=False)


def _scored_with_another_model(out: Path) -> bool:
    state = RunPaths(out).work / "run.json"
    if not state.is_file():
        return False
    return json.loads(state.read_text())["identity"]["model_id"] != checkpoint_id(default_model())


def print_summary(out: Path) -> None:
    """Each utterance's scores, marked by whether its fused score has the sign of its sentence's words."""
    import pyarrow.parquet as pq

    table = pq.read_table(out).to_pandas()
    click.echo(f"\n{out}: {len(table)} utterances from {table['video_path'].nunique()} videos")
    click.echo(f"columns: {', '.join(table.columns)}")
    agreeing = judged = 0
    for path, rows in table.groupby("video_path"):
        signs = [sign for _, sign in SAMPLE_VIDEOS.get(Path(path).name, [])]
        if len(signs) != len(rows):  # ASR cut the video otherwise than into its sentences: nothing to compare
            signs = [0] * len(rows)
        click.echo(f"\n{Path(path).name}  (mean fused score {rows['score_fused'].mean():+.2f})")
        for row, sign in zip(rows.sort_values("utterance").itertuples(), signs):
            mark = " " if not sign else "+" if np.sign(row.score_fused) == sign else "x"
            agreeing, judged = agreeing + (mark == "+"), judged + bool(sign)
            click.echo(
                f" {mark}[{row.start:5.1f}-{row.end:5.1f}s] fused {row.score_fused:+.2f}  text {row.score_text:+.2f}  "
                f"audio {row.score_audio:+.2f}  {row.text!r}"
            )
    click.echo(f"\nfused score with the sign of the words: {agreeing} of {judged} sample sentences (+ yes, x no)")


def _run(args: list[str], check: bool = True) -> int:
    click.echo(f"$ {' '.join(['python', *args])}", err=True)
    return subprocess.run([sys.executable, *args], check=check).returncode


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True)
def main(workdir: Path) -> None:
    """Build the default MMML model if needed and annotate sample videos with it."""
    require_tools()
    ensure_default_model(workdir)
    videos = make_sample_videos(workdir / "videos")
    status = annotate(videos, workdir / "scores.parquet")
    print_summary(workdir / "scores.parquet")
    _run(["-m", "annotate.report", str(workdir / "scores.parquet"), "--out", str(workdir / "report.html")])
    click.echo(f"open {workdir / 'report.html'} in a browser to see the annotation", err=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
