"""The MMML network: shapes per variant, gradient flow, padding invariance, missing modalities."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mmml.config import FUSION_VARIANTS, FusionConfig, ModelConfig
from mmml.heads import ModalityGate
from mmml.losses import multi_loss
from mmml.model import MMML
from mmml.preprocessing import Preprocessor
from samples.tiny import tiny_model_config

TEXTS = ["I loved it", "the worst film I have seen, boring and far too long, what a waste", "okay"]


def _audios(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32) for n in (8_000, 40_000, 20_000)]


# Every fusion variant, and the two readouts most used with the dynamic-fusion gate.
BUILDS = [(v, False) for v in FUSION_VARIANTS] + [("fused+concat", True), ("concat", True)]


def _build(backbones: Path, variant: str, gate: bool = False) -> tuple[MMML, Preprocessor, ModelConfig]:
    config = tiny_model_config(backbones, variant)
    config = replace(config, fusion=replace(config.fusion, gate=gate))
    torch.manual_seed(0)
    return MMML.from_config(config), Preprocessor.from_config(config), config


@pytest.mark.parametrize(("variant", "gate"), BUILDS)
def test_every_variant_scores_each_sample(tiny_backbones: Path, variant: str, gate: bool) -> None:
    model, pre, config = _build(tiny_backbones, variant, gate)
    with torch.no_grad():
        scores = model.eval()(**pre(TEXTS, _audios()))
    assert scores.fused.shape == (3,)
    assert torch.isfinite(scores.fused).all()
    assert (scores.text is not None) == config.uses_text
    assert (scores.audio is not None) == config.uses_audio
    for head in (scores.text, scores.audio):
        if head is not None:
            assert head.shape == (3,) and torch.isfinite(head).all()


@pytest.mark.parametrize(("variant", "gate"), BUILDS)
def test_gradients_reach_every_trainable_parameter_but_not_the_frozen_cnn(
    tiny_backbones: Path, variant: str, gate: bool
) -> None:
    model, pre, config = _build(tiny_backbones, variant, gate)
    model.train()
    scores = model(**pre(TEXTS, _audios()))
    target = torch.tensor([1.0, -2.0, 0.5])
    loss = multi_loss(scores, {"fused": target, "text": target, "audio": target}, {"fused": 1, "text": 1, "audio": 1})
    loss.backward()
    starved = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert starved == []
    if config.uses_audio:
        cnn = list(model.audio_encoder.feature_extractor.parameters())
        assert cnn and all(not p.requires_grad and p.grad is None for p in cnn)


@pytest.mark.parametrize(("variant", "gate"), BUILDS)
def test_padding_does_not_change_scores(tiny_backbones: Path, variant: str, gate: bool) -> None:
    """A sample scored inside a padded batch scores the same as alone (the padding is masked exactly)."""
    model, pre, _ = _build(tiny_backbones, variant, gate)
    model.eval()
    audios = _audios()
    with torch.no_grad():
        together = model(**pre(TEXTS, audios))
        for i in range(len(TEXTS)):
            alone = model(**pre(TEXTS[i : i + 1], audios[i : i + 1]))
            for head in ("fused", "text", "audio"):
                batched, single = getattr(together, head), getattr(alone, head)
                if batched is not None:
                    assert abs(float(batched[i]) - float(single[0])) < 1e-5, (variant, head, i)


def test_padded_batch_is_really_padded(tiny_backbones: Path) -> None:
    """Guard for the invariance test: the short text does carry padding in the batch."""
    _, pre, _ = _build(tiny_backbones, "fused")
    batch = pre(TEXTS, _audios())
    assert (batch["attention_mask"].sum(dim=1) < batch["attention_mask"].shape[1]).any()
    assert (batch["audio_attention_mask"].sum(dim=1) < batch["audio_attention_mask"].shape[1]).all()


@pytest.mark.parametrize("gate", [False, True])
def test_missing_modalities_give_finite_fused_and_nan_for_the_absent_head(tiny_backbones: Path, gate: bool) -> None:
    model, pre, _ = _build(tiny_backbones, "fused", gate)
    audios = _audios()
    with torch.no_grad():
        text_only = model.eval()(**pre(TEXTS, None))
        audio_only = model(**pre([None, "", "   "], audios))
        mixed = model(**pre(["great", None], [None, audios[0]]))
    assert torch.isfinite(text_only.fused).all() and torch.isfinite(text_only.text).all()
    assert torch.isnan(text_only.audio).all()
    assert torch.isfinite(audio_only.fused).all() and torch.isfinite(audio_only.audio).all()
    assert torch.isnan(audio_only.text).all()
    assert torch.isfinite(mixed.fused).all()
    assert torch.isnan(mixed.audio[0]) and torch.isnan(mixed.text[1])
    assert torch.isfinite(mixed.text[0]) and torch.isfinite(mixed.audio[1])


def test_the_gate_mixes_the_three_scores_by_its_weights() -> None:
    """Weights 3:1:1 (text, audio, fusion) by the last layer's bias; a missing modality's weight goes to the rest."""
    gate = ModalityGate(in_features=4, hidden=8, dropout=0.0)
    with torch.no_grad():
        gate.net[-1].weight.zero_()
        gate.net[-1].bias.copy_(torch.tensor([math.log(3.0), 0.0, 0.0]))
    scores = torch.tensor([[2.0, -1.0, 0.5], [float("nan"), -1.0, 0.5], [2.0, float("nan"), 0.5]])
    fused = gate(torch.randn(3, 4), scores)
    # (3·2 − 1 + 0.5) / 5; (−1 + 0.5) / 2; (3·2 + 0.5) / 4
    assert fused.tolist() == pytest.approx([1.1, -0.25, 1.625])


def test_the_gate_learns_only_how_to_weigh(tiny_backbones: Path) -> None:
    """The gate's mix trains the gate alone (heads' scores and features come in detached); the fused loss also
    holds the fused head's own score to the target, so the fused head keeps learning as without a gate."""
    model, pre, _ = _build(tiny_backbones, "fused+concat", gate=True)
    target = torch.tensor([1.0, -2.0, 0.5])
    scores = model.train()(**pre(TEXTS, _audios()))
    torch.nn.functional.mse_loss(scores.fused, target).backward()
    trained = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    assert trained == {"gate"}

    model.zero_grad(set_to_none=True)
    scores = model(**pre(TEXTS, _audios()))
    loss = multi_loss(scores, {"fused": target}, {"fused": 1.0})
    expected = torch.nn.functional.mse_loss(scores.fused, target) + torch.nn.functional.mse_loss(scores.fusion, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    for module in (model.text_head, model.audio_head):
        assert all(p.grad is None for p in module.parameters())
    for module in (model.gate, model.fused_head, model.fusion):
        assert any(p.grad is not None and p.grad.any() for p in module.parameters())


def test_the_gate_needs_two_modalities() -> None:
    with pytest.raises(ValueError, match="gate"):
        ModelConfig(fusion=FusionConfig(variant="text-only", gate=True))


def test_missing_audio_is_the_same_as_audio_too_short_for_one_frame(tiny_backbones: Path) -> None:
    """A 10 ms clip yields no encoder frame: it must count as absent, not as a frame of padding."""
    model, pre, _ = _build(tiny_backbones, "fused")
    with torch.no_grad():
        absent = model.eval()(**pre(["fine"], [None]))
        tiny = model(**pre(["fine"], [np.ones(160, dtype=np.float32)]))
    assert torch.isnan(tiny.audio).all()
    assert torch.allclose(absent.fused, tiny.fused, atol=1e-6)


def test_text_truncated_and_audio_cut_to_configured_limits(tiny_backbones: Path) -> None:
    _, pre, config = _build(tiny_backbones, "fused")
    batch = pre(["word " * 500], [np.zeros(16_000 * 30, dtype=np.float32)])
    assert batch["input_ids"].shape[1] == config.text.max_tokens
    assert batch["input_values"].shape[1] == int(config.audio.max_seconds * 16_000)


def test_projection_when_encoder_widths_differ(tiny_backbones: Path) -> None:
    config = tiny_model_config(tiny_backbones, "fused")
    config.fusion.hidden_size, config.fusion.heads, config.fusion.ffn_size = 48, 4, 96
    model = MMML.from_config(config)
    assert model.fusion.text_projection.in_features == 32 and model.fusion.text_projection.out_features == 48
    with torch.no_grad():
        scores = model.eval()(**Preprocessor.from_config(config)(TEXTS, _audios()))
    assert torch.isfinite(scores.fused).all()


def test_fusion_layer_count_follows_config(tiny_backbones: Path) -> None:
    config = tiny_model_config(tiny_backbones, "fused")
    config.fusion.layers = 3
    assert len(MMML.from_config(config).fusion.layers) == 3


def test_mean_pooling_feeds_the_text_head_the_mean_of_the_real_tokens(tiny_backbones: Path) -> None:
    """`pooling="mean"`: the text head reads the average of the unpadded token states, so padding changes nothing."""
    config = tiny_model_config(tiny_backbones, "fused+concat")
    config = replace(config, text=replace(config.text, pooling="mean"), fusion=replace(config.fusion, gate=True))
    torch.manual_seed(0)
    model, pre = MMML.from_config(config).eval(), Preprocessor.from_config(config)
    with torch.no_grad():
        together = model(**pre(TEXTS, _audios()))
        for i, text in enumerate(TEXTS):
            alone = pre([text], None)
            states = model.text_encoder(input_ids=alone["input_ids"], attention_mask=alone["attention_mask"])
            by_hand = model.text_head(states.last_hidden_state[0].mean(dim=0, keepdim=True))
            first_token = model.text_head(states.last_hidden_state[:, 0])
            assert abs(float(together.text[i]) - float(by_hand[0])) < 1e-5, text
            assert abs(float(by_hand[0]) - float(first_token[0])) > 1e-4, "guard: mean differs from the first token"
    assert (pre(TEXTS, None)["attention_mask"].sum(dim=1) < pre(TEXTS, None)["attention_mask"].shape[1]).any()


def test_unknown_text_pooling_is_rejected() -> None:
    from mmml.config import TextEncoderConfig

    with pytest.raises(ValueError, match="unknown text pooling 'max'"):
        ModelConfig(text=TextEncoderConfig(pooling="max"))  # type: ignore[arg-type]


def test_unknown_variant_is_rejected() -> None:
    from mmml.config import FusionConfig

    with pytest.raises(ValueError, match="unknown fusion variant 'late'"):
        ModelConfig(fusion=FusionConfig(variant="late"))  # type: ignore[arg-type]


def test_multi_loss_is_the_weighted_sum_of_head_losses() -> None:
    from mmml.model import Scores

    scores = Scores(
        fused=torch.tensor([1.0, 2.0]), text=torch.tensor([0.0, float("nan")]), audio=torch.tensor([3.0, 3.0])
    )
    target = torch.tensor([0.0, 0.0])
    targets = {"fused": target, "text": target, "audio": target}
    # fused MSE = (1 + 4) / 2 = 2.5; text (NaN sample skipped) = 0; audio = 9
    assert multi_loss(scores, targets, {"fused": 1, "text": 1, "audio": 0.5}).item() == pytest.approx(2.5 + 0 + 4.5)
    # L1: fused 1.5, audio 3
    assert multi_loss(scores, targets, {"fused": 1, "audio": 1}, kind="l1").item() == pytest.approx(4.5)
    with pytest.raises(ValueError, match="no loss"):
        multi_loss(scores, targets, {"fused": 0})


def test_hubert_audio_encoder_works_like_data2vec(tiny_backbones: Path, tmp_path: Path) -> None:
    """Any wav2vec2-family encoder fits: a HuBERT (group-norm front end) scores padding-invariantly too."""
    from samples.tiny import build_tiny_audio_encoder

    config = tiny_model_config(tiny_backbones, "fused")
    config.audio.name_or_path = str(build_tiny_audio_encoder(tmp_path / "hubert", kind="hubert"))
    model = MMML.from_config(config).eval()
    assert type(model.audio_encoder).__name__ == "HubertModel"
    pre = Preprocessor.from_config(config)
    audios = _audios()
    with torch.no_grad():
        together = model(**pre(TEXTS, audios))
        alone = model(**pre(TEXTS[1:2], audios[1:2]))
    assert abs(float(together.fused[1]) - float(alone.fused[0])) < 1e-5
    assert all(not p.requires_grad for p in model.audio_encoder.feature_extractor.parameters())


def _linears(head: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.Linear) for m in head.modules())


