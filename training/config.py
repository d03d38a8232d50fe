"""One dataclass tree says how a training run was made; it is saved with every result.

`TrainConfig` nests the model library's `ModelConfig` and adds what the paper's
appendix A.1 fixes (AdamW, lr, batch size, MSE loss, patience 8, three seeds)
plus what the authors' code changed (L1 loss, smaller lr and batch). It is
written as `train_config.json` in every run directory and into the metadata
of every checkpoint, so a number in a results table always points back to
the exact settings behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmml.config import ModelConfig, from_dict, load_json, save_json, to_dict

LossKind = Literal["mse", "l1"]
Dataset = Literal["mosi", "mosei", "sims", "custom"]
DEFAULT_SEEDS: tuple[int, ...] = (1111, 1112, 1113)  # MMSA's customary three seeds


@dataclass
class DataConfig:
    """Where the labelled corpus lives and how to treat broken media."""

    path: str = ""  # corpus directory holding label.csv, or the label.csv itself
    dataset: Dataset = "custom"  # picks the metric set (mosi/mosei/custom: [-3, 3]; sims: [-1, 1])
    skip_bad_media: bool = False  # drop clips whose media is missing or undecodable (and say how many)
    audio_cache: str | None = None  # decoded-audio cache directory; default $MMML_CACHE/audio


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

    lr: float = 1e-5
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
                (self.optim.lr > 0, "lr must be positive"),
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
    return load_json(TrainConfig, path)


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return to_dict(config)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    return from_dict(TrainConfig, data)
