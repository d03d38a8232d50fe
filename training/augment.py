"""Recording conditions for training clips: the audio head learns voices, not one studio.

RAVDESS is studio speech; annotated corpora are webcams, phones and TV. A
training clip is heard, with probability `DataConfig.augment`, through one
random chain of real-world degradations from audiomentations: a small
room's reverberation, a telephone band or a muffled low-pass, background
noise (white or coloured) at 5-30 dB SNR, a low-bitrate MP3 codec and a
level change. Validation and test clips are never degraded.

The draw depends only on (seed, epoch, step, position in the batch), so a
resumed run hears the same degradations as an uninterrupted one.

A lent voice (`training.composition`) may also be heard as another
speaker's (`another_speaker`): RAVDESS has 48 neutral training clips of 12
actors, too few voices for "a neutral voice" to mean more than those.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

import numpy as np

from mmml.config import SAMPLE_RATE


def recording_conditions() -> Callable[..., np.ndarray]:
    """One chain of degradations; each link fires with its own probability, so most clips get one or two."""
    # Imported here: audiomentations takes a second to import, and only training with `augment` needs it.
    from audiomentations import (
        AddColorNoise,
        AddGaussianSNR,
        BandPassFilter,
        Compose,
        Gain,
        LowPassFilter,
        Mp3Compression,
        OneOf,
        RoomSimulator,
    )

    return Compose(
        [
            # rt60 mode without ray tracing: a shoebox room's reverberation in ~50 ms per clip.
            RoomSimulator(
                calculation_mode="rt60",
                use_ray_tracing=False,
                max_order=3,
                leave_length_unchanged=True,
                p=0.3,
            ),
            OneOf(
                [
                    BandPassFilter(min_center_freq=900.0, max_center_freq=1300.0, min_bandwidth_fraction=1.5, p=1.0),
                    LowPassFilter(min_cutoff_freq=2500.0, max_cutoff_freq=6000.0, p=1.0),
                ],
                p=0.35,
            ),
            OneOf(
                [AddGaussianSNR(min_snr_db=5.0, max_snr_db=30.0, p=1.0), AddColorNoise(5.0, 30.0, p=1.0)],
                p=0.5,
            ),
            Mp3Compression(min_bitrate=16, max_bitrate=64, p=0.3),
            Gain(min_gain_db=-12.0, max_gain_db=6.0, p=0.5),
        ]
    )


@cache
def _speaker_change() -> Callable[..., np.ndarray]:
    from audiomentations import Compose, PitchShift, TimeStretch

    # signalsmith-stretch: ~20 ms per 3.5 s clip; the pitch moves within a speaker range, the tone is kept.
    return Compose([PitchShift(min_semitones=-4.0, max_semitones=4.0, p=0.8), TimeStretch(0.85, 1.15, False, p=0.5)])


def another_speaker(audio: np.ndarray, speaker: int) -> np.ndarray:
    """`audio` as a speaker drawn by `speaker` would say it: pitch within ±4 semitones, rate within ±15 %."""
    return heard_through(_speaker_change(), audio, speaker)


def heard_through(transform: Callable[..., np.ndarray], audio: np.ndarray, state: int) -> np.ndarray:
    """An audiomentations transform's output for the draw `state`, finite and within [-1, 1]."""
    # audiomentations draws from the `random` and `numpy.random` module states: seed both for this clip.
    random.seed(state)
    np.random.seed(state % 2**32)
    heard = transform(samples=np.ascontiguousarray(audio, dtype=np.float32), sample_rate=SAMPLE_RATE)
    return np.clip(np.nan_to_num(heard), -1.0, 1.0).astype(np.float32)


class Degrader:
    """Degrades a share of training clips, reproducibly per batch position."""

    def __init__(self, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"augment share must be within [0, 1], got {share}")
        self.share = share
        self.chain = recording_conditions()

    def batch(self, *key: int) -> Callable[[np.ndarray, int], np.ndarray]:
        """The degradation of each row of the batch `key` (seed, epoch, step): `training.examples.collate`'s augment."""
        return lambda audio, row: self(audio, (*key, row))

    def __call__(self, audio: np.ndarray, draw: tuple[int, ...]) -> np.ndarray:
        """`audio` as heard in the conditions drawn for `draw` (e.g. (seed, epoch, step, row))."""
        rng = random.Random(hash(draw))
        if rng.random() >= self.share:
            return audio
        return heard_through(self.chain, audio, rng.getrandbits(32))
