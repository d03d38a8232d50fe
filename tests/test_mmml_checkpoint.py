"""Checkpoints: offline round trip in a fresh process, tamper detection, content ids, packaged encoders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmml.checkpoint import CheckpointError, checkpoint_id, load_checkpoint, save_checkpoint
from mmml.config import AudioEncoderConfig, FusionConfig, ModelConfig, TextEncoderConfig, from_dict, preset, to_dict
from mmml.model import MMML
from mmml.packaged import OFFLINE_ENV
from mmml.preprocessing import Preprocessor

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a wonderful surprise", "dull"]

SCORE_SCRIPT = """
import json, sys
import numpy as np, torch
from mmml.checkpoint import load_checkpoint
ck = load_checkpoint(sys.argv[1])
rng = np.random.default_rng(0)
audios = [rng.standard_normal(n).astype(np.float32) for n in (12000, 30000)]
with torch.no_grad():
    s = ck.model(**ck.preprocessor(json.loads(sys.argv[2]), audios))
print(json.dumps({"id": ck.id, "fused": s.fused.tolist(), "text": s.text.tolist(), "audio": s.audio.tolist()}))
"""


def _score_here(directory: Path) -> dict:
    ck = load_checkpoint(directory)
    rng = np.random.default_rng(0)
    audios = [rng.standard_normal(n).astype(np.float32) for n in (12000, 30000)]
    with torch.no_grad():
        s = ck.model(**ck.preprocessor(TEXTS, audios))
    return {"id": ck.id, "fused": s.fused.tolist(), "text": s.text.tolist(), "audio": s.audio.tolist()}


def test_round_trip_in_a_fresh_offline_process_gives_identical_scores(tiny_checkpoint: Path, tmp_path: Path) -> None:
    env = {**os.environ, **OFFLINE_ENV, "HF_HOME": str(tmp_path / "empty_hf")}
    out = subprocess.run(
        [sys.executable, "-c", SCORE_SCRIPT, str(tiny_checkpoint), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == _score_here(tiny_checkpoint)


def test_saved_trained_weights_are_restored_exactly(tiny_backbones: Path, tmp_path: Path) -> None:
    from samples.tiny import tiny_model_config

    config = tiny_model_config(tiny_backbones, "fused+concat")
    model = MMML.from_config(config)
    with torch.no_grad():  # make the weights differ from any fresh initialisation
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_checkpoint(tmp_path / "ck", model, Preprocessor.from_config(config), metadata={"epoch": 3})
    loaded = load_checkpoint(tmp_path / "ck")
    original, restored = model.state_dict(), loaded.model.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert loaded.metadata == {"epoch": 3}
    assert loaded.config.fusion.variant == "fused+concat"
    assert not loaded.model.training


def test_checkpoint_id_is_a_content_hash(tiny_checkpoint: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_checkpoint, copy)
    assert checkpoint_id(copy) == checkpoint_id(tiny_checkpoint)
    assert len(checkpoint_id(copy)) == 16
    ck = load_checkpoint(copy)
    ck.model.fused_head.net[-1].bias.data += 1.0
    save_checkpoint(copy, ck.model, ck.preprocessor)
    assert checkpoint_id(copy) != checkpoint_id(tiny_checkpoint)


def _copy_with_weights(checkpoint: Path, tmp_path: Path) -> tuple[Path, Path]:
    copy = tmp_path / "bad"
    shutil.copytree(checkpoint, copy)
    return copy, copy / "model.safetensors"


def test_tampered_weights_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    bad, weights = _copy_with_weights(tiny_checkpoint, tmp_path)
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*does not match"):
        load_checkpoint(bad)


def test_truncated_weights_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    bad, weights = _copy_with_weights(tiny_checkpoint, tmp_path)
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_checkpoint(bad)


def test_truncated_weights_with_matching_checksums_still_fail_clearly(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Someone who also rewrites checksums.json cannot slip a broken file past safetensors."""
    import hashlib

    bad, weights = _copy_with_weights(tiny_checkpoint, tmp_path)
    weights.write_bytes(weights.read_bytes()[:1000])
    sums = json.loads((bad / "checksums.json").read_text())
    sums["model.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (bad / "checksums.json").write_text(json.dumps(sums))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot read weights"):
        load_checkpoint(bad)


def test_missing_or_incomplete_directories_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    shutil.copytree(tiny_checkpoint, partial)
    (partial / "text_encoder" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"text_encoder/config\.json: missing"):
        load_checkpoint(partial)


def test_checkpoint_contains_no_pickle(tiny_checkpoint: Path) -> None:
    suffixes = {p.suffix for p in tiny_checkpoint.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".safetensors", ".txt"}, suffixes


def test_config_tree_round_trips_and_rejects_unknown_keys() -> None:
    config = preset("zh")
    assert from_dict(ModelConfig, to_dict(config)) == config
    assert config.text.name_or_path == "hfl/chinese-roberta-wwm-ext" and config.text.max_tokens == 64
    assert preset("en").audio.name_or_path == "facebook/data2vec-audio-base"
    bad = to_dict(config)
    bad["fusion"]["layer"] = 3
    with pytest.raises(ValueError, match="unknown field"):
        from_dict(ModelConfig, bad)


def test_packaged_minilm_loads_through_the_hub_code_path(tiny_backbones: Path, tmp_path: Path) -> None:
    """The real MiniLM (384 wide, BERT tokenizer) fuses with a 32-wide audio encoder via projection."""
    config = ModelConfig(
        text=TextEncoderConfig("packaged:all-minilm-l6-v2", max_tokens=32),
        audio=AudioEncoderConfig(str(tiny_backbones / "audio"), max_seconds=2.0),
        fusion=FusionConfig(variant="fused", layers=1, hidden_size=32, heads=4, ffn_size=64),
    )
    model = MMML.from_config(config)
    assert type(model.text_encoder).__name__ == "BertModel"
    pre = Preprocessor.from_config(config)
    with torch.no_grad():
        scores = model.eval()(**pre(TEXTS, [np.zeros(16000, np.float32), None]))
    assert torch.isfinite(scores.fused).all() and torch.isfinite(scores.text).all()
    save_checkpoint(tmp_path / "minilm", model, pre)
    loaded = load_checkpoint(tmp_path / "minilm")
    with torch.no_grad():
        again = loaded.model(**loaded.preprocessor(TEXTS, [np.zeros(16000, np.float32), None]))
    assert torch.equal(again.fused, scores.fused)
