"""Whisper's encoder as MMML's audio feature network.

The converted packaged Whisper tiny.en computes what CTranslate2 computes;
clip-length inputs give the same states whatever a batch pads them to; the
frame arithmetic matches the convolutions; every second of a long utterance
reaches the score; checkpoints round-trip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmml import whisper
from mmml.checkpoint import load_checkpoint, save_checkpoint
from mmml.config import AudioEncoderConfig, FusionConfig, ModelConfig
from mmml.encoders import encode_audio, encoder_directory, load_encoder
from mmml.model import MMML
from mmml.preprocessing import Preprocessor
from pipelines.demux import decode_audio
from samples.tiny import build_tiny_audio_encoder, tiny_model_config
from tests.media import speak


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_audio_encoder(tmp_path_factory.mktemp("tiny_whisper"), kind="whisper")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    wav = speak("I really loved this movie, the acting was great.", tmp_path_factory.mktemp("speech") / "a.wav")
    return decode_audio(wav)


def audio_only(encoder: Path | str, max_seconds: float = 15.0) -> ModelConfig:
    return ModelConfig(
        audio=AudioEncoderConfig(str(encoder), max_seconds=max_seconds), fusion=FusionConfig(variant="audio-only")
    )


def test_converted_tiny_en_matches_ctranslate2(speech: np.ndarray, whisper_tiny: str, tmp_path, monkeypatch) -> None:
    """Our PyTorch encoder, converted from the packaged model.bin, against CTranslate2's own encoder."""
    import ctranslate2
    from transformers import WhisperFeatureExtractor

    monkeypatch.setenv("MMML_CACHE", str(tmp_path))
    encoder = load_encoder("packaged:whisper-tiny.en").eval()
    assert Path(encoder_directory("packaged:whisper-tiny.en")).parent == tmp_path  # converted once, into the cache
    features = WhisperFeatureExtractor()(speech, sampling_rate=16_000, return_tensors="np")["input_features"]
    reference = ctranslate2.models.Whisper(whisper_tiny, compute_type="float32").encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=True
    )
    with torch.no_grad():
        ours = whisper.encode_whisper(encoder, torch.from_numpy(features), torch.ones(1, 1500, dtype=torch.bool))
    assert np.abs(np.array(reference) - ours.numpy()).max() < 1e-3


def test_frame_lengths_match_the_convolutions(tiny_whisper: Path) -> None:
    encoder = load_encoder(str(tiny_whisper)).eval()
    preprocessor = Preprocessor.from_config(audio_only(tiny_whisper))
    for seconds in (0.5, 1.0, 3.37):
        samples = int(seconds * 16_000)
        batch = preprocessor(None, [np.zeros(samples, np.float32)])
        with torch.no_grad():
            states, mask = encode_audio(encoder, batch["input_features"], batch["audio_attention_mask"])
        assert mask.shape[1] == states.shape[1]  # the mask covers exactly the encoder's frames
        assert int(mask.sum()) == (samples // 160 + 1) // 2  # 10 ms mel hop, then stride 2
    assert int(whisper.frame_lengths(torch.tensor([16_000]))) == 50  # 50 frames per second


def test_scores_do_not_depend_on_batch_mates(tiny_whisper: Path, speech: np.ndarray) -> None:
    """Clip-length canvases with masked keys: a clip scores the same alone or beside a much longer one."""
    torch.manual_seed(0)
    config = audio_only(tiny_whisper)
    model, preprocessor = MMML.from_config(config).eval(), Preprocessor.from_config(config)
    longer = np.random.default_rng(0).normal(0, 0.1, 16_000 * 9).astype(np.float32)
    with torch.no_grad():
        alone = model(**preprocessor(None, [speech])).fused
        batched = model(**preprocessor(None, [speech, longer])).fused
    assert preprocessor(None, [speech])["input_features"].shape[-1] < 1000  # not a 30 s (3000-frame) canvas
    assert float(alone[0]) == pytest.approx(float(batched[0]), abs=1e-5)


def test_the_last_seconds_of_a_long_utterance_count(tiny_whisper: Path, speech: np.ndarray) -> None:
    """A 14 s utterance (under --max-utterance 15) is scored whole: changing its final 2 s changes the score.

    The control: with a 10 s limit the same change is cut off and the score does not move at all.
    """
    long = np.tile(speech, int(np.ceil(14 * 16_000 / len(speech))))[: 14 * 16_000].copy()
    changed = long.copy()
    changed[-2 * 16_000 :] = 0.0

    def change(max_seconds: float) -> float:
        torch.manual_seed(0)
        config = audio_only(tiny_whisper, max_seconds=max_seconds)
        model, preprocessor = MMML.from_config(config).eval(), Preprocessor.from_config(config)
        with torch.no_grad():
            scores = model(**preprocessor(None, [long, changed])).fused
        return abs(float(scores[0]) - float(scores[1]))

    assert change(10.0) < 1e-7
    assert change(15.0) > 1e-5


def test_whisper_takes_at_most_its_30_second_window(tiny_whisper: Path) -> None:
    with pytest.raises(ValueError, match="exceeds what a Whisper encoder takes"):
        Preprocessor.from_config(audio_only(tiny_whisper, max_seconds=30.0))


def test_fused_checkpoint_with_whisper_round_trips(tiny_backbones: Path, tiny_whisper: Path, speech, tmp_path) -> None:
    config = tiny_model_config(tiny_backbones)
    config.audio = AudioEncoderConfig(str(tiny_whisper), max_seconds=10.0)
    torch.manual_seed(0)
    model, preprocessor = MMML.from_config(config).eval(), Preprocessor.from_config(config)
    batch = preprocessor(["what a great film", None], [speech, speech[:8000]])
    with torch.no_grad():
        before = model(**batch)
    save_checkpoint(tmp_path / "ck", model, preprocessor)
    loaded = load_checkpoint(tmp_path / "ck")
    assert not any(
        p.requires_grad
        for m in (loaded.model.audio_encoder.conv1, loaded.model.audio_encoder.conv2)
        for p in m.parameters()
    )  # the convolutional front end stays frozen (paper 3.1)
    with torch.no_grad():
        after = loaded.model(**loaded.preprocessor(["what a great film", None], [speech, speech[:8000]]))
    for head in ("fused", "text", "audio"):
        np.testing.assert_allclose(getattr(after, head).numpy(), getattr(before, head).numpy(), atol=1e-5)
    assert torch.isnan(after.text[1]) and torch.isfinite(after.fused).all()
