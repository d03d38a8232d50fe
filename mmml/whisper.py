"""Whisper's encoder as an MMML audio feature network (paper 3.1 with another pretrained encoder).

Whisper's encoder is a pretrained speech encoder like Data2Vec: log-mel
frames, two convolutions (the second halves the frame rate to 50 Hz),
sinusoidal-initialised positions, pre-norm Transformer layers. Two things
make it usable inside MMML:

* **Offline weights.** faster-whisper models are CTranslate2 directories
  (`model.bin`). `convert_ctranslate2` reads that file (a documented flat
  list of named arrays) and writes a transformers `WhisperEncoder` directory
  with its feature extractor, so the encoder is fine-tuned in PyTorch like any
  other; the packaged Whisper models therefore double as audio encoders.
* **Clip-length inputs.** Whisper was trained on 30 s windows and its
  transformers forward refuses anything else. `encode_whisper` runs the same
  layers on the clip's own length with a key mask over padded frames, so a
  4 s clip costs 4 s of encoder, not 30, and its states do not depend on
  how much padding its batch carries (`PAD_MARGIN` keeps the STFT and
  convolution windows at the clip's end identical whatever follows).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .atomic import publish_directory, staging_directory
from .config import SAMPLE_RATE

HOP = 160  # samples per mel frame at 16 kHz (10 ms)
SAMPLES_PER_FRAME = 2 * HOP  # the second convolution has stride 2: one encoder frame per 20 ms
# Zeros after every clip: covers the STFT window (400 samples, centred) and the receptive field of
# the two convolutions (5 mel frames), so the last valid frames see the same input at any padding.
PAD_MARGIN = 8 * SAMPLES_PER_FRAME
MAX_SECONDS = 30.0 - PAD_MARGIN / SAMPLE_RATE  # 1500 learned positions cover 30 s, the margin included

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ConversionError(ValueError):
    """A CTranslate2 directory that is not a Whisper model this converter understands."""


def is_whisper(config) -> bool:
    return getattr(config, "model_type", None) == "whisper"


def is_ctranslate2_whisper(directory: str | Path) -> bool:
    """A faster-whisper (CTranslate2) model directory rather than a transformers one.

    Both have a `config.json`; only a transformers one names its `model_type`.
    """
    directory = Path(directory)
    if not (directory / "model.bin").is_file():
        return False
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return True
    return "model_type" not in config


def read_ctranslate2(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, variables) of a CTranslate2 `model.bin`: version, spec, then (name, shape, dtype, bytes)."""
    data = memoryview(Path(path).read_bytes())
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values[0]

    def text() -> str:
        nonlocal offset
        length = take("H")
        value = bytes(data[offset : offset + length - 1]).decode()
        offset += length
        return value

    version = take("I")
    if version < 5:
        raise ConversionError(f"{path}: CTranslate2 binary version {version} is too old (need 5 or newer)")
    spec, _revision, count = text(), take("I"), take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = text()
        shape = [take("I") for _ in range(take("B"))]
        dtype, size = take("B"), take("I")
        if dtype not in _DTYPES:
            raise ConversionError(f"{path}: variable {name} has unsupported data type id {dtype} (bfloat16?)")
        variables[name] = np.frombuffer(data[offset : offset + size], dtype=_DTYPES[dtype]).reshape(shape)
        offset += size
    return spec, variables


