"""One dataclass tree says how a training run was made; it is saved with every result.

`TrainConfig` nests the model library's `ModelConfig` and adds what the paper's
appendix A.1 fixes (AdamW, lr, batch size, MSE loss, patience 8, three seeds)
plus what the authors' code changed (L1 loss, smaller lr and batch). It is
written as `train_config.json` in every run directory and into the metadata
of every checkpoint, so a number in a results table always points back to
the exact settings behind it.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmml.config import LossKind, ModelConfig, from_dict, save_json, to_dict

Dataset = Literal["mosi", "mosei", "sims", "custom"]
DATASETS: tuple[str, ...] = typing.get_args(Dataset)
DEFAULT_SEEDS: tuple[int, ...] = (1111, 1112, 1113)  # MMSA's customary three seeds


Modality = Literal["text", "audio"]


@dataclass
class CorpusConfig:
    """One labelled corpus of a run, and what its labels say.

    The head rule (paper 3.3 across corpora): a row trains the fused head
    always, and the text or audio head only if that modality is present in the
    row *and* listed in `labels`, i.e. the corpus's label describes it.
    RAVDESS says the same neutral sentence in eight emotions, so its label is
    about the voice (`labels=("audio",)`): its rows teach the audio head and
    the fused head, never the text head. A transcript-only corpus (a label.csv
    with no `Raw/` or `wav/` beside it) has no audio, so it never reaches the
    audio head.
    """

    path: str = ""  # corpus directory holding label.csv, or the label.csv itself
    dataset: Dataset = "custom"  # picks the metric set (mosi/mosei/custom: [-3, 3]; sims: [-1, 1])
    labels: tuple[Modality, ...] = ("text", "audio")
    per_epoch: int | None = None  # train on a fresh draw of this many of its training clips each epoch (None: all)
    # Its neutral training clips (label 0) also lend their voice to other corpora's transcripts (`Composition`).
    lends_voices: bool = False

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        unknown = [m for m in self.labels if m not in ("text", "audio")]
        if unknown or not self.labels:
            raise ValueError(f"corpus {self.path}: labels must name text and/or audio, got {self.labels}")
        if self.per_epoch is not None and self.per_epoch < 1:
            raise ValueError(f"corpus {self.path}: per_epoch must be at least 1, got {self.per_epoch}")


@dataclass
class Composition:
    """Training rows composed from real parts, so the fused head learns what each modality carries.

    Without them every row with audio has words that say nothing (RAVDESS)
    and every row whose words carry the label has no audio (MOSI/MOSEI
    transcripts): the fused head learns "audio present: follow the voice",
    and annotation always has audio. `training.composition` writes the rule.
    """

    # Share of transcript-only training rows heard in a neutral voice lent by a `lends_voices` corpus.
    voiced: float = 0.0
    # Share of voice-labelled training rows (labels=audio) trained with their words missing: the audio-only path.
    wordless: float = 0.0
    # Share of voiced rows whose lent voice is heard as another speaker's (pitch and speaking rate moved).
    other_speakers: float = 0.0
    # Share of voiced rows lent any of the lender's voices, emotional ones included: the words keep the fused target.
    emotional: float = 0.0

    def __post_init__(self) -> None:
        for name in ("voiced", "wordless", "other_speakers", "emotional"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"composition {name} share must be within [0, 1], got {getattr(self, name)}")


@dataclass
class DataConfig:
    """The labelled corpora (the first is the primary one, reported first) and how to treat broken media."""

    corpora: tuple[CorpusConfig, ...] = ()
    skip_bad_media: bool = False  # drop clips whose media is missing or undecodable (and say how many)
    audio_cache: str | None = None  # decoded-audio cache directory; default $MMML_CACHE/audio
    trim_silence: bool = False  # cut clips to their speech (Silero VAD) as annotation cuts utterances
    compose: Composition = field(default_factory=Composition)
    augment: float = 0.0  # share of training clips heard through random recording conditions (`training.augment`)

    @property
    def dataset(self) -> str:
        """The primary corpus's metric set: what tables of a run are laid out for."""
        return self.corpora[0].dataset if self.corpora else "custom"


@dataclass
class LossConfig:
    """The multi-loss objective (paper 3.3): a weight of 0 switches a head's loss off."""

    kind: LossKind = "mse"  # paper: L2; the authors' code: L1
    fused: float = 1.0
    text: float = 1.0
    audio: float = 1.0


@dataclass
class OptimConfig:
    """One AdamW optimiser for the whole run (the authors' code re-created it every epoch)."""

    lr: float = 1e-5  # the pretrained encoders
    fusion_lr: float | None = None  # the fusion network, CLS vectors and heads; None: the same as lr
    lr_schedule: Literal["constant", "linear"] = "constant"  # linear: decays to 0 at the end of max_epochs
    weight_decay: float = 0.01
    batch_size: int = 16
    grad_accumulation: int = 1
    max_epochs: int = 100
    max_grad_norm: float | None = None
    mixed_precision: bool = False  # autocast on CUDA only; ignored on CPU
    length_batching: bool = True  # bucket similar lengths together so padding stays small


@dataclass
class EarlyStopConfig:
    """Stop when the validation loss has not improved for `patience` epochs."""

    patience: int = 8
    min_delta: float = 0.0


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    seeds: tuple[int, ...] = DEFAULT_SEEDS

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        problems = [
            message
            for ok, message in (
                (bool(self.seeds), "at least one seed is needed"),
                (len(set(self.seeds)) == len(self.seeds), f"seeds repeat: {self.seeds}"),
                (0.0 <= self.data.augment <= 1.0, f"augment share must be within [0, 1], got {self.data.augment}"),
                (self.optim.lr > 0, "lr must be positive"),
                (self.optim.fusion_lr is None or self.optim.fusion_lr > 0, "fusion lr must be positive"),
                (self.optim.lr_schedule in ("constant", "linear"), f"unknown lr schedule {self.optim.lr_schedule!r}"),
                (self.optim.batch_size >= 1, "batch size must be at least 1"),
                (self.optim.grad_accumulation >= 1, "gradient accumulation must be at least 1"),
                (self.optim.max_epochs >= 1, "max epochs must be at least 1"),
                (self.early_stop.patience >= 1, "patience must be at least 1"),
                (self.loss.kind in ("mse", "l1"), f"unknown loss {self.loss.kind!r}; use mse or l1"),
                (min(self.loss.fused, self.loss.text, self.loss.audio) >= 0, "loss weights must be >= 0"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def loss_weights(self) -> dict[str, float]:
        """Weights per head for `multi_loss`.

        A single-modality variant's fused score *is* its one head's score, so it
        is trained once with weight 1 rather than counted twice.
        """
        if self.model.fusion.variant in ("text-only", "audio-only"):
            return {"fused": 1.0}
        weights = {"fused": self.loss.fused, "text": self.loss.text, "audio": self.loss.audio}
        if not any(weights.values()):
            raise ValueError("every loss weight is 0: nothing to train")
        return weights


def save_train_config(config: TrainConfig, path: str | Path) -> None:
    save_json(config, path)


def load_train_config(path: str | Path) -> TrainConfig:
    return config_from_dict(json.loads(Path(path).read_text()))


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return to_dict(config)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from JSON; configurations saved before runs had several corpora (`data.path`) still load."""
    section = data.get("data", {})
    if "path" in section:
        legacy = {k: section.pop(k) for k in ("path", "dataset") if k in section}
        section["corpora"] = [legacy]
    return from_dict(TrainConfig, data)
