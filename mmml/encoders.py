"""Feature networks (paper 3.1): pretrained text and audio encoders from Hugging Face.

Any `AutoModel` checkpoint of the right kind works: RoBERTa/BERT/MiniLM for
text, Data2Vec-audio/HuBERT/wav2vec2 for audio. Names go through
`mmml.packaged.resolve`, so packaged offline models load exactly like hub ids.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from .packaged import resolve


def load_encoder(name_or_path: str) -> PreTrainedModel:
    """Pretrained weights from a hub id, a local directory or a `packaged:` alias."""
    return _prepare(AutoModel.from_pretrained(resolve(name_or_path), trust_remote_code=False))


def encoder_from_config(config_dir: str) -> PreTrainedModel:
    """An encoder with the architecture saved in `config_dir` and untrained weights.

    Checkpoints use this: the fine-tuned weights arrive separately, so the
    (possibly large) pretrained weights are never needed again.
    """
    config = AutoConfig.from_pretrained(config_dir, trust_remote_code=False)
    return _prepare(AutoModel.from_config(config, trust_remote_code=False))


def _prepare(model: PreTrainedModel) -> PreTrainedModel:
    # The pooler of BERT-like models is never used (the text head reads the CLS
    # hidden state), and unused parameters would never receive gradients.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def freeze_feature_extractor(audio_encoder: PreTrainedModel) -> None:
    """Freeze the convolutional front end of a wav2vec2-family encoder (paper 3.1)."""
    front_end = getattr(audio_encoder, "feature_extractor", None)
    if not isinstance(front_end, nn.Module):
        raise ValueError(
            f"{type(audio_encoder).__name__} has no convolutional feature extractor; "
            "the audio encoder must be a wav2vec2-family model (Data2Vec-audio, HuBERT, wav2vec2, WavLM)"
        )
    for parameter in front_end.parameters():
        parameter.requires_grad = False


def frame_lengths(config: PretrainedConfig, sample_lengths: torch.Tensor) -> torch.Tensor:
    """Number of encoder frames for each waveform length: the conv stack's downsampling.

    Each convolution (kernel k, stride s, no padding) maps L samples to
    floor((L - k) / s) + 1 frames; lengths too short for one frame give 0.
    """
    lengths = sample_lengths.clone()
    for kernel, stride in zip(_ints(config.conv_kernel), _ints(config.conv_stride)):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        lengths = lengths.clamp(min=0)
    return lengths


def _ints(values: Sequence[int] | int) -> list[int]:
    return [values] if isinstance(values, int) else list(values)


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean mask [B, max_length], True at valid positions."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def encode_audio(
    encoder: PreTrainedModel, input_values: torch.Tensor, sample_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states [B, T, H] and the frame mask [B, T] derived from the waveform mask.

    The mask comes from the conv stack's arithmetic on the true sample counts,
    never from attention outputs, so padded frames are excluded exactly.
    """
    hidden = encoder(input_values=input_values, attention_mask=sample_mask.long()).last_hidden_state
    frames = frame_lengths(encoder.config, sample_mask.long().sum(dim=-1))
    return hidden, lengths_to_mask(frames, hidden.shape[1])
