"""Feature networks (paper 3.1): pretrained text and audio encoders from Hugging Face.

Any `AutoModel` checkpoint of the right kind works: RoBERTa/BERT/MiniLM for
text, Data2Vec-audio/HuBERT/wav2vec2 for audio, and Whisper's encoder
(`mmml.whisper`) for audio too, and so do the hand-crafted feature encoders
of paper Table 2 (`mmml.feature_encoders`: openSMILE, Mel-spectrogram CNN).
Names go through `encoder_directory`, so packaged offline models,
faster-whisper (CTranslate2) directories and feature encoders load exactly
like hub ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from . import feature_encoders, whisper
from .frame_features import FrameFeatureEncoder, lengths_to_mask
from .packaged import cache_dir, resolve


def encoder_directory(name_or_path: str) -> str:
    """A transformers directory or hub id for an encoder name.

    `packaged:` aliases become their local directory; a CTranslate2 Whisper
    directory (faster-whisper's format, e.g. `packaged:whisper-tiny.en`)
    becomes its encoder converted once into the cache; a feature encoder's
    name (`opensmile:eGeMAPSv02`, `mel-cnn`) becomes its configs, written once there.
    """
    if feature_encoders.is_feature_encoder(name_or_path):
        return str(feature_encoders.feature_encoder_directory(name_or_path, cache_dir()))
    path = resolve(name_or_path)
    if whisper.is_ctranslate2_whisper(path):
        return str(whisper.converted_directory(path, cache_dir()))
    return path


def load_encoder(name_or_path: str) -> PreTrainedModel | FrameFeatureEncoder:
    """Pretrained weights from a hub id, a local directory or a `packaged:` alias; a feature encoder untrained."""
    return _build(encoder_directory(name_or_path), pretrained=True)


def encoder_from_config(config_dir: str) -> PreTrainedModel | FrameFeatureEncoder:
    """An encoder with the architecture saved in `config_dir` and untrained weights.

    Checkpoints use this: the fine-tuned weights arrive separately, so the
    (possibly large) pretrained weights are never needed again.
    """
    return _build(config_dir, pretrained=False)


def _build(directory: str, pretrained: bool) -> PreTrainedModel | FrameFeatureEncoder:
    """The encoder the config in `directory` describes, of whichever kind, with its pretrained weights or untrained."""
    config = AutoConfig.from_pretrained(directory, trust_remote_code=False)
    if feature_encoders.is_feature_config(config):
        return feature_encoders.build_encoder(config)  # hand-crafted features: no pretrained weights to load
    if whisper.is_whisper(config):
        return whisper.load_whisper_encoder(directory) if pretrained else whisper.WhisperEncoder(config)
    if pretrained:
        model = AutoModel.from_pretrained(directory, trust_remote_code=False)
    else:
        model = AutoModel.from_config(config, trust_remote_code=False)
    # The pooler of BERT-like models is never used (the text head reads the CLS
    # hidden state), and unused parameters would never receive gradients.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def freeze_feature_extractor(audio_encoder: PreTrainedModel | FrameFeatureEncoder) -> None:
    """Freeze the audio encoder's convolutional front end (paper 3.1): wav2vec2's conv stack, Whisper's two convs.

    A feature encoder's front end (openSMILE, the Mel filters) has no weights: nothing to freeze.
    """
    if isinstance(audio_encoder, FrameFeatureEncoder):
        return
    if whisper.is_whisper(audio_encoder.config):
        front_end = [audio_encoder.conv1, audio_encoder.conv2]
    else:
        front_end = [getattr(audio_encoder, "feature_extractor", None)]
    if not all(isinstance(module, nn.Module) for module in front_end):
        raise ValueError(
            f"{type(audio_encoder).__name__} has no convolutional feature extractor; the audio encoder must be "
            "a wav2vec2-family model (Data2Vec-audio, HuBERT, wav2vec2, WavLM) or Whisper"
        )
    for module in front_end:
        for parameter in module.parameters():
            parameter.requires_grad = False


def conv_frame_lengths(config: PretrainedConfig, sample_lengths: torch.Tensor) -> torch.Tensor:
    """Encoder frames for each waveform length: a wav2vec2-family conv stack's downsampling (Whisper's: `whisper`).

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


def encode_audio(
    encoder: PreTrainedModel | FrameFeatureEncoder, inputs: torch.Tensor, sample_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states [B, T, H] and the frame mask [B, T] derived from the waveform mask.

    `inputs` are waveforms [B, samples] for wav2vec2-family encoders, log-mel
    features [B, mels, frames] for Whisper. The mask comes from the conv
    stack's arithmetic on the true sample counts, never from attention
    outputs, so padded frames are excluded exactly. A feature encoder reads
    hand-crafted frames [B, frames, features] whose mask is a frame mask already.
    """
    if isinstance(encoder, FrameFeatureEncoder):
        return encoder(inputs, sample_mask)
    samples = sample_mask.long().sum(dim=-1)
    if whisper.is_whisper(encoder.config):
        frames = whisper.frame_lengths(samples)
        mask = lengths_to_mask(frames, inputs.shape[-1] // 2)
        return whisper.encode_whisper(encoder, inputs, mask), mask
    hidden = encoder(input_values=inputs, attention_mask=sample_mask.long()).last_hidden_state
    return hidden, lengths_to_mask(conv_frame_lengths(encoder.config, samples), hidden.shape[1])
