"""Batching, aggregation over seeds, tables and the training configuration, against hand-computed values."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mmml.config import FusionConfig, ModelConfig
from training.batching import evaluation_batches, padding_fraction, training_batches
from training.config import EarlyStopConfig, LossConfig, OptimConfig, TrainConfig, load_train_config, save_train_config
from training.experiments import EXPERIMENTS, run_name
from training.report import aggregate, format_cell, markdown_table, spread
from training.trainer import lr_schedule, make_optimizer


def test_padding_fraction_by_hand() -> None:
    # cells: 2*4 + 2*3 = 14, used: 1+4+2+3 = 10
    assert padding_fraction([1, 2, 3, 4], [[0, 3], [1, 2]]) == pytest.approx(1 - 10 / 14)


@pytest.mark.parametrize("length_aware", [True, False])
def test_training_batches_cover_every_clip_once(length_aware: bool) -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(103)]
    batches = training_batches(lengths, 8, seed=1, epoch=3, length_aware=length_aware, pool_batches=4)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert all(len(b) <= 8 for b in batches)


def test_training_order_depends_only_on_seed_and_epoch() -> None:
    lengths = list(range(50))
    first = training_batches(lengths, 4, seed=7, epoch=2)
    assert training_batches(lengths, 4, seed=7, epoch=2) == first
    assert training_batches(lengths, 4, seed=7, epoch=3) != first
    assert training_batches(lengths, 4, seed=8, epoch=2) != first


def test_length_aware_batches_carry_less_padding() -> None:
    rng = random.Random(0)
    lengths = [rng.choice([3, 5, 8, 60, 110]) for _ in range(400)]  # a long tail, like MOSI transcripts
    aware = training_batches(lengths, 16, seed=1, epoch=1, length_aware=True)
    plain = training_batches(lengths, 16, seed=1, epoch=1, length_aware=False)
    assert padding_fraction(lengths, aware) < 0.5 * padding_fraction(lengths, plain)


def test_evaluation_batches_sorted_by_length() -> None:
    assert evaluation_batches([5, 1, 3, 2], 2) == [[1, 3], [2, 0]]
    assert evaluation_batches([5, 1, 3, 2], 2, length_aware=False) == [[0, 1], [2, 3]]


def test_aggregate_mean_and_sample_std_by_hand() -> None:
    summary = aggregate([{"Acc": 0.8, "MAE": 0.5}, {"Acc": 0.9, "MAE": 0.5}, {"Acc": 1.0, "MAE": 0.5}])
    assert summary == {"Acc": {"mean": 0.9, "std": 0.1}, "MAE": {"mean": 0.5, "std": 0.0}}
    assert aggregate([{"Acc": 0.7}]) == {"Acc": {"mean": 0.7, "std": 0.0}}


def test_markdown_table_in_the_papers_units() -> None:
    assert format_cell({"mean": 0.8816, "std": 0.0123}) == "88.16 ± 1.23"
    assert format_cell({"mean": 0.6429}) == "64.29"  # one evaluated checkpoint
    cell = {"mean": 0.5, "std": 0.0}
    table = markdown_table({"multi-loss": dict.fromkeys(("Acc2", "Acc3", "Acc5", "F1", "MAE", "Corr"), cell)}, "sims")
    assert table.splitlines()[0] == "| | Acc2 | Acc3 | Acc5 | F1 | MAE×100 | Corr×100 |"
    assert table.splitlines()[2] == "| multi-loss | " + " | ".join(["50.00 ± 0.00"] * 6) + " |"


def test_train_config_round_trips_through_json(tmp_path: Path) -> None:
    config = TrainConfig(model=ModelConfig(fusion=FusionConfig(variant="concat")), seeds=(1, 2))
    save_train_config(config, tmp_path / "c.json")
    assert load_train_config(tmp_path / "c.json") == config


def test_single_modality_variants_train_their_one_head_once() -> None:
    text_only = TrainConfig(model=ModelConfig(fusion=FusionConfig(variant="text-only")))
    assert text_only.loss_weights() == {"fused": 1.0}
    assert TrainConfig(loss=LossConfig("l1", 1.0, 0.0, 0.5)).loss_weights() == {"fused": 1.0, "text": 0.0, "audio": 0.5}
    with pytest.raises(ValueError, match="every loss weight is 0"):
        TrainConfig(loss=LossConfig("mse", 0.0, 0.0, 0.0)).loss_weights()


def test_invalid_configuration_lists_its_problems() -> None:
    with pytest.raises(ValueError, match="seeds repeat.*patience must be at least 1"):
        TrainConfig(seeds=(1, 1), early_stop=EarlyStopConfig(patience=0))


def test_experiment_arms_follow_the_paper() -> None:
    base = TrainConfig()
    table4 = [arm.apply(base) for arm in EXPERIMENTS["table4"].arms]
    assert [run_name(c) for c in table4] == ["concat_loss-f1-t0-a0", "concat_loss-f1-t1-a1"]
    assert [arm.apply(base).model.fusion.variant for arm in EXPERIMENTS["table6"].arms] == [
        "fused",
        "fused+concat",
        "fused+transformer",
    ]
    assert run_name(EXPERIMENTS["table3"].arms[0].apply(base)) == "text-only"
    table2 = [arm.apply(base) for arm in EXPERIMENTS["table2"].arms]
    assert [run_name(c) for c in table2] == [
        "audio-only_opensmile-eGeMAPSv02",
        "audio-only_mel-cnn",
        "audio-only_data2vec-audio-base",  # the run's own (pretrained) encoder
    ]
    assert base.model.fusion.variant == "fused"  # arms never mutate the base configuration


def test_linear_schedule_falls_to_zero_over_the_whole_run() -> None:
    config = TrainConfig(optim=OptimConfig(max_epochs=2, lr_schedule="linear"))
    first, second = lr_schedule(config, 1, 4), lr_schedule(config, 2, 4)
    # 8 steps in all: factors 1, 7/8, ..., 1/8, recomputed from (epoch, step) alone after a resume
    assert [first(s) for s in range(4)] + [second(s) for s in range(4)] == pytest.approx([1 - k / 8 for k in range(8)])
    assert lr_schedule(TrainConfig(), 3, 4)(2) == 1.0  # constant by default


def test_new_layers_get_their_own_learning_rate(tiny_backbones: Path) -> None:
    from mmml.model import MMML
    from samples.tiny import tiny_model_config

    model = MMML.from_config(tiny_model_config(tiny_backbones))
    optimizer = make_optimizer(model, TrainConfig(optim=OptimConfig(lr=1e-5, fusion_lr=1e-3)))
    encoders, rest = optimizer.param_groups
    encoder_ids = {id(p) for p in [*model.text_encoder.parameters(), *model.audio_encoder.parameters()]}
    assert encoders["lr"] == 1e-5 and all(id(p) in encoder_ids for p in encoders["params"])
    assert rest["lr"] == 1e-3 and {id(p) for p in model.fused_head.parameters()} <= {id(p) for p in rest["params"]}


def test_a_feature_encoder_learns_at_the_rate_of_new_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmml.config import AudioEncoderConfig, FusionConfig, ModelConfig
    from mmml.model import MMML

    monkeypatch.setenv("MMML_CACHE", str(tmp_path))
    config = ModelConfig(audio=AudioEncoderConfig("mel-cnn"), fusion=FusionConfig(variant="audio-only"))
    model = MMML.from_config(config)
    (group,) = make_optimizer(model, TrainConfig(optim=OptimConfig(lr=1e-5, fusion_lr=1e-3))).param_groups
    assert group["lr"] == 1e-3 and {id(p) for p in model.audio_encoder.parameters()} <= {id(p) for p in group["params"]}


def test_spread_shows_scores_piled_at_a_floor() -> None:
    piled = spread(np.array([-0.84, -0.84, -0.83, -0.5, 0.2, np.nan]))
    assert piled["min"] == -0.84 and piled["max"] == 0.2
    assert piled["share_near_min"] == pytest.approx(3 / 5) and piled["share_near_max"] == pytest.approx(1 / 5)
    assert sum(piled["histogram"].values()) == 5 and piled["histogram"]["[-1.0, -0.5)"] == 3


def test_progress_counts_epochs_without_improvement_toward_early_stopping() -> None:
    from dataclasses import asdict

    from training.config import TrainConfig
    from training.trainer import Progress

    config = TrainConfig()
    config.optim.max_epochs, config.early_stop.patience = 10, 2
    progress = Progress()
    assert progress.record(1, 1.0, min_delta=0.01) and progress.record(2, 0.8, min_delta=0.01)
    assert not progress.record(3, 0.795, min_delta=0.01)  # better, but by less than min_delta
    assert (progress.best_epoch, progress.best_loss, progress.bad_epochs) == (2, 0.8, 1) and not progress.finished(
        config
    )
    assert not progress.record(4, 0.9, min_delta=0.01) and progress.finished(config)
    assert Progress(**asdict(progress)) == progress  # what a resume point saves, it restores
