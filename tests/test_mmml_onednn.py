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


def _no_such_op(*args: object) -> torch.Tensor:  # another PyTorch's signature, or no kernel at all
    raise RuntimeError("no such op")


def _slightly_off(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return nn.functional.linear(x, weight, bias) + 1e-2


@pytest.mark.parametrize(
    "broken",
    [("backends", lambda: False), ("kernel", _no_such_op), ("kernel", _slightly_off)],
    ids=["no-onednn", "no-kernel", "wrong-result"],
)
def test_a_kernel_that_is_missing_or_wrong_leaves_nn_linear_in_place(broken, monkeypatch) -> None:
    """The model keeps nn.Linear rather than failing to score, or scoring otherwise."""
    import mmml.onednn

    where, replacement = broken
    if where == "backends":
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", replacement)
    else:
        monkeypatch.setattr(mmml.onednn, "linear", replacement)
    model = nn.Sequential(nn.Linear(4, 3))
    assert not onednn_linear_works() and use_onednn_linears(model) == 0
    assert type(model[0]) is nn.Linear


@needs_onednn
def test_with_gradients_wanted_it_computes_as_nn_linear_does() -> None:
    dense = nn.Linear(6, 2)
    swapped = OneDNNLinear(dense)
    x = torch.randn(3, 6, requires_grad=True)
    swapped(x).sum().backward()
    expected = torch.ones(3, 2) @ dense.weight.detach()
    torch.testing.assert_close(x.grad, expected)
