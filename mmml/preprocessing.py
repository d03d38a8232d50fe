"""Turn raw transcripts and waveforms into the tensors `MMML.forward` takes.

Preprocessing is part of the model: the tokenizer and the feature extractor
are saved in every checkpoint and their limits (max tokens, max seconds,
sampling rate, normalisation) live in `ModelConfig`, so training and
annotation can never disagree about them.

Audio goes onto a fixed canvas of `max_seconds` by default, as the authors
trained: wav2vec2-family encoders leak a little padding into valid frames
through their stacked positional convolutions, so only a fixed canvas makes a
clip's score independent of what it is batched with. `pad_to_max=False`
pads to the longest clip instead: faster, but batch-dependent. Whisper and
the hand-crafted feature encoders (`mmml.frame_features`) mask padding
exactly, so they always pad to the batch's longest clip.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoTokenizer,
    FeatureExtractionMixin,
    PreTrainedTokenizerBase,
    WhisperFeatureExtractor,
)

from . import whisper
from .config import ModelConfig
from .encoders import encoder_directory
from .frame_features import FrameFeatureExtractor, lengths_to_mask


class Preprocessor:
    def __init__(
        self,
        config: ModelConfig,
        tokenizer: PreTrainedTokenizerBase | None,
        feature_extractor: FeatureExtractionMixin | None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        # A fast tokenizer sets its padding and truncation on shared Rust state while another thread may be encoding,
        # which fails ("RuntimeError: Already borrowed", huggingface/tokenizers#537, transformers#47085); scoring
        # runs calls side by side in threads (`pipelines.sizing.sized`).
        self._lock = threading.Lock()
        if feature_extractor is not None:
            rate = getattr(feature_extractor, "sampling_rate", config.audio.sampling_rate)
            if rate != config.audio.sampling_rate:
                raise ValueError(f"audio encoder expects {rate} Hz but the config says {config.audio.sampling_rate} Hz")
            if config.audio.normalize is not None:
                feature_extractor.do_normalize = config.audio.normalize
            if self.is_whisper and config.audio.max_seconds > whisper.MAX_SECONDS:
                raise ValueError(
                    f"audio max_seconds {config.audio.max_seconds} exceeds what a Whisper encoder takes "
                    f"({whisper.MAX_SECONDS:.2f} s)"
                )

    @classmethod
    def from_config(cls, config: ModelConfig) -> Preprocessor:
        """Load the tokenizer and feature extractor that belong to the configured encoders."""
        return cls.from_directories(
            config,
            encoder_directory(config.text.name_or_path) if config.uses_text else None,
            encoder_directory(config.audio.name_or_path) if config.uses_audio else None,
        )

    @classmethod
    def from_directories(cls, config: ModelConfig, text_dir: str | None, audio_dir: str | None) -> Preprocessor:
        tokenizer = AutoTokenizer.from_pretrained(text_dir, trust_remote_code=False) if text_dir else None
        extractor = AutoFeatureExtractor.from_pretrained(audio_dir, trust_remote_code=False) if audio_dir else None
        return cls(config, tokenizer, extractor)

    def save(self, text_dir: str | None, audio_dir: str | None) -> None:
        if self.tokenizer is not None and text_dir:
            self.tokenizer.save_pretrained(text_dir)
        if self.feature_extractor is not None and audio_dir:
            self.feature_extractor.save_pretrained(audio_dir)

    @property
    def is_whisper(self) -> bool:
        return isinstance(self.feature_extractor, WhisperFeatureExtractor)

    @property
    def reads_frame_features(self) -> bool:
        """Whether the audio encoder reads hand-crafted frames (openSMILE, log-Mel) rather than a waveform."""
        return isinstance(self.feature_extractor, FrameFeatureExtractor)

    @property
    def fixed_canvas(self) -> bool:
        """Whether every clip is padded to `max_seconds` (wav2vec2 family with `pad_to_max`).

        Whisper and the feature encoders mask padded frames exactly, so they
        pad only to the batch's longest clip: same scores, less compute.
        """
        return self.config.audio.pad_to_max and not (self.is_whisper or self.reads_frame_features)

    @property
    def max_samples(self) -> int:
        return int(round(self.config.audio.max_seconds * self.config.audio.sampling_rate))

    def __call__(
        self, texts: Sequence[str | None] | None = None, audios: Sequence[np.ndarray | None] | None = None
    ) -> dict[str, torch.Tensor]:
        """A batch for `MMML.forward`; `None` (or empty) marks a missing modality for a sample."""
        size = len(texts) if texts is not None else len(audios) if audios is not None else 0
        if size == 0:
            raise ValueError("empty batch: give at least one text or audio clip")
        batch: dict[str, torch.Tensor] = {}
        if self.config.uses_text:
            with self._lock:
                batch.update(self._text(texts if texts is not None else [None] * size))
        if self.config.uses_audio:
            batch.update(self._audio(audios if audios is not None else [None] * size))
        return batch

    def prepared_text(self, text: str) -> str:
        """A transcript as the text encoder sees it, in training and annotation alike."""
        return recased(text) if self.config.text.recase else text

    def _text(self, texts: Sequence[str | None]) -> dict[str, torch.Tensor]:
        present = [bool(t and t.strip()) for t in texts]
        encoded = self.tokenizer(
            [self.prepared_text(t) if ok else "" for t, ok in zip(texts, present)],
            padding=True,
            truncation=True,
            max_length=self.config.text.max_tokens,
            return_tensors="pt",
        )
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "text_present": torch.tensor(present),
        }

    def _audio(self, audios: Sequence[np.ndarray | None]) -> dict[str, torch.Tensor]:
        present = [a is not None and len(a) > 0 for a in audios]
        clips = [
            _mono_float32(a)[: self.max_samples] if ok else np.zeros(1, dtype=np.float32)
            for a, ok in zip(audios, present)
        ]
        if self.is_whisper:
            return {**self._log_mel(clips), "audio_present": torch.tensor(present)}
        if self.reads_frame_features:
            return {**self.feature_extractor(clips), "audio_present": torch.tensor(present)}
        encoded = self.feature_extractor(
            clips,
            sampling_rate=self.config.audio.sampling_rate,
            padding="max_length" if self.fixed_canvas else "longest",
            max_length=self.max_samples,
            truncation=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return {
            "input_values": encoded["input_values"],
            "audio_attention_mask": encoded["attention_mask"],
            "audio_present": torch.tensor(present),
        }

    def _log_mel(self, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Whisper's log-mel features on a clip-length canvas (not 30 s), with the true sample counts as a mask."""
        length = whisper.padded_length(max(len(c) for c in clips))
        features = self.feature_extractor(
            clips,
            sampling_rate=self.config.audio.sampling_rate,
            padding="max_length",
            max_length=length,
            truncation=True,
            do_normalize=bool(self.config.audio.normalize),
            return_tensors="pt",
        )["input_features"]
        lengths = torch.tensor([len(c) for c in clips])
        return {"input_features": features, "audio_attention_mask": lengths_to_mask(lengths, length)}


def recased(text: str) -> str:
    """The authors' MOSI/MOSEI re-casing: the first character as written, the rest lower-cased."""
    return text[:1] + text[1:].lower()


def _mono_float32(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono 1-D samples, got shape {audio.shape}")
    return audio
