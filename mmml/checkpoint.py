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

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from .config import ModelConfig, load_json, save_json
from .encoders import encoder_from_config
from .model import MMML
from .preprocessing import Preprocessor

CONFIG_FILE = "mmml_config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
CHECKSUMS_FILE = "checksums.json"
TEXT_DIR = "text_encoder"
AUDIO_DIR = "audio_encoder"


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, incomplete or altered."""


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
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()

    save_json(model.config, staging / CONFIG_FILE)
    text_dir = staging / TEXT_DIR if model.text_encoder is not None else None
    audio_dir = staging / AUDIO_DIR if model.audio_encoder is not None else None
    for encoder, target in ((model.text_encoder, text_dir), (model.audio_encoder, audio_dir)):
        if encoder is not None:
            encoder.config.save_pretrained(str(target))
    preprocessor.save(str(text_dir) if text_dir else None, str(audio_dir) if audio_dir else None)
    safetensors.torch.save_model(model, str(staging / WEIGHTS_FILE))
    (staging / METADATA_FILE).write_text(json.dumps(metadata or {}, indent=2, sort_keys=True, default=str) + "\n")
    checksums = {path: _sha256(staging / path) for path in _files(staging)}
    (staging / CHECKSUMS_FILE).write_text(json.dumps(checksums, indent=2, sort_keys=True) + "\n")

    _replace_directory(staging, directory)
    return checkpoint_id(directory)


def checkpoint_id(directory: str | Path) -> str:
    """16 hex digits naming the checkpoint's exact content."""
    checksums = _read_checksums(Path(directory))
    return hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()[:16]


def verify_checkpoint(directory: str | Path) -> None:
    """Raise `CheckpointError` naming the first file that is missing or differs from its checksum."""
    directory = Path(directory)
    for relative, expected in _read_checksums(directory).items():
        path = directory / relative
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from checkpoint")
        if _sha256(path) != expected:
            raise CheckpointError(f"{path}: content does not match checksums.json (truncated or modified)")


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model and preprocessor, verified, in eval mode on `device`."""
    directory = Path(directory)
    verify_checkpoint(directory)
    config = load_json(ModelConfig, directory / CONFIG_FILE)
    text_dir = str(directory / TEXT_DIR) if config.uses_text else None
    audio_dir = str(directory / AUDIO_DIR) if config.uses_audio else None
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


def _read_checksums(directory: Path) -> dict[str, str]:
    path = directory / CHECKSUMS_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a checkpoint directory")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {directory} is not a complete MMML checkpoint")
    try:
        checksums = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    for required in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE):
        if required not in checksums:
            raise CheckpointError(f"{path}: does not list {required}")
    return checksums


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _replace_directory(staging: Path, target: Path) -> None:
    if target.exists():
        retired = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)
