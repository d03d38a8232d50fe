"""MMML: the Multi-Modality Multi-Loss Fusion Network, top to bottom.

    text  ─ text encoder ─┬──────────────── text head  ──> score_text
                          └─┐
                            fusion network ─ readout ─ fused head ──> score_fused
                          ┌─┘
    audio ─ audio encoder ┴──────────────── audio head ──> score_audio

The fused head is the model's answer; the text and audio heads exist for the
multi-loss objective (paper 3.3) and double as single-modality models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

from .config import ModelConfig
from .encoders import encode_audio, freeze_feature_extractor, load_encoder
from .fusion import FusionDims, FusionNetwork
from .heads import FusedConcatReadout, FusedTransformerReadout, ModalityGate, RegressionHead, masked_mean


@dataclass
class Scores:
    """One score per sample from each head; `None` where the variant has no such head.

    A head whose modality is missing for a sample gives NaN for that sample.
    Under a gate (`FusionConfig.gate`), `fused` is the gate's mix and
    `fusion` the fused head's own score, which keeps its own loss.
    """

    fused: torch.Tensor
    text: torch.Tensor | None
    audio: torch.Tensor | None
    fusion: torch.Tensor | None = None


class MMML(nn.Module):
    def __init__(
        self,
        config: ModelConfig,
        text_encoder: PreTrainedModel | None,
        audio_encoder: PreTrainedModel | None,
    ) -> None:
        super().__init__()
        if config.uses_text != (text_encoder is not None) or config.uses_audio != (audio_encoder is not None):
            raise ValueError(f"variant {config.fusion.variant!r} needs exactly the encoders it uses")
        self.config = config
        self.text_encoder = text_encoder
        self.audio_encoder = audio_encoder
        if audio_encoder is not None and config.audio.freeze_feature_extractor:
            freeze_feature_extractor(audio_encoder)

        text_width = text_encoder.config.hidden_size if text_encoder is not None else 0
        audio_width = audio_encoder.config.hidden_size if audio_encoder is not None else 0
        dims = _fusion_dims(config, text_encoder or audio_encoder)
        head_hidden = config.fusion.head_hidden_size or dims.hidden
        dropout = config.fusion.dropout

        variant = config.fusion.variant
        # A single-modality model's one head is its answer (three layers); a multimodal model's are auxiliary.
        layers = 3 if variant in ("text-only", "audio-only") else config.fusion.modality_head_layers
        self.text_head = RegressionHead(text_width, head_hidden, dropout, layers) if text_encoder is not None else None
        self.audio_head = (
            RegressionHead(audio_width, head_hidden, dropout, layers) if audio_encoder is not None else None
        )

        self.fusion = (
            FusionNetwork(text_width, audio_width, dims, config.fusion.layers) if variant.startswith("fused") else None
        )
        self.readout: nn.Module | None = None
        if variant == "fused+concat":
            self.readout = FusedConcatReadout(dims.hidden, text_width, audio_width)
        elif variant == "fused+transformer":
            default_layers = 3 if config.language == "en" else 2  # the authors' choice per language
            self.readout = FusedTransformerReadout(dims, config.fusion.readout_layers or default_layers)
        fused_width = {
            "fused": 2 * dims.hidden,
            "fused+concat": 2 * dims.hidden,
            "fused+transformer": 4 * dims.hidden,
            "concat": text_width + audio_width,
        }.get(variant)
        self.fused_head = RegressionHead(fused_width, head_hidden, dropout) if fused_width else None
        self.gate = ModalityGate(fused_width, head_hidden, dropout) if config.fusion.gate else None

    @classmethod
    def from_config(cls, config: ModelConfig) -> MMML:
        """A new model around the pretrained encoders the config names."""
        text = load_encoder(config.text.name_or_path) if config.uses_text else None
        audio = load_encoder(config.audio.name_or_path) if config.uses_audio else None
        return cls(config, text, audio)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        text_present: torch.Tensor | None = None,
        audio_present: torch.Tensor | None = None,
    ) -> Scores:
        text_states = text_mask = audio_states = audio_mask = None
        text_score = audio_score = None

        if self.text_encoder is not None:
            present = _present(text_present, input_ids)
            if present.any():
                text_states = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                text_mask = attention_mask.bool() & present[:, None]
            else:  # a batch without words (speech-only rows): no encoder pass, the text CLS stands alone
                text_states, text_mask = _nothing(self.text_encoder, present)
            text_score = _nan_where_missing(self.text_head(self._text_summary(text_states, text_mask)), text_mask)

        if self.audio_encoder is not None:
            audio_inputs = input_values if input_values is not None else input_features
            present = _present(audio_present, audio_inputs)
            if present.any():
                audio_states, audio_mask = encode_audio(self.audio_encoder, audio_inputs, audio_attention_mask)
                audio_mask = audio_mask & present[:, None]
            else:  # a batch without audio (transcript-only rows): no encoder pass, the audio CLS stands alone
                audio_states, audio_mask = _nothing(self.audio_encoder, present)
            audio_score = _nan_where_missing(self.audio_head(masked_mean(audio_states, audio_mask)), audio_mask)

        features = self._fused_features(text_states, text_mask, audio_states, audio_mask)
        if features is None:  # single-modality baselines: their one head is the answer
            only = text_score if text_score is not None else audio_score
            return Scores(fused=only, text=text_score, audio=audio_score)
        fused = self.fused_head(features)
        if self.gate is None:
            return Scores(fused=fused, text=text_score, audio=audio_score)
        heads = torch.stack([text_score, audio_score, fused], dim=-1).detach()
        return Scores(fused=self.gate(features.detach(), heads), text=text_score, audio=audio_score, fusion=fused)

    def _text_summary(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The text head's input: the first token's state or the tokens' mean (`TextEncoderConfig.pooling`)."""
        return masked_mean(states, mask) if self.config.text.pooling == "mean" else states[:, 0]

    def _fused_features(
        self,
        text: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        audio: torch.Tensor | None,
        audio_mask: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """The fused head's input feature per sample; None for the single-modality baselines."""
        variant = self.config.fusion.variant
        if variant == "concat":
            return torch.cat([masked_mean(text, text_mask), masked_mean(audio, audio_mask)], dim=-1)
        if self.fusion is None:
            return None
        text_in, text_in_mask, audio_in, audio_in_mask = self.fusion.embed(text, text_mask, audio, audio_mask)
        text_out, audio_out = self.fusion(text_in, text_in_mask, audio_in, audio_in_mask)
        if variant == "fused":
            features = torch.cat([text_out[:, 0], audio_out[:, 0]], dim=-1)
        elif variant == "fused+concat":
            features = self.readout(
                text_out[:, 0], masked_mean(text, text_mask), audio_out[:, 0], masked_mean(audio, audio_mask)
            )
        else:  # fused+transformer
            features = self.readout(text_in, text_out, text_in_mask, audio_in, audio_out, audio_in_mask)
        return features


def _fusion_dims(config: ModelConfig, reference: PreTrainedModel) -> FusionDims:
    """Fusion widths follow the text encoder (or the only encoder) unless configured."""
    ref = reference.config
    return FusionDims(
        hidden=config.fusion.hidden_size or ref.hidden_size,
        heads=config.fusion.heads or ref.num_attention_heads,
        ffn=config.fusion.ffn_size or getattr(ref, "intermediate_size", None) or ref.encoder_ffn_dim,
        dropout=config.fusion.dropout,
    )


def _nothing(encoder: PreTrainedModel, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """States [B, 1, H] and an all-False mask: what a fully masked modality looks like downstream."""
    parameter = next(encoder.parameters())
    size = (present.shape[0], 1, encoder.config.hidden_size)
    states = torch.zeros(size, dtype=parameter.dtype, device=parameter.device)
    return states, torch.zeros(present.shape[0], 1, dtype=torch.bool, device=parameter.device)


def _present(flags: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if flags is None:
        return torch.ones(like.shape[0], dtype=torch.bool, device=like.device)
    return flags.bool()


def _nan_where_missing(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.any(dim=1), scores, torch.full_like(scores, float("nan")))
