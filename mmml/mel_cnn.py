"""A log-Mel spectrogram read by an 8-layer CNN (paper Table 2, appendix A.2).

The paper's settings: 128 Mel filters, 60 ms windows, 20 ms steps, and "a
custom 8-layer CNN model". The spectrogram is computed per clip in
preprocessing (a Hann window of 960 samples in a 1024-point FFT, Slaney Mel
filters up to 8 kHz, natural log of the power); the CNN is eight 3x3
convolutions, each followed by a per-frame LayerNorm over (channels,
frequency) and a ReLU. Every second layer halves the frequency axis
(128 -> 8 bins), layers 1 and 2 also halve time (20 ms -> 80 ms frames), and
a linear layer maps each frame's channels x bins to the model width. The
widths (8 to 64 channels) are sized to train in minutes on a CPU.

Padded frames are zeroed after every layer, and every layer's stride starts
at frame 0, so a clip's states are the same whatever it is batched with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from .frame_features import FrameFeatureConfig, FrameFeatureEncoder, FrameFeatureExtractor, lengths_to_mask

KERNEL = 3  # every convolution: 3x3, padding 1


class MelCNNConfig(FrameFeatureConfig):
    model_type = "mmml-mel-cnn"

    def __init__(
        self,
        num_features: int = 128,
        channels: tuple[int, ...] = (8, 8, 16, 16, 32, 32, 64, 64),
        frequency_strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2, 1, 2),
        time_strides: tuple[int, ...] = (2, 2, 1, 1, 1, 1, 1, 1),
        **kwargs: Any,
    ) -> None:
        super().__init__(num_features=num_features, **kwargs)
        if not len(channels) == len(frequency_strides) == len(time_strides):
            raise ValueError("channels, frequency_strides and time_strides need one entry per layer")
        self.channels = list(channels)
        self.frequency_strides = list(frequency_strides)
        self.time_strides = list(time_strides)


class LogMelFeatureExtractor(FrameFeatureExtractor):
    """One clip's log-Mel power spectrogram [frames, mel bins]: frame i is centred on sample i * hop."""

    def __init__(
        self, num_mel_bins: int = 128, window_seconds: float = 0.06, hop_seconds: float = 0.02, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_mel_bins = num_mel_bins
        self.window_seconds = window_seconds
        self.hop_seconds = hop_seconds

    @property
    def window_length(self) -> int:
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_seconds * self.sampling_rate))

    def frames(self, clip: np.ndarray) -> np.ndarray:
        fft = 1 << (self.window_length - 1).bit_length()  # next power of two
        filters = mel_filter_bank(
            num_frequency_bins=fft // 2 + 1,
            num_mel_filters=self.num_mel_bins,
            min_frequency=0.0,
            max_frequency=self.sampling_rate / 2,
            sampling_rate=self.sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        power = spectrogram(
            np.asarray(clip, dtype=np.float32),
            window_function(self.window_length, "hann"),
            frame_length=self.window_length,
            hop_length=self.hop_length,
            fft_length=fft,
            power=2.0,
            center=True,
            pad_mode="constant",  # silence beyond the clip's ends, never a reflection of it
            mel_filters=filters,
            log_mel="log",
        )
        return power.T


def mel_frames(sample_lengths: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Spectrogram frames of each clip: one centred on every hop from sample 0 (`center=True`)."""
    return torch.div(sample_lengths, hop_length, rounding_mode="floor") + 1


def output_frames(mel_lengths: torch.Tensor, time_strides: list[int]) -> torch.Tensor:
    """Frames after the CNN: a 3-wide, padding-1 convolution with stride s maps n frames to (n - 1) // s + 1."""
    lengths = mel_lengths.clone()
    for stride in time_strides:
        lengths = torch.div(lengths - 1, stride, rounding_mode="floor") + 1
    return lengths


class MelCNN(FrameFeatureEncoder):
    """Standardised log-Mel frames -> 8 convolutions over (frequency, time) -> one state per output frame."""

    def __init__(self, config: MelCNNConfig) -> None:
        super().__init__(config)
        self.convolutions = nn.ModuleList()
        self.norms = nn.ModuleList()
        inputs, bins = 1, config.num_features
        for width, f_stride, t_stride in zip(config.channels, config.frequency_strides, config.time_strides):
            self.convolutions.append(nn.Conv2d(inputs, width, KERNEL, stride=(f_stride, t_stride), padding=1))
            bins = (bins - 1) // f_stride + 1
            self.norms.append(nn.LayerNorm([width, bins]))
            inputs = width
        self.projection = nn.Linear(inputs * bins, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = mask.sum(dim=1)
        maps = self.standardised(features, mask).transpose(1, 2)[:, None]  # [B, 1, mel bins, T]
        for convolution, norm, stride in zip(self.convolutions, self.norms, self.config.time_strides):
            maps = convolution(maps)
            lengths = output_frames(lengths, [stride])
            mask = lengths_to_mask(lengths, maps.shape[-1])
            # LayerNorm over (channels, bins) of each frame alone: no statistic mixes frames (or padding).
            maps = torch.relu(norm(maps.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
            maps = maps * mask[:, None, None, :]
        frames = maps.flatten(1, 2).transpose(1, 2)  # [B, T', channels x bins]
        return self.dropout(self.projection(frames)), mask
