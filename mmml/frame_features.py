"""Hand-crafted audio features as an MMML audio encoder (paper Table 2's feature rows).

Paper section 4.3 compares the pretrained audio encoder against two classic
front ends: openSMILE low-level descriptors (`mmml.opensmile_encoder`) and a
log-Mel spectrogram read by a CNN (`mmml.mel_cnn`). Both split the same way:

* a **feature extractor** that turns each clip's waveform into a matrix of
  frames [T, F] with no learned weights (it is not differentiable, so it runs
  in preprocessing, clip by clip, and a batch is the clips' frames padded
  with a frame mask: a clip's features never depend on its batch mates);
* a **feature encoder**, trained from scratch, that standardises each
  feature with statistics of the training set (kept as buffers, so they
  travel in the checkpoint's safetensors) and turns the frames into hidden
  states [B, T', H] plus their mask, which the rest of MMML reads exactly as
  it reads a pretrained encoder's states.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import FeatureExtractionMixin, PretrainedConfig

from .config import SAMPLE_RATE

# Features of recently seen clips kept in memory, for the whole process (every seed of a run makes a new
# extractor): training reads every clip once per epoch and openSMILE costs ~25 ms per second of audio, far
# more than the small encoders it feeds. Bounded, so a scoring worker that never sees a clip twice holds at
# most this much.
MEMO_BYTES = 96 * 2**20


class _Memo:
    """Least recently used features by (extractor settings, clip content), at most MEMO_BYTES in all."""

    def __init__(self) -> None:
        self.entries: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self.held = 0
        self.lock = threading.Lock()

    def get(self, key: tuple[str, bytes]) -> np.ndarray | None:
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
            return self.entries.get(key)

    def put(self, key: tuple[str, bytes], features: np.ndarray) -> None:
        with self.lock:
            if key not in self.entries:
                self.entries[key] = features
                self.held += features.nbytes
            while self.held > MEMO_BYTES and len(self.entries) > 1:
                self.held -= self.entries.popitem(last=False)[1].nbytes


_MEMO = _Memo()


class FrameFeatureExtractor(FeatureExtractionMixin):
    """Waveforms to padded frame features: `input_features` [B, T, F] and `audio_attention_mask` [B, T].

    Subclasses define `frames`, the features of one clip. The mask here is a
    frame mask, not a sample mask: the frames are counted, not derived.
    """

    model_input_names = ["input_features", "audio_attention_mask"]

    def __init__(self, sampling_rate: int = SAMPLE_RATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sampling_rate = sampling_rate

    def frames(self, clip: np.ndarray) -> np.ndarray:
        """Features [T, F] (float32, finite) of one mono clip at `sampling_rate`."""
        raise NotImplementedError

    def clip_frames(self, clip: np.ndarray) -> np.ndarray:
        """`frames(clip)`, remembered for clips seen recently (by content, so a re-read clip is a hit)."""
        settings = self.__dict__.get("_settings") or json.dumps(self.to_dict(), sort_keys=True)
        self._settings = settings
        content = hashlib.blake2b(np.ascontiguousarray(clip, dtype=np.float32).tobytes(), digest_size=16).digest()
        features = _MEMO.get((settings, content))
        if features is None:
            features = np.nan_to_num(self.frames(clip).astype(np.float32, copy=False))
            _MEMO.put((settings, content), features)
        return features

    def __call__(self, clips: Sequence[np.ndarray], **_: Any) -> dict[str, torch.Tensor]:
        return pad_frames([self.clip_frames(clip) for clip in clips])

    def to_dict(self) -> dict[str, Any]:
        """The saved settings: public attributes only (cached values and any native handle stay out)."""
        saved = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {**saved, "feature_extractor_type": type(self).__name__}


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean mask [B, max_length], True at valid positions."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def pad_frames(per_clip: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """Clips' frames [T_i, F] zero-padded to [B, max T_i, F], with the frame mask [B, max T_i]."""
    longest = max(1, *(len(f) for f in per_clip))
    width = per_clip[0].shape[1]
    features = torch.zeros(len(per_clip), longest, width)
    for row, frames in enumerate(per_clip):
        features[row, : len(frames)] = torch.from_numpy(np.ascontiguousarray(frames))
    lengths = torch.tensor([len(frames) for frames in per_clip])
    return {"input_features": features, "audio_attention_mask": lengths_to_mask(lengths, longest)}


class FeatureStandardiser(nn.Module):
    """Per-feature (x - mean) / std with the training set's statistics, stored as (saved) buffers.

    Descriptors such as F0 in Hz, loudness and spectral slopes differ by
    orders of magnitude; a network trained from scratch needs them on one
    scale, and the scale must be the training set's at inference too.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    @torch.no_grad()
    def fit(self, clips: Iterable[np.ndarray]) -> int:
        """Set mean and std over every frame of `clips` ([T, F] each); returns the number of frames.

        A feature that never varies (std below 1e-6) is only centred.
        """
        count, total, squares = 0, np.zeros(len(self.mean)), np.zeros(len(self.mean))
        for frames in clips:
            frames = frames.astype(np.float64)
            count += len(frames)
            total += frames.sum(axis=0)
            squares += (frames**2).sum(axis=0)
        if count == 0:
            raise ValueError("no frames to compute feature statistics from")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        self.mean.copy_(torch.from_numpy(mean))
        self.std.copy_(torch.from_numpy(np.where(std < 1e-6, 1.0, std)))
        return count


class FrameFeatureConfig(PretrainedConfig):
    """What every feature encoder's config says: its input width and the width of its states.

    `num_attention_heads` and `intermediate_size` size the fusion network
    when this is the model's only encoder (`audio-only` reads neither).
    """

    def __init__(
        self,
        num_features: int = 1,
        hidden_size: int = 64,
        num_attention_heads: int = 4,
        intermediate_size: int = 256,
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout


class FrameFeatureEncoder(nn.Module):
    """Frames [B, T, F] and their mask to hidden states [B, T', H] and theirs; trained from scratch."""

    def __init__(self, config: FrameFeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.standardiser = FeatureStandardiser(config.num_features)

    def standardised(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Standardised features with padded frames at exactly 0."""
        return self.standardiser(features) * mask[..., None]

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