def test_heads_are_sized_as_in_the_paper(tiny_backbones: Path) -> None:
    """Paper 3.3: a multimodal model's text and audio heads are one extra fully connected layer; the fused head
    (3.2) and a single-modality model's one head (its answer) are three."""
    fused = MMML.from_config(tiny_model_config(tiny_backbones))
    assert (_linears(fused.text_head), _linears(fused.audio_head), _linears(fused.fused_head)) == (1, 1, 3)
    text_only = MMML.from_config(tiny_model_config(tiny_backbones, variant="text-only"))
    assert _linears(text_only.text_head) == 3


@pytest.mark.parametrize(("language", "layers"), [("en", 3), ("zh", 2)])
def test_fused_transformer_readout_has_the_authors_layers_per_language(
    tiny_backbones: Path, language: str, layers: int
) -> None:
    config = tiny_model_config(tiny_backbones, variant="fused+transformer")
    config.language = language
    readout = MMML.from_config(config).readout
    assert len(readout.text.layers) == len(readout.audio.layers) == layers


def test_a_config_saved_before_the_paper_head_sizes_still_means_its_model(tiny_backbones: Path) -> None:
    """Checkpoints saved with three-layer modality heads and a one-layer readout load as what they are."""
    from mmml.config import from_dict, to_dict

    saved = to_dict(tiny_model_config(tiny_backbones))
    del saved["fusion"]["modality_head_layers"], saved["fusion"]["readout_layers"]
    config = from_dict(ModelConfig, saved)
    assert (config.fusion.modality_head_layers, config.fusion.readout_layers) == (3, 1)
    assert _linears(MMML.from_config(config).text_head) == 3


