"""From validated clips to model batches: find the media, decode it once, measure lengths.

Media problems are gathered for the whole corpus before training starts, so
a user learns about every missing or broken file at once rather than one
crash per epoch. With `skip_bad_media` those clips are dropped instead and
counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmml.config import ModelConfig
from mmml.losses import HEADS
from mmml.preprocessing import Preprocessor

from .audio_cache import AudioCache, entry_length, load_entry
from .dataset import Clip, Corpus, CorpusError, MediaIndex, has_media, media_pattern, problem_listing

SINGLE_MODALITY = {"text-only": "text", "audio-only": "audio"}


@dataclass(frozen=True)
class Example:
    clip: Clip
    audio: Path | None  # decoded-audio cache entry; None: not decoded, the model sees audio as missing
    labels: tuple[str, ...] = ("text", "audio")  # the modalities its corpus's label describes
    voice: Clip | None = None  # a composed row: `audio` is this (neutral) clip's voice, not `clip`'s
    words: bool = True  # False: the row is trained with its words missing
    speaker: int | None = None  # a composed row whose voice is heard as another speaker's (`augment.another_speaker`)

    @property
    def text(self) -> str | None:
        """The words the model reads; None where they are left out."""
        return self.clip.text if self.words else None

    def targets(self, variant: str = "fused") -> dict[str, float]:
        """Each head's regression target; NaN where the row teaches that head nothing (`CorpusConfig`).

        A single-modality model's one score is its modality's head, so it
        learns from that modality's label (`label_T`/`label_A` where given).
        A composed row's audio head learns the lent voice's own label, its
        other heads the transcript's (`training.composition`); a row without
        its words teaches the text head nothing.
        """
        targets = {
            head: value if head == "fused" or head in self.labels else math.nan
            for head, value in self.clip.targets().items()
        }
        if self.voice is not None:
            targets["audio"] = self.voice.label_audio
        if not self.words:
            targets["text"] = math.nan
        single = SINGLE_MODALITY.get(variant)
        return {**targets, "fused": targets[single]} if single else targets


@dataclass
class Examples:
    """The usable clips of each requested split, and what was skipped and why."""

    splits: dict[str, list[Example]]
    skipped: list[str] = field(default_factory=list)


def prepare_examples(
    corpus: Corpus,
    splits: Sequence[str],
    config: ModelConfig,
    *,
    cache: AudioCache | None = None,
    skip_bad_media: bool = False,
    progress: bool = True,
    labels: tuple[str, ...] = ("text", "audio"),
    may_be_empty: Sequence[str] = (),
    with_audio: bool | None = None,
) -> Examples:
    """Examples for `splits`; audio is decoded into the cache when the model uses it and the corpus has media.

    A split named in `may_be_empty` may have no clips (CMU-MOSEI's public
    train/valid file has no test split); any other empty split is an error.
    `with_audio=False` leaves the audio out even for a model that reads it
    (judging its text head alone).
    """
    clips = {name: corpus.split(name) for name in splits}
    for name, members in clips.items():
        if not members and name not in may_be_empty:
            raise CorpusError(f"{corpus.label_file}: split {name!r} has no clips")
    if not (config.uses_audio if with_audio is None else with_audio) or not has_media(corpus.root):
        return Examples({name: [Example(c, None, labels) for c in members] for name, members in clips.items()})

    cache = cache or AudioCache(sample_rate=config.audio.sampling_rate)
    wanted = [clip for members in clips.values() for clip in members]
    entries, problems = _decode(corpus.root, wanted, cache, progress)
    if problems and not skip_bad_media:
        raise CorpusError(
            problem_listing(
                f"{len(problems)} clip(s) have missing or undecodable media "
                "(fix them, or pass --skip-bad-media to leave them out)",
                problems,
            )
        )
    usable = {
        name: [Example(c, entries[c.key], labels) for c in members if c.key in entries]
        for name, members in clips.items()
    }
    emptied = [name for name, members in usable.items() if not members and clips[name]]
    if emptied:
        raise CorpusError(problem_listing(f"no clip of split(s) {', '.join(emptied)} has usable media", problems))
    return Examples(usable, skipped=problems)


def _decode(root: Path, clips: list[Clip], cache: AudioCache, progress: bool) -> tuple[dict[str, Path], list[str]]:
    problems: list[str] = []
    located: list[tuple[Clip, Path]] = []
    index = MediaIndex(root)
    for clip in clips:
        media = index.find(clip)
        if media is None:
            problems.append(f"clip {clip.key} (line {clip.line}): no media file (looked for {media_pattern(clip)})")
        else:
            located.append((clip, media))
    with tqdm(total=len(located), desc="decoding audio", unit="clip", disable=not progress) as bar:
        results = cache.ensure_all([media for _, media in located], progress=lambda: bar.update(1))
    entries: dict[str, Path] = {}
    for (clip, media), result in zip(located, results):
        if isinstance(result, Exception):
            reason = " ".join(str(result).split())  # ffmpeg's multi-line stderr on one line per clip
            problems.append(f"clip {clip.key} (line {clip.line}): cannot decode {media}: {reason}")
        else:
            entries[clip.key] = result
    return entries, problems


def sort_lengths(examples: Sequence[Example], preprocessor: Preprocessor) -> list[float]:
    """Each example's padded cost as a fraction of its canvas: what length-aware batching sorts by.

    Text pads to the longest transcript in the batch; audio does too unless
    the model puts every clip on a fixed `max_seconds` canvas. Rows without
    audio sort after every row with it, so transcript-only batches skip the
    audio encoder altogether.
    """
    config = preprocessor.config
    lengths = [0.0] * len(examples)
    if config.uses_text:
        ids = preprocessor.tokenizer(
            [preprocessor.prepared_text(e.clip.text) for e in examples],
            truncation=True,
            max_length=config.text.max_tokens,
        )["input_ids"]
        lengths = [n + len(tokens) / config.text.max_tokens for n, tokens in zip(lengths, ids)]
    if config.uses_audio and not preprocessor.fixed_canvas:
        limit = preprocessor.max_samples
        lengths = [
            n + (min(entry_length(e.audio), limit) / limit if e.audio else 0.0) for n, e in zip(lengths, examples)
        ]
    if config.uses_audio:
        lengths = [n + (0.0 if e.audio else 2.0) for n, e in zip(lengths, examples)]
    return lengths


Augment = Callable[[np.ndarray, int], np.ndarray]  # (clip, its row in the batch) -> the clip as heard


def _heard(example: Example, max_samples: int | None) -> np.ndarray:
    audio = load_entry(example.audio, max_samples)
    if example.speaker is None:
        return audio
    from .augment import another_speaker  # audiomentations: imported only by runs that change voices

    return another_speaker(audio, example.speaker)[:max_samples]


def collate(
    examples: Sequence[Example], preprocessor: Preprocessor, device: torch.device, augment: Augment | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(model inputs, per-head targets) for a batch, on `device`; `augment` degrades training audio."""
    config = preprocessor.config
    texts = [e.text for e in examples] if config.uses_text else None
    audios = None
    if config.uses_audio:
        audios = [_heard(e, preprocessor.max_samples) if e.audio else None for e in examples]
        if augment is not None:
            audios = [augment(a, row) if a is not None else None for row, a in enumerate(audios)]
    inputs = {k: v.to(device) for k, v in preprocessor(texts, audios).items()}
    per_example = [e.targets(config.fusion.variant) for e in examples]
    targets = {head: torch.tensor([t[head] for t in per_example], dtype=torch.float32, device=device) for head in HEADS}
    return inputs, targets
