"""Linear layers through oneDNN (`mmml.onednn`): the same model, the same scores, the same weight tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmml.checkpoint import load_checkpoint
from mmml.onednn import OneDNNLinear, onednn_linear_works, use_onednn_linears
from pipelines.options import ScoreOptions
from pipelines.score import load_scorer, score

needs_onednn = pytest.mark.skipif(not onednn_linear_works(), reason="this PyTorch has no oneDNN linear")


@needs_onednn
def test_swapped_linears_give_the_scores_of_nn_linear_and_share_its_weights(tiny_checkpoint) -> None:
    checkpoint = load_checkpoint(tiny_checkpoint)
    model = checkpoint.model
    plain = {name: m for name, m in model.named_modules() if type(m) is nn.Linear}
    rng = np.random.default_rng(0)
    texts = ["I loved it.", "", "It was bad, really bad, and long " * 3]
    audios = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16_000, 40_000, 24_000)]
    before = score(checkpoint, texts, audios)

    assert use_onednn_linears(model) == len(plain) > 0
    swapped = dict(model.named_modules())
    for name, dense in plain.items():
        assert isinstance(swapped[name], OneDNNLinear)
        assert swapped[name].weight is dense.weight and swapped[name].bias is dense.bias  # no copy of the weights
    attention = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert attention and all(type(m.out_proj) is not OneDNNLinear for m in attention)  # read, never called
    after = score(checkpoint, texts, audios)
    for head in ("fused", "text", "audio"):
        np.testing.assert_allclose(getattr(after, head), getattr(before, head), atol=1e-5, equal_nan=True)
    assert use_onednn_linears(model) == 0  # nothing left to swap


@needs_onednn
def test_a_cpu_scorer_runs_its_linears_through_onednn(tiny_checkpoint) -> None:
    checkpoint = load_scorer(ScoreOptions(checkpoint=str(tiny_checkpoint), device="cpu"))
    kinds = {type(m) for m in checkpoint.model.modules()}
    assert OneDNNLinear in kinds and nn.Linear not in kinds


def test_the_check_tells_a_working_kernel_from_a_missing_one(monkeypatch) -> None:
    """Where the kernel is absent (another PyTorch) the model keeps nn.Linear rather than failing to score."""
    model = nn.Sequential(nn.Linear(4, 3))
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not onednn_linear_works() and use_onednn_linears(model) == 0
    assert type(model[0]) is nn.Linear
