"""Development sets for what the fused score must do on voices the model never heard, and how to judge them.

Each set is an ordinary corpus in the MMSA layout (`label.csv`, `wav/<video_id>/<clip_id>.*`, every clip in
the test split), so `mmml-train evaluate` reads it too; `python -m samples.devsets compare` scores every head
of several checkpoints (seeds) on one and prints mean ± std, as `training/RESULTS.md` shows them.

- `spoken`: CMU-MOSEI **valid** sentences (the test split is withheld) read aloud by several espeak-ng
  voices. The words carry the label and every head is judged against it: the voice carries nothing, so the
  fused score should follow the words at least as well as the text head does.
- `mismatched`: the same transcripts, each heard as another sentence of the set in the same voice. Composed
  training rows pair a voice with words it did not say; this measures whether the model cares.
- `conflict`: the RAVDESS test actors' emotional clips (actors 8 and 16, never trained on), each given a
  MOSEI valid transcript of the opposite sign: `label` and `label_T` are the words', `label_A` the voice's.
- `noise10db`, `telephone`, `mp3-32k`: the RAVDESS test actors heard through recording conditions made by
  ffmpeg (not by the augmentation library the model trains with): white noise at 10 dB SNR, a G.711
  telephone line (300-3400 Hz, 8 kHz mu-law) and MP3 at 32 kbit/s.

Synthetic voices appear here only, never in the default model's training data. Checkout-only, like the rest
of `samples`: the sets are made with espeak-ng, which the installed tool does not need, from the default
model's corpora (`--data-dir`, as for `mmml-train default`).
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from mmml.config import SAMPLE_RATE
from mmml.metrics import mosi_metrics
from pipelines.demux import decode_audio
from training import report
from training.dataset import Clip, Labelled, MediaIndex, read_corpus
from training.default_model import DATA_DIR_ENV, data_folder
from training.trainer import Runtime, head_metrics, resolve_device, score_split, targets, usable

from .media import speak

# (espeak-ng voice, words per minute): accents, a female variant and speaking rates apart.
SPOKEN_VOICES: tuple[tuple[str, int], ...] = (("en-us", 150), ("en-gb-scotland", 165), ("en-us+f3", 140))
TEST_ACTORS: tuple[str, ...] = ("actor_08", "actor_16")
COLUMNS = ("video_id", "clip_id", "text", "label", "label_T", "label_A", "mode")


@dataclass(frozen=True)
class Row(Labelled):
    """One clip of a development set: its transcript, each modality's label and the audio file it is heard as."""

    media: Path


def write_corpus(out: Path, rows: Sequence[Row], place: Callable[[Path, Path], None] = shutil.copyfile) -> Path:
    """A corpus directory: `place(source, destination)` puts each clip's audio in `wav/`, then label.csv."""
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = out / "wav" / row.video_id / f"{row.clip_id}{row.media.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            place(row.media, target)
    with (out / "label.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([r.video_id, r.clip_id, r.text, r.label, r.label_text, r.label_audio, "test"])
    return out


def readable_sentences(clips: Sequence[Clip], max_words: int = 40) -> list[Clip]:
    """Sentences a voice can read in one clip: 3 to `max_words` words (MOSEI transcripts run long)."""
    return [c for c in clips if 3 <= len(c.text.split()) <= max_words]


def spoken_rows(sentences: Sequence[Clip], work: Path, voices: Sequence[tuple[str, int]] = SPOKEN_VOICES) -> list[Row]:
    """Every sentence in every voice, as FLAC; the voice is the video, so a voice's clips share a `video_id`."""
    rows = []
    for voice, rate in voices:
        video = voice.replace("+", "_")
        for i, clip in enumerate(sentences):
            wav = speak(clip.text, work / video / f"s{i:04d}.wav", voice=voice, words_per_minute=rate)
            flac = encode_audio(wav, wav.with_suffix(".flac"), [])
            wav.unlink()
            rows.append(Row(video, f"s{i:04d}", clip.text, clip.label, clip.label, clip.label, flac))
    return rows


def mismatched_rows(rows: Sequence[Row], seed: int = 0) -> list[Row]:
    """Each transcript heard as another sentence of the same voice (a derangement: no clip keeps its audio)."""
    out = []
    by_voice: dict[str, list[Row]] = {}
    for row in rows:
        by_voice.setdefault(row.video_id, []).append(row)
    for voice_rows in by_voice.values():
        order = list(range(len(voice_rows)))
        random.Random(seed).shuffle(order)
        heard = {order[i]: voice_rows[order[(i + 1) % len(order)]] for i in range(len(order))}
        out += [
            Row(r.video_id, r.clip_id, r.text, r.label, r.label_text, r.label_audio, heard[i].media)
            for i, r in enumerate(voice_rows)
        ]
    return out


def conflict_rows(voices: Sequence[tuple[Clip, Path]], sentences: Sequence[Clip], seed: int = 0) -> list[Row]:
    """Each emotional voice (label ≠ 0) given a transcript of the opposite sign with |label| ≥ 1, drawn without
    repeats while they last; voice-neutral clips are left out (they conflict with nothing)."""
    rng = random.Random(seed)
    pools = {sign: [s for s in sentences if np.sign(s.label) == sign and abs(s.label) >= 1] for sign in (-1, 1)}
    for pool in pools.values():
        rng.shuffle(pool)
    rows = []
    for n, (voice, media) in enumerate(v for v in voices if v[0].label_audio != 0):
        pool = pools[-int(np.sign(voice.label_audio))]
        words = pool[n % len(pool)]
        rows.append(Row(voice.video_id, voice.clip_id, words.text, words.label, words.label, voice.label_audio, media))
    return rows


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise at `snr_db` below the clip's own mean power."""
    power = float(np.mean(audio.astype(np.float64) ** 2))
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), audio.shape)
    return (audio + noise).astype(np.float32)


