"""The fusion network (paper 3.2): cross-modal attention, self-attention, feed-forward.

Per layer and per modality: the modality's queries attend to the other
modality (separate weights for each direction), the result attends to itself,
and a position-wise ReLU feed-forward network follows; every sub-layer has
dropout, a residual connection and LayerNorm. A learned CLS vector is put in
front of each modality once, and its final state is the modality's summary.

Masks are boolean [B, L] with True at valid positions. Padded positions are
never used as keys, so valid outputs do not depend on how much padding a
batch carries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FusionDims:
    hidden: int
    heads: int
    ffn: int
    dropout: float


class CrossModalAttention(nn.Module):
    """Queries from one modality, keys and values from another: softmax(QKᵀ/√d)V."""

    def __init__(self, dims: FusionDims) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dims.hidden, dims.heads, dropout=dims.dropout, batch_first=True)
        self.dropout = nn.Dropout(dims.dropout)
        self.norm = nn.LayerNorm(dims.hidden)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(queries, keys, keys, key_padding_mask=~key_mask, need_weights=False)
        return self.norm(queries + self.dropout(attended))


class SelfAttention(CrossModalAttention):
    """The same sub-layer with a modality attending to itself."""

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(states, states, mask)


class FeedForward(nn.Module):
    """Position-wise ReLU network with residual connection and LayerNorm."""

    def __init__(self, dims: FusionDims) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dims.hidden, dims.ffn),
            nn.ReLU(),
            nn.Dropout(dims.dropout),
            nn.Linear(dims.ffn, dims.hidden),
        )
        self.dropout = nn.Dropout(dims.dropout)
        self.norm = nn.LayerNorm(dims.hidden)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.norm(states + self.dropout(self.net(states)))


class ModalityBlock(nn.Module):
    """One modality's half of a fusion layer: cross-attention, self-attention, feed-forward."""

    def __init__(self, dims: FusionDims) -> None:
        super().__init__()
        self.cross = CrossModalAttention(dims)
        self.self_attention = SelfAttention(dims)
        self.feed_forward = FeedForward(dims)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, other: torch.Tensor, other_mask: torch.Tensor
    ) -> torch.Tensor:
        states = self.cross(states, other, other_mask)
        states = self.self_attention(states, mask)
        return self.feed_forward(states)


class FusionLayer(nn.Module):
    """Both directions of one fusion layer; each reads the other's input of this layer."""

    def __init__(self, dims: FusionDims) -> None:
        super().__init__()
        self.text = ModalityBlock(dims)
        self.audio = ModalityBlock(dims)

    def forward(
        self, text: torch.Tensor, text_mask: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text(text, text_mask, audio, audio_mask), self.audio(audio, audio_mask, text, text_mask)


class FusionNetwork(nn.Module):
    """Projects both encoders to a common width, prepends CLS vectors, runs N fusion layers."""

    def __init__(self, text_width: int, audio_width: int, dims: FusionDims, layers: int) -> None:
        super().__init__()
        self.text_projection = _projection(text_width, dims.hidden)
        self.audio_projection = _projection(audio_width, dims.hidden)
        self.text_cls = nn.Parameter(torch.randn(1, 1, dims.hidden) * 0.02)
        self.audio_cls = nn.Parameter(torch.randn(1, 1, dims.hidden) * 0.02)
        self.layers = nn.ModuleList(FusionLayer(dims) for _ in range(layers))

    def embed(
        self, text: torch.Tensor, text_mask: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Projected sequences with their CLS in front: the input of the first fusion layer.

        The CLS position is always valid, so a modality whose every position is
        masked (missing for that sample) is still represented, by its CLS alone.
        """
        text, text_mask = _prepend(self.text_cls, self.text_projection(text), text_mask)
        audio, audio_mask = _prepend(self.audio_cls, self.audio_projection(audio), audio_mask)
        return text, text_mask, audio, audio_mask

    def forward(
        self, text: torch.Tensor, text_mask: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused sequences [B, 1 + L, H] for text and audio; position 0 is the CLS."""
        for layer in self.layers:
            text, audio = layer(text, text_mask, audio, audio_mask)
        return text, audio


def _projection(width: int, hidden: int) -> nn.Module:
    return nn.Identity() if width == hidden else nn.Linear(width, hidden)


def _prepend(cls: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch = states.shape[0]
    states = torch.cat([cls.expand(batch, -1, -1).to(states.dtype), states], dim=1)
    mask = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
    return states, mask