def convert_ctranslate2(source: str | Path, target: str | Path) -> Path:
    """Write the encoder of a CTranslate2 Whisper model as a transformers `WhisperEncoder` directory."""
    source, target = Path(source), Path(target)
    spec, variables = read_ctranslate2(source / "model.bin")
    if spec != "WhisperSpec":
        raise ConversionError(f"{source}: a {spec} model, not Whisper")
    weights = {k[len("encoder/") :]: v for k, v in variables.items() if k.startswith("encoder/")}
    if any(v.dtype == np.int8 for v in weights.values()):
        raise ConversionError(f"{source}: int8-quantised weights cannot be fine-tuned; use a float16/float32 model")
    layers = len({k.split("/")[0] for k in weights if re.match(r"layer_\d+/", k)})
    width, mels = weights["conv1/weight"].shape[:2]
    config = WhisperConfig(
        num_mel_bins=int(mels),
        d_model=int(width),
        encoder_layers=layers,
        encoder_attention_heads=int(weights["num_heads"]),
        encoder_ffn_dim=int(weights["layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_layers=1,  # never built: only the encoder is used
        max_source_positions=int(weights["position_encodings/encodings"].shape[0]),
    )
    with torch.random.fork_rng(devices=[]):  # random initial weights, all overwritten: leave the seed alone
        encoder = WhisperEncoder(config)
    state = _encoder_state(weights, layers, int(width))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConversionError(
            f"{source}: encoder weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    encoder.save_pretrained(str(target))
    WhisperFeatureExtractor(feature_size=int(mels)).save_pretrained(str(target))
    return target


def _encoder_state(weights: dict[str, np.ndarray], layers: int, width: int) -> dict[str, torch.Tensor]:
    """CTranslate2 names to transformers names; the fused QKV projection is split (K has no bias)."""

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(weights[name].astype(np.float32))

    state = {
        "conv1.weight": tensor("conv1/weight"),
        "conv1.bias": tensor("conv1/bias"),
        "conv2.weight": tensor("conv2/weight"),
        "conv2.bias": tensor("conv2/bias"),
        "embed_positions.weight": tensor("position_encodings/encodings"),
        "layer_norm.weight": tensor("layer_norm/gamma"),
        "layer_norm.bias": tensor("layer_norm/beta"),
    }
    for i in range(layers):
        src, dst = f"layer_{i}/", f"layers.{i}."
        qkv_weight = tensor(src + "self_attention/linear_0/weight").split(width)
        qkv_bias = tensor(src + "self_attention/linear_0/bias").split(width)
        for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            state[f"{dst}self_attn.{proj}.weight"] = qkv_weight[j]
            if proj != "k_proj":
                state[f"{dst}self_attn.{proj}.bias"] = qkv_bias[j]
        pairs = {
            "self_attn.out_proj": "self_attention/linear_1",
            "fc1": "ffn/linear_0",
            "fc2": "ffn/linear_1",
        }
        for ours, theirs in pairs.items():
            state[f"{dst}{ours}.weight"] = tensor(f"{src}{theirs}/weight")
            state[f"{dst}{ours}.bias"] = tensor(f"{src}{theirs}/bias")
        norms = {"self_attn_layer_norm": "self_attention/layer_norm", "final_layer_norm": "ffn/layer_norm"}
        for ours, theirs in norms.items():
            state[f"{dst}{ours}.weight"] = tensor(f"{src}{theirs}/gamma")
            state[f"{dst}{ours}.bias"] = tensor(f"{src}{theirs}/beta")
    return state


def converted_directory(source: str | Path, cache: Path) -> Path:
    """The converted encoder of a CTranslate2 Whisper directory, made once into `cache`.

    Keyed by the model file's size and mtime, so a replaced model is converted
    again; written to a temporary directory and renamed into place only if no
    other process got there first, so concurrent workers never see half a
    conversion and never replace one another's.
    """
    source = Path(source).resolve()
    stat = (source / "model.bin").stat()
    key = hashlib.sha256(f"{source}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache / f"whisper-encoder-{key}"
    if (target / "config.json").is_file():
        return target
    with staging_directory(target) as staging:
        convert_ctranslate2(source, staging)
        (staging / "source.json").write_text(json.dumps({"converted_from": str(source)}) + "\n")
        publish_directory(staging, target)
    return target


def load_whisper_encoder(directory: str) -> WhisperEncoder:
    """Pretrained encoder weights from a converted directory or a transformers Whisper checkpoint."""
    config = WhisperConfig.from_pretrained(directory)
    if config.architectures and any(a != "WhisperEncoder" for a in config.architectures):
        from transformers import WhisperModel  # a full hub model (openai/whisper-*): keep its encoder only

        return WhisperModel.from_pretrained(directory, trust_remote_code=False).get_encoder()
    return WhisperEncoder.from_pretrained(directory, trust_remote_code=False)


def frame_lengths(sample_lengths: torch.Tensor) -> torch.Tensor:
    """Encoder frames per waveform: one mel frame per hop, halved (rounding up) by the second convolution."""
    mel = torch.div(sample_lengths, HOP, rounding_mode="floor")
    return torch.div(mel + 1, 2, rounding_mode="floor")


def padded_length(longest: int) -> int:
    """Samples every clip of a batch is padded to: the longest clip plus the margin, in whole encoder frames."""
    total = longest + PAD_MARGIN
    return -(-total // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME


def encode_whisper(encoder: WhisperEncoder, input_features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Hidden states [B, T, H] of clip-length log-mel input [B, mels, 2T], padded frames masked as keys."""
    states = torch.nn.functional.gelu(encoder.conv1(input_features))
    states = torch.nn.functional.gelu(encoder.conv2(states)).permute(0, 2, 1)
    frames = states.shape[1]
    if frames > encoder.embed_positions.num_embeddings:
        raise ValueError(f"audio of {frames} encoder frames exceeds Whisper's {MAX_SECONDS:.1f} s")
    states = states + encoder.embed_positions.weight[:frames]
    states = torch.nn.functional.dropout(states, p=encoder.dropout, training=encoder.training)
    # Additive key mask [B, 1, 1, T]; a finite minimum keeps rows with no valid frame free of NaN.
    blocked = torch.finfo(states.dtype).min
    mask = torch.zeros(frame_mask.shape, dtype=states.dtype, device=states.device).masked_fill(~frame_mask, blocked)
    mask = mask[:, None, None, :]
    for layer in encoder.layers:
        states = layer(states, mask)
    return encoder.layer_norm(states)
