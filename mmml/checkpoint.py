"""Self-contained checkpoints: safe to load from strangers, offline.

    <checkpoint>/
      mmml_config.json        ModelConfig (the dataclass tree)
      model.safetensors       every weight: encoders, fusion, heads (no pickle)
      text_encoder/           encoder config + tokenizer files
      audio_encoder/          encoder config + feature-extractor config
      metadata.json           free-form provenance (training config, metrics, ...)
      checksums.json          sha256 of every file above

Loading rebuilds the encoders from their saved configs (never from the hub),
verifies every file against `checksums.json` so a truncated or tampered file
is named before it is used, and never runs remote code. The checkpoint id is
a hash of those checksums: equal ids mean byte-identical checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from transformers.initialization import no_init_weights

from .atomic import recovered, replace_directory, staging_directory
from .config import ModelConfig, load_json, save_json
from .encoders import encoder_from_config
from .integrity import (
    CHECKSUMS_FILE,
    CONFIG_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    checkpoint_id,
    checksums_of,
    verify_checkpoint,
)
from .model import MMML
from .preprocessing import Preprocessor

TEXT_DIR = "text_encoder"
AUDIO_DIR = "audio_encoder"


@dataclass
class Checkpoint:
    model: MMML
    preprocessor: Preprocessor
    config: ModelConfig
    id: str
    directory: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    directory: str | Path, model: MMML, preprocessor: Preprocessor, metadata: dict[str, Any] | None = None
) -> str:
    """Write the checkpoint atomically (a reader never sees half of one); return its id."""
    directory = Path(directory)
    with staging_directory(directory) as staging:
        _write(staging, model, preprocessor, metadata)
        replace_directory(staging, directory)
    return checkpoint_id(directory)


def _write(staging: Path, model: MMML, preprocessor: Preprocessor, metadata: dict[str, Any] | None) -> None:
    save_json(model.config, staging / CONFIG_FILE)
    text_dir = staging / TEXT_DIR if model.text_encoder is not None else None
    audio_dir = staging / AUDIO_DIR if model.audio_encoder is not None else None
    for encoder, target in ((model.text_encoder, text_dir), (model.audio_encoder, audio_dir)):
        if encoder is not None:
            encoder.config.save_pretrained(str(target))
    preprocessor.save(str(text_dir) if text_dir else None, str(audio_dir) if audio_dir else None)
    safetensors.torch.save_model(model, str(staging / WEIGHTS_FILE))
    (staging / METADATA_FILE).write_text(json.dumps(metadata or {}, indent=2, sort_keys=True, default=str) + "\n")
    checksums = checksums_of(staging)
    (staging / CHECKSUMS_FILE).write_text(json.dumps(checksums, indent=2, sort_keys=True) + "\n")


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model and preprocessor, verified, in eval mode on `device`."""
    directory = recovered(Path(directory))
    verify_checkpoint(directory)
    config = load_json(ModelConfig, directory / CONFIG_FILE)
    text_dir = str(directory / TEXT_DIR) if config.uses_text else None
    audio_dir = str(directory / AUDIO_DIR) if config.uses_audio else None
    # Every weight is read from the file below (a missing one is refused), so random initialisation is skipped.
    # no_init_weights swaps torch's init functions process-wide while it lasts: no other thread may build modules.
    with no_init_weights():
        model = MMML(
            config,
            encoder_from_config(text_dir) if text_dir else None,
            encoder_from_config(audio_dir) if audio_dir else None,
        )
    weights = directory / WEIGHTS_FILE
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(weights), strict=False)
    except Exception as err:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"{weights}: cannot read weights ({err})") from err
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not fit the configured model "
            f"(missing: {sorted(missing)[:5]}, unexpected: {sorted(unexpected)[:5]})"
        )
    preprocessor = Preprocessor.from_directories(config, text_dir, audio_dir)
    metadata = json.loads((directory / METADATA_FILE).read_text())
    return Checkpoint(
        model=model.to(device).eval(),
        preprocessor=preprocessor,
        config=config,
        id=checkpoint_id(directory),
        directory=directory,
        metadata=metadata,
    )