def degraded_rows(voices: Sequence[tuple[Clip, Path]], condition: str, work: Path, seed: int = 0) -> list[Row]:
    """The voices heard through one recording condition (see the module docstring)."""
    rng = np.random.default_rng(seed)
    rows = []
    for clip, media in voices:
        target = work / condition / clip.video_id / clip.clip_id
        target.parent.mkdir(parents=True, exist_ok=True)
        if condition == "noise10db":
            noisy = add_noise(decode_audio(media), 10.0, rng)
            made = encode_audio(None, target.with_suffix(".flac"), [], pcm=noisy)
        elif condition == "telephone":
            band = ["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_mulaw"]
            made = encode_audio(media, target.with_suffix(".wav"), band)
        elif condition == "mp3-32k":
            made = encode_audio(media, target.with_suffix(".mp3"), ["-c:a", "libmp3lame", "-b:a", "32k"])
        else:
            raise ValueError(f"unknown recording condition {condition!r} (use {', '.join(CONDITIONS)})")
        rows.append(Row(clip.video_id, clip.clip_id, clip.text, clip.label, clip.label, clip.label, made))
    return rows


CONDITIONS: tuple[str, ...] = ("noise10db", "telephone", "mp3-32k")


def encode_audio(source: Path | None, target: Path, options: list[str], pcm: np.ndarray | None = None) -> Path:
    """Encode a file (or float32 mono samples at 16 kHz) with ffmpeg; argument lists only, local files only."""
    if source is None:
        inputs = ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0"]
    else:
        inputs = ["-i", str(source)]
    command = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *inputs, "-ac", "1", *options, str(target)]
    data = None if pcm is None else np.ascontiguousarray(pcm, dtype="<f4").tobytes()
    if pcm is not None:
        command.remove("-nostdin")
    subprocess.run(command, input=data, check=True, capture_output=True)
    return target


def test_voices(ravdess: Path) -> list[tuple[Clip, Path]]:
    """The RAVDESS test actors' clips with their audio files."""
    corpus = read_corpus(ravdess)
    index = MediaIndex(corpus.root)
    voices = [(c, index.find(c)) for c in corpus.split("test") if c.video_id in TEST_ACTORS]
    missing = [c.key for c, media in voices if media is None]
    if missing or not voices:
        raise FileNotFoundError(f"{ravdess}: no audio for the test actors' clips {missing[:5] or TEST_ACTORS}")
    return voices  # type: ignore[return-value]


