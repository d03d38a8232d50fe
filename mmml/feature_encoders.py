"""Hand-crafted audio feature encoders by name, plugged in wherever a pretrained encoder's name goes.

    opensmile:eGeMAPSv02     openSMILE eGeMAPS low-level descriptors -> Transformer  (`mmml.opensmile_encoder`)
    opensmile:ComParE_2016   openSMILE ComParE low-level descriptors -> Transformer
    mel-cnn                  128-bin log-Mel spectrogram -> 8-layer CNN              (`mmml.mel_cnn`)

A name becomes a directory holding the encoder's `config.json` and its
feature extractor's `preprocessor_config.json`, made once in the cache like a
converted Whisper encoder, so training, checkpoints and annotation load it
through the same transformers `Auto*` calls as any other encoder (the
classes are registered with them here, in-process: no remote code). The
weights are never in that directory: these encoders start from random
weights and are trained from scratch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from transformers import AutoConfig, AutoFeatureExtractor, PretrainedConfig

from .atomic import publish_directory, staging_directory
from .frame_features import FrameFeatureConfig, FrameFeatureEncoder, FrameFeatureExtractor
from .mel_cnn import LogMelFeatureExtractor, MelCNN, MelCNNConfig
from .opensmile_encoder import OpenSmileConfig, OpenSmileEncoder, OpenSmileFeatureExtractor

OPENSMILE = "opensmile:"
MEL_CNN = "mel-cnn"
ENCODERS: dict[type[FrameFeatureConfig], type[FrameFeatureEncoder]] = {
    OpenSmileConfig: OpenSmileEncoder,
    MelCNNConfig: MelCNN,
}

for _config, _extractor in ((OpenSmileConfig, OpenSmileFeatureExtractor), (MelCNNConfig, LogMelFeatureExtractor)):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    AutoFeatureExtractor.register(_config, _extractor, exist_ok=True)


def is_feature_encoder(name: str) -> bool:
    return name.startswith(OPENSMILE) or name == MEL_CNN


def parts(name: str) -> tuple[FrameFeatureConfig, FrameFeatureExtractor]:
    """The encoder config and feature extractor a name stands for, with the paper's settings."""
    if name == MEL_CNN:
        extractor = LogMelFeatureExtractor()
        return MelCNNConfig(num_features=extractor.num_mel_bins), extractor
    if name.startswith(OPENSMILE):
        feature_set = name[len(OPENSMILE) :]
        extractor = OpenSmileFeatureExtractor(feature_set)
        return OpenSmileConfig(feature_set, num_features=len(extractor.feature_names)), extractor
    raise ValueError(f"{name!r} names no feature encoder (use {OPENSMILE}<feature set> or {MEL_CNN})")


def feature_encoder_directory(name: str, cache: Path) -> Path:
    """The directory standing for `name`: its configs, written once (keyed by their content)."""
    config, extractor = parts(name)
    content = config.to_json_string() + extractor.to_json_string()
    key = hashlib.sha256(content.encode()).hexdigest()[:16]
    target = cache / f"{name.replace(':', '-')}-{key}"
    if (target / "config.json").is_file():
        return target
    with staging_directory(target) as staging:
        config.save_pretrained(str(staging))
        extractor.save_pretrained(str(staging))
        (staging / "source.json").write_text(json.dumps({"feature_encoder": name}) + "\n")
        publish_directory(staging, target)
    return target


def is_feature_config(config: PretrainedConfig) -> bool:
    return type(config) in ENCODERS


def build_encoder(config: FrameFeatureConfig) -> FrameFeatureEncoder:
    """A feature encoder with random weights (training starts here; a checkpoint loads its own over them)."""
    return ENCODERS[type(config)](config)
