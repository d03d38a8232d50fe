"""Output heads: the regression MLP and the readouts of the fusion variants (paper 3.4).

Each readout turns encoder and fusion states into one feature vector per
sample; `RegressionHead` turns that vector into a sentiment score. The
multi-loss design (paper 3.3) puts one head on the fused feature and one on
each feature network.
"""

from __future__ import annotations

import torch
from torch import nn

from .fusion import FusionDims


class RegressionHead(nn.Module):
    """Fully connected layers to one regression output: three on the fused feature (paper 3.2), one on a
    modality's own feature in a multimodal model (paper 3.3)."""

    def __init__(self, in_features: int, hidden: int, dropout: float, layers: int = 3) -> None:
        super().__init__()
        if layers == 1:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, 1))
            return
        widths = [in_features] + [hidden] * (layers - 1)
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            blocks += [nn.Dropout(dropout)] if i < 2 else []
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


class ModalityGate(nn.Module):
    """Dynamic fusion: the fused score as a per-utterance mix of the text head's, the audio head's and the fused
    head's scores, weighted by a softmax that reads the fused features.

    Why: which modality to trust changes from one utterance to the next
    (words that say nothing, a voice the audio head has never heard), and a
    mix of the fused head with the text head is a small ensemble, better
    than either alone. The gate only learns how to weigh: it reads the heads'
    scores and the features detached (`MMML.forward`), so adding it changes
    nothing else the model learns. It sees the scores themselves beside the
    features: how sure each head is (a strongly opinionated sentence, a voice
    heard as mildly sad) is what says whom to trust. A missing modality (NaN
    score) gets weight 0.
    """

    SOURCES = ("text", "audio", "fusion")

    def __init__(self, in_features: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_features + 2 * len(self.SOURCES), hidden),
            nn.ReLU(),
            nn.Linear(hidden, len(self.SOURCES)),
        )

    def weights(self, features: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """[B, 3] weights over `SOURCES` for scores [B, 3]; each row sums to 1 over its present sources."""
        missing = torch.isnan(scores)
        inputs = torch.cat([features, scores.nan_to_num(0.0), missing.to(features.dtype)], dim=-1)
        logits = self.net(inputs).masked_fill(missing, float("-inf"))
        return torch.softmax(logits.float(), dim=-1).to(scores.dtype)

    def forward(self, features: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return (self.weights(features, scores) * scores.nan_to_num(0.0)).sum(dim=-1)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions; a sample with none gives zeros (never NaN)."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class FusedConcatReadout(nn.Module):
    """`fused+concat`: each modality's fused CLS joined with its original pooled feature."""

    def __init__(self, hidden: int, text_width: int, audio_width: int) -> None:
        super().__init__()
        self.text = nn.Linear(hidden + text_width, hidden)
        self.audio = nn.Linear(hidden + audio_width, hidden)

    def forward(
        self, text_cls: torch.Tensor, text_pooled: torch.Tensor, audio_cls: torch.Tensor, audio_pooled: torch.Tensor
    ) -> torch.Tensor:
        text = self.text(torch.cat([text_cls, text_pooled], dim=-1))
        audio = self.audio(torch.cat([audio_cls, audio_pooled], dim=-1))
        return torch.cat([text, audio], dim=-1)


class FusedTransformerReadout(nn.Module):
    """`fused+transformer`: original and fused sequences joined feature-wise, re-encoded, pooled."""

    def __init__(self, dims: FusionDims, layers: int) -> None:
        super().__init__()
        self.text = _encoder(dims, layers)
        self.audio = _encoder(dims, layers)

    def forward(
        self,
        text_before: torch.Tensor,
        text_after: torch.Tensor,
        text_mask: torch.Tensor,
        audio_before: torch.Tensor,
        audio_after: torch.Tensor,
        audio_mask: torch.Tensor,
    ) -> torch.Tensor:
        text = self.text(torch.cat([text_before, text_after], dim=-1), src_key_padding_mask=~text_mask)
        audio = self.audio(torch.cat([audio_before, audio_after], dim=-1), src_key_padding_mask=~audio_mask)
        return torch.cat([masked_mean(text, text_mask), masked_mean(audio, audio_mask)], dim=-1)


def _encoder(dims: FusionDims, layers: int) -> nn.Module:
    def layer() -> nn.TransformerEncoderLayer:
        return nn.TransformerEncoderLayer(2 * dims.hidden, dims.heads, 2 * dims.ffn, dims.dropout, batch_first=True)

    if layers == 1:  # checkpoints saved with a single layer keep their parameter names
        return layer()
    return nn.TransformerEncoder(layer(), layers, enable_nested_tensor=False)
