"""One dataclass tree configures the model; it is saved beside every checkpoint.

The training and annotation configurations nest `ModelConfig` (or point at a
checkpoint that carries one), so a single JSON document always says how a
number in an output file was produced. `to_dict`/`from_dict` work for any
dataclass tree in the project, not only this one.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from .atomic import write_text_atomic

T = TypeVar("T")

SAMPLE_RATE = 16_000  # Hz: what Whisper, Silero VAD and the paper's audio encoders read; the project's one rate

LossKind = Literal["mse", "l1"]  # the multi-loss terms: paper L2, the authors' code L1
FusionVariant = Literal["fused", "concat", "fused+concat", "fused+transformer", "text-only", "audio-only"]
FUSION_VARIANTS: tuple[str, ...] = typing.get_args(FusionVariant)
TextPooling = Literal["cls", "mean"]
TEXT_POOLINGS: tuple[str, ...] = typing.get_args(TextPooling)


@dataclass
class TextEncoderConfig:
    """Pretrained text feature network (paper 3.1) and its tokenisation."""

    name_or_path: str = "roberta-large"
    max_tokens: int = 96  # authors: 96 English, 64 Mandarin
    # Authors: MOSI/MOSEI text re-cased, first character kept and the rest lower-cased, which makes MOSEI's
    # cased transcripts look like MOSI's lower-cased ones. Part of the model's preprocessing, so annotation
    # re-cases Whisper's transcripts the same way (`mmml.preprocessing.recased`).
    recase: bool = True
    # Languages (Whisper's codes) the encoder reads; empty: the model's `language`. Words in any other language
    # would get a confident, meaningless text score, so annotation scores such utterances from their audio alone.
    languages: tuple[str, ...] = ()
    # What the text head reads: the first token's state ("cls", the paper's RoBERTa) or the mean over the tokens
    # ("mean"), the pooling sentence encoders such as MiniLM were trained with (in the default recipe it scored no
    # better: training/RESULTS.md, "What was tried").
    pooling: TextPooling = "cls"

    # Models saved before `recase` existed saw text as written (see `from_dict`).
    SAVED_BEFORE_FIELD_EXISTED: ClassVar[dict[str, Any]] = {"recase": False}


@dataclass
class AudioEncoderConfig:
    """Pretrained audio feature network (paper 3.1) and its waveform preprocessing."""

    name_or_path: str = "facebook/data2vec-audio-base"
    max_seconds: float = 6.0  # authors: 6 s, longer clips are truncated
    sampling_rate: int = SAMPLE_RATE
    # Zero-mean unit-variance waveforms per clip; None keeps the encoder's own convention
    # (its feature extractor's do_normalize: on for Data2Vec, off for Whisper).
    normalize: bool | None = None
    # Fixed max_seconds canvas: scores independent of batch mates for wav2vec2-family encoders.
    # Ignored by Whisper, which masks padded frames exactly and pads only to the batch's longest clip.
    pad_to_max: bool = True
    freeze_feature_extractor: bool = True  # the convolutional front end stays frozen


@dataclass
class FusionConfig:
    """The fusion network of paper 3.2 and the variants of paper 3.4.

    Widths default to the text encoder's (`None`): 768/12/3072 for base
    encoders, 1024/16/4096 for large ones.
    """

    variant: FusionVariant = "fused"
    layers: int = 5
    hidden_size: int | None = None
    heads: int | None = None
    ffn_size: int | None = None
    dropout: float = 0.3
    head_hidden_size: int | None = None  # width of the three-layer regression MLP
    # Paper 3.3: each modality's head in a multimodal model is "an additional fully-connected layer";
    # a single-modality model's one head is its answer and keeps the three-layer MLP.
    modality_head_layers: int = 1
    # fused+transformer: Transformer encoder layers re-encoding each modality (None: the authors' 3 for
    # English, 2 for Chinese).
    readout_layers: int | None = None
    # Dynamic fusion (heads.ModalityGate): the fused score mixes the text head, the audio head and the fused head
    # with per-utterance weights. Needs both modalities.
    gate: bool = False

    # Models saved before these fields existed had three-layer modality heads and a one-layer readout (see `from_dict`).
    SAVED_BEFORE_FIELD_EXISTED: ClassVar[dict[str, Any]] = {"modality_head_layers": 3, "readout_layers": 1}


@dataclass
class ModelConfig:
    """Everything needed to rebuild an MMML network around two encoders."""

    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    language: str = "en"

    def __post_init__(self) -> None:
        if self.fusion.variant not in FUSION_VARIANTS:
            raise ValueError(
                f"unknown fusion variant {self.fusion.variant!r}; choose one of {', '.join(FUSION_VARIANTS)}"
            )
        if self.fusion.gate and not (self.uses_text and self.uses_audio):
            raise ValueError(f"the fusion gate mixes two modalities; variant {self.fusion.variant!r} has one")
        if self.text.pooling not in TEXT_POOLINGS:
            raise ValueError(f"unknown text pooling {self.text.pooling!r}; choose one of {', '.join(TEXT_POOLINGS)}")

    @property
    def uses_text(self) -> bool:
        return self.fusion.variant != "audio-only"

    @property
    def text_languages(self) -> tuple[str, ...]:
        """The languages whose words the text encoder reads."""
        return self.text.languages or (self.language,)

    @property
    def uses_audio(self) -> bool:
        return self.fusion.variant != "text-only"


PRESETS: dict[str, ModelConfig] = {
    # Paper 3.1: RoBERTa + Data2Vec for English, RoBERTa-wwm + HuBERT for Mandarin.
    "en": ModelConfig(
        text=TextEncoderConfig("roberta-large", max_tokens=96),
        audio=AudioEncoderConfig("facebook/data2vec-audio-base"),
        language="en",
    ),
    "zh": ModelConfig(
        text=TextEncoderConfig("hfl/chinese-roberta-wwm-ext", max_tokens=64),
        audio=AudioEncoderConfig("TencentGameMate/chinese-hubert-base"),
        language="zh",
    ),
}


def preset(language: str) -> ModelConfig:
    """A fresh copy of the paper's encoder choice for `language` ('en' or 'zh')."""
    if language not in PRESETS:
        raise ValueError(f"no preset for language {language!r}; known: {', '.join(PRESETS)}")
    return from_dict(ModelConfig, to_dict(PRESETS[language]))


def to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-ready dict of any dataclass tree."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass tree, rejecting unknown keys so typos in saved configs surface.

    A field missing from `data` was saved before the field existed. It takes
    the value the class's `SAVED_BEFORE_FIELD_EXISTED` maps it to, the value
    those older configs meant, where that differs from today's default (e.g.
    `modality_head_layers`: 3 for a saved config without it, 1 for a new
    `FusionConfig()`): a saved model must keep meaning the model it was.
    Other missing fields take the dataclass default.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    data = {**getattr(cls, "SAVED_BEFORE_FIELD_EXISTED", {}), **data}
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value)
    if origin in (tuple,) and isinstance(value, list):
        items = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(items) == 1 and dataclasses.is_dataclass(items[0]):
            return tuple(_coerce(items[0], item) for item in value)
        return tuple(value)
    return value


def save_json(config: Any, path: str | Path) -> None:
    write_text_atomic(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n", path)


def load_json(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return from_dict(cls, data)
