"""A run's own resume point: model, optimiser, RNG and progress after the last finished epoch.

Everything is stored without pickle: tensors (weights, AdamW moments, RNG
states) in safetensors files, everything else (param groups, counters,
history) in JSON. The directory is staged and swapped in whole, so an
interruption leaves either the previous resume point or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from mmml.atomic import recovered, replace_directory, staging_directory

STATE_FILE = "state.json"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


def save_resume_point(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any]
) -> None:
    with staging_directory(directory) as staging:
        safetensors.torch.save_model(model, str(staging / WEIGHTS_FILE))
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        safetensors.torch.save_file(tensors, str(staging / OPTIMIZER_FILE))
        safetensors.torch.save_file(_rng_states(), str(staging / RNG_FILE))
        (staging / STATE_FILE).write_text(
            json.dumps({"progress": progress, "param_groups": groups}, indent=2, sort_keys=True) + "\n"
        )
        replace_directory(staging, directory)


def load_resume_point(directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Restore model, optimiser and RNG in place and return the saved progress; None when there is none."""
    directory = recovered(directory)  # interrupted between the two renames of `save_resume_point`?
    if not (directory / STATE_FILE).is_file():
        return None
    saved = json.loads((directory / STATE_FILE).read_text())
    missing, unexpected = safetensors.torch.load_model(model, str(directory / WEIGHTS_FILE), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{directory}: resume weights do not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    tensors = safetensors.torch.load_file(str(directory / OPTIMIZER_FILE))  # the optimiser moves them to its params
    optimizer.load_state_dict(_unflatten_optimizer(tensors, saved["param_groups"]))
    _restore_rng(safetensors.torch.load_file(str(directory / RNG_FILE)))
    return saved["progress"]


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors = {
        f"{index}.{name}": value.detach().contiguous() if isinstance(value, torch.Tensor) else torch.tensor(value)
        for index, slots in state_dict["state"].items()
        for name, value in slots.items()
    }
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}


def _rng_states() -> dict[str, torch.Tensor]:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return states


def _restore_rng(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["cpu"])
    cuda = [states[f"cuda{i}"] for i in range(len(states) - 1)]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
