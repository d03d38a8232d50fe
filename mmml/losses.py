"""The multi-loss objective (paper 3.3): one regression loss per selected head, summed.

Training the text and audio heads alongside the fused head keeps each feature
network useful on its own; the weights select and balance them (paper
Table 4: a weight of 0 turns a head's loss off).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.nn import functional as F

from .config import LossKind
from .model import Scores

HEADS = ("fused", "text", "audio")


def multi_loss(
    scores: Scores,
    targets: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    kind: LossKind = "mse",
) -> torch.Tensor:
    """Weighted sum of the heads' losses.

    A sample is left out of a head's loss where the head's score is NaN (its
    modality is missing) or its target is NaN (its label says nothing about
    that modality, e.g. neutral words spoken in anger). Under a gate, the
    fused head's own score (`scores.fusion`) is held to the fused target with
    the fused weight, beside the gate's mix.
    """
    if kind not in ("mse", "l1"):
        raise ValueError(f"unknown loss {kind!r}; use 'mse' or 'l1'")
    loss_fn = F.mse_loss if kind == "mse" else F.l1_loss
    selected = [h for h in HEADS if weights.get(h, 0.0) != 0.0 and getattr(scores, h) is not None]
    if not selected:
        raise ValueError(f"no loss to optimise: weights {dict(weights)} select no head this model has")
    total = scores.fused.sum() * 0.0  # a batch with no usable row for any selected head contributes nothing
    terms = [(head, getattr(scores, head)) for head in selected]
    if scores.fusion is not None and "fused" in selected:
        terms.append(("fused", scores.fusion))
    for head, predicted in terms:
        target = targets[head].to(predicted.dtype)
        valid = ~torch.isnan(predicted) & ~torch.isnan(target)
        if valid.any():
            total = total + weights[head] * loss_fn(predicted[valid], target[valid])
    return total
