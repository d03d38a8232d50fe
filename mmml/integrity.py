"""Checkpoint integrity without torch: checksums, verification and the content id.

Kept apart from `mmml.checkpoint` so that processes which only need to know
*which* checkpoint they were given, that it is intact, and how much audio it
reads (the annotation driver), never import torch or transformers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CONFIG_FILE = "mmml_config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
CHECKSUMS_FILE = "checksums.json"


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, incomplete or altered."""


def checkpoint_id(directory: str | Path) -> str:
    """16 hex digits naming the checkpoint's exact content."""
    checksums = _read_checksums(Path(directory))
    return hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()[:16]


def audio_seconds(directory: str | Path) -> float | None:
    """Seconds of audio the checkpoint's model reads per utterance (`audio.max_seconds`); None if it reads none."""
    config = json.loads((Path(directory) / CONFIG_FILE).read_text())
    if config.get("fusion", {}).get("variant") == "text-only":
        return None
    return float(config["audio"]["max_seconds"])


def text_languages(directory: str | Path) -> tuple[str, ...]:
    """Languages whose words the checkpoint's text encoder reads (`ModelConfig.text_languages`); none if it reads no
    text."""
    from .config import ModelConfig, load_json  # the checkpoint's configuration, read as loading it would

    config = load_json(ModelConfig, Path(directory) / CONFIG_FILE)
    return config.text_languages if config.uses_text else ()


def verify_checkpoint(directory: str | Path) -> None:
    """Raise `CheckpointError` naming the first file that is missing or differs from its checksum."""
    directory = Path(directory)
    for relative, expected in _read_checksums(directory).items():
        path = directory / relative
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from checkpoint")
        if _sha256(path) != expected:
            raise CheckpointError(f"{path}: content does not match checksums.json (truncated or modified)")


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


def checksums_of(root: Path) -> dict[str, str]:
    """sha256 of every file below `root`, by relative path: what `checksums.json` records."""
    return {str(p.relative_to(root)): _sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
