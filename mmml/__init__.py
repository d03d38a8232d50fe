"""MMML: Multi-Modality Multi-Loss Fusion Network for text + audio sentiment.

The public API is small; see README ("Model library") and docs/CONTRACT.md.
Names are imported on first use, so light modules (`mmml.config`,
`mmml.packaged`, `mmml.metrics`) do not drag torch and transformers into
processes that never touch the network (the annotation driver, decoders).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MMML": "model",
    "Scores": "model",
    "Checkpoint": "checkpoint",
    "checkpoint_id": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "ModelConfig": "config",
    "preset": "config",
    "multi_loss": "losses",
    "metrics_for": "metrics",
    "mosi_metrics": "metrics",
    "sims_metrics": "metrics",
    "Preprocessor": "preprocessing",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmml' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