def test_text_is_recased_as_the_authors_did_in_training_and_annotation_alike(tiny_backbones: Path) -> None:
    """First character kept, the rest lower-cased, inside the preprocessing that training and scoring share;
    the tiny tokenizer is cased, so without re-casing the two spellings are different inputs."""
    from dataclasses import replace

    from mmml.preprocessing import recased

    assert recased("I LOVED It. And I cried") == "I loved it. and i cried"
    assert recased("") == ""
    config = tiny_model_config(tiny_backbones)
    assert config.text.recase
    shouted, plain = ["I LOVED it, BRILLIANT"], ["I loved it, brilliant"]
    ids = Preprocessor.from_config(config)
    assert torch.equal(ids(shouted, None)["input_ids"], ids(plain, None)["input_ids"])
    as_written = Preprocessor.from_config(replace(config, text=replace(config.text, recase=False)))
    assert not torch.equal(as_written(shouted, None)["input_ids"], as_written(plain, None)["input_ids"])


def test_a_config_saved_before_recasing_still_sees_text_as_written(tiny_backbones: Path) -> None:
    from mmml.config import from_dict, to_dict

    saved = to_dict(tiny_model_config(tiny_backbones))
    del saved["text"]["recase"]
    assert not from_dict(ModelConfig, saved).text.recase