def build(out: Path, data_dir: Path | None = None, sentences: int = 200, seed: int = 0) -> dict[str, Path]:
    """Every development set under `out` (one corpus per set); sets already built are kept."""
    data_dir = data_folder(data_dir)
    mosei = read_corpus(data_dir / "mosei_label_trainvalid.csv").split("valid")
    readable = readable_sentences(mosei)
    chosen = random.Random(seed).sample(readable, min(sentences, len(readable)))
    voices = test_voices(data_dir / "ravdess")
    built = {}
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as scratch:
        work = Path(scratch)
        if not (out / "spoken" / "label.csv").exists():
            write_corpus(out / "spoken", spoken_rows(chosen, work / "spoken"))
        built["spoken"] = out / "spoken"
        built["mismatched"] = write_corpus(out / "mismatched", mismatched_rows(corpus_rows(out / "spoken"), seed))
        built["conflict"] = write_corpus(out / "conflict", conflict_rows(voices, mosei, seed))
        for condition in CONDITIONS:
            if not (out / condition / "label.csv").exists():
                write_corpus(out / condition, degraded_rows(voices, condition, work, seed))
            built[condition] = out / condition
    return built


def corpus_rows(root: Path) -> list[Row]:
    """A written development set read back: each clip with the audio file it is heard as."""
    corpus = read_corpus(root)
    index = MediaIndex(corpus.root)
    return [
        Row(c.video_id, c.clip_id, c.text, c.label, c.label_text, c.label_audio, index.find(c))  # type: ignore[arg-type]
        for c in corpus.clips
    ]


def run_checkpoints(paths: Sequence[Path]) -> list[Path]:
    """Checkpoints named directly or found as `<run>/seed-*/best` in run directories."""
    found = []
    for path in paths:
        seeds = sorted(path.glob("seed-*/best"))
        found += seeds or [path]
    return found


def compare(
    checkpoints: Sequence[Path],
    data: str,
    split: str = "test",
    *,
    audio_cache: str | None = None,
    runtime: Runtime,
) -> dict[str, report.Summary]:
    """Every head of every checkpoint on one split, mean ± std over checkpoints (seeds).

    The text head is scored without the audio, as annotation scores it (paper Table 5). Where a corpus's
    voice and words carry different labels (`conflict`), the fused score is also judged against the voice.
    """
    runs: dict[str, list[dict[str, float]]] = {}
    for checkpoint in checkpoints:
        scored = score_split(checkpoint, data, split, audio_cache=audio_cache, runtime=runtime)
        per_head = head_metrics(scored.scores, scored.examples, "mosi", scored.variant)
        for head, metrics in per_head.items():
            runs.setdefault(f"{head} head", []).append(metrics)
        fused, voice = scored.scores["fused"], targets(scored.examples, "audio", scored.variant)
        words = targets(scored.examples, "fused", scored.variant)
        rows = usable(fused, voice)
        if rows.any() and not np.allclose(voice, words, equal_nan=True):
            runs.setdefault("fused head vs the voice's label", []).append(mosi_metrics(fused[rows], voice[rows]))
    return {name: report.aggregate(values) for name, values in runs.items()}


@click.group("devsets")
def devsets_cli() -> None:
    """Development sets for the fused score on unseen voices (training/RESULTS.md)."""


@devsets_cli.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The default model's data folder (mosei_label_trainvalid.csv, ravdess/).",
    show_default=f"${DATA_DIR_ENV}, else ../shared/data",
)
@click.option("--sentences", type=click.IntRange(min=2), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def build_command(out: Path, data_dir: Path | None, sentences: int, seed: int) -> None:
    """Build every development set under OUT (spoken, mismatched, conflict, degraded RAVDESS test actors)."""
    for name, path in build(out, data_dir, sentences, seed).items():
        click.echo(f"{name}: {path} ({len(read_corpus(path).clips)} clips)")


@devsets_cli.command("compare")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, help="Corpus directory or label.csv.")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--audio-cache", type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
def compare_command(checkpoints: tuple[Path, ...], data: str, split: str, audio_cache: str | None, device: str) -> None:
    """Every head of CHECKPOINTS (checkpoints or run directories: their seeds) on one split, mean ± std."""
    found = run_checkpoints(checkpoints)
    rows = compare(found, data, split, audio_cache=audio_cache, runtime=Runtime(resolve_device(device), False))
    caption = f"{data}, {split} split, {len(found)} checkpoint(s): {', '.join(map(str, found))}"
    click.echo(report.markdown_table(rows, "mosi", caption=caption))


if __name__ == "__main__":
    devsets_cli()
