"""openSMILE low-level descriptors read by a small Transformer (paper Table 2, appendix A.2).

The descriptors are the `opensmile` package's feature sets at the level of
low-level descriptors (eGeMAPSv02: 25 descriptors such as loudness, F0,
jitter, formants; ComParE_2016: 65). The sets compute one frame every 10 ms
(over 20-60 ms windows, by descriptor); every second frame is kept, the
paper's 20 ms step (the descriptors are already smoothed over 3 frames, so
nothing is lost between them that the neighbours do not carry). The paper feeds
them to "Transformer models, incorporating between 2 and 4 encoder layers
complemented with positional encoding"; here: standardisation, a linear
projection to the model width, sinusoidal positions, and 2 Transformer
encoder layers whose keys exclude padded frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .frame_features import FrameFeatureConfig, FrameFeatureEncoder, FrameFeatureExtractor

# openSMILE's LLD configurations emit their first frame only once 50 ms of audio are in; a shorter clip is
# padded with silence up to this length so it still has frames.
MIN_SAMPLES = 1_000


class OpenSmileConfig(FrameFeatureConfig):
    model_type = "mmml-opensmile"

    def __init__(self, feature_set: str = "eGeMAPSv02", num_hidden_layers: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_set = feature_set
        self.num_hidden_layers = num_hidden_layers


class OpenSmileFeatureExtractor(FrameFeatureExtractor):
    """One clip's low-level descriptors [frames, descriptors] from openSMILE, `step` x 10 ms apart."""

    def __init__(self, feature_set: str = "eGeMAPSv02", step: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_set = feature_set
        self.step = step  # openSMILE frames (10 ms each) per kept frame: 2 is the paper's 20 ms step

    def _smile(self):
        """The native openSMILE handle, made on first use (opensmile is imported only where it is needed)."""
        if "_smile_handle" not in self.__dict__:
            try:
                import opensmile
            except ImportError as err:
                raise ImportError(
                    "the openSMILE audio encoder needs the opensmile package: pip install 'mmml-annotate[opensmile]' "
                    "(free for research and personal use; audEERING licenses commercial use)"
                ) from err

            if self.feature_set not in opensmile.FeatureSet.__members__:
                known = ", ".join(opensmile.FeatureSet.__members__)
                raise ValueError(f"unknown openSMILE feature set {self.feature_set!r}; known: {known}")
            self._smile_handle = opensmile.Smile(
                feature_set=opensmile.FeatureSet[self.feature_set],
                feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
            )
        return self._smile_handle

    @property
    def feature_names(self) -> list[str]:
        return list(self._smile().feature_names)

    def frames(self, clip: np.ndarray) -> np.ndarray:
        clip = np.asarray(clip, dtype=np.float32)
        if len(clip) < MIN_SAMPLES:
            clip = np.pad(clip, (0, MIN_SAMPLES - len(clip)))
        descriptors = self._smile().process_signal(clip, self.sampling_rate).to_numpy(dtype=np.float32)
        return descriptors[:: self.step]


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """The Transformer's fixed positional encoding [length, width] (sin on even, cos on odd channels)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10_000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: width // 2])
    return table


class OpenSmileEncoder(FrameFeatureEncoder):
    """Standardised descriptors -> linear projection + positions -> Transformer encoder; one state per frame."""

    def __init__(self, config: OpenSmileConfig) -> None:
        super().__init__(config)
        self.projection = nn.Linear(config.num_features, config.hidden_size)
        layer = nn.TransformerEncoderLayer(
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
            config.dropout,
            batch_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.projection(self.standardised(features, mask))
        states = states + sinusoidal_positions(states.shape[1], states.shape[2]).to(states)
        # A clip with no frame would leave its attention rows empty (NaN); let it attend to its padding,
        # whose states are masked out downstream anyway.
        keys = mask | ~mask.any(dim=1, keepdim=True)
        return self.transformer(states, src_key_padding_mask=~keys), mask
