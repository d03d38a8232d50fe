"""MMML: Multi-Modality Multi-Loss Fusion Network for text + audio sentiment.

The public API is small; see README ("Model library") and docs/CONTRACT.md.
"""

from .checkpoint import Checkpoint, checkpoint_id, load_checkpoint, save_checkpoint
from .config import ModelConfig, preset
from .losses import multi_loss
from .metrics import metrics_for, mosi_metrics, sims_metrics
from .model import MMML, Scores
from .preprocessing import Preprocessor

__all__ = [
    "MMML", "Checkpoint", "ModelConfig", "Preprocessor", "Scores", "checkpoint_id", "load_checkpoint",
    "metrics_for", "mosi_metrics", "multi_loss", "preset", "save_checkpoint", "sims_metrics",
]
