"""Training on a real (espeak-ng) MMSA corpus with tiny random backbones.

The loss goes down, early stopping stops when it should, an interrupted run
resumes to exactly the result of an uninterrupted one, the metrics files
agree with the metric functions applied to an independent forward pass, and
broken media are named or skipped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mmml.checkpoint import load_checkpoint
from mmml.metrics import mosi_metrics
from pipelines.demux import decode_audio
from samples.tiny import tiny_model_config
from tests.corpus_media import find_media
from tests.media import truncate
from training import trainer
from training.config import CorpusConfig, DataConfig, EarlyStopConfig, OptimConfig, TrainConfig, config_dict
from training.dataset import CorpusError, read_corpus
from training.trainer import RunDirectoryError, Runtime, fit


@pytest.fixture(scope="module")
def config(tiny_backbones: Path, mmsa_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    cache = tmp_path_factory.mktemp("audio_cache")
    model = tiny_model_config(tiny_backbones)
    model.audio.max_seconds = 2.0  # the spoken clips last 1-3 s; a small canvas keeps the tests fast
    return TrainConfig(
        model=model,
        data=DataConfig(corpora=(CorpusConfig(str(mmsa_corpus), "mosi"),), audio_cache=str(cache)),
        optim=OptimConfig(lr=3e-3, batch_size=4, max_epochs=4),
        seeds=(1,),
    )


def quiet(messages: list[str] | None = None) -> Runtime:
    return Runtime(
        torch.device("cpu"), progress=False, log=(messages.append if messages is not None else lambda m: None)
    )


@pytest.fixture(scope="module")
def trained(config: TrainConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    fit(config, out, quiet())
    return out


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_training_loss_decreases(trained: Path) -> None:
    history = read(trained / "seed-1" / "result.json")["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]


def test_run_directory_layout(trained: Path, config: TrainConfig) -> None:
    assert read(trained / "train_config.json") == read_config_dict(config)
    best = trained / "seed-1" / "best"
    metadata = load_checkpoint(best).metadata
    assert metadata["seed"] == 1 and metadata["train_config"] == read_config_dict(config)
    assert not (trained / "seed-1" / "resume").exists()  # resume point removed once the seed is done
    assert "| fused head |" in (trained / "summary.md").read_text()


def read_config_dict(config: TrainConfig) -> dict:
    """The configuration as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(config_dict(config)))


def test_metrics_files_match_the_metric_functions(trained: Path, mmsa_corpus: Path) -> None:
    """An independent forward pass (own decoding, one batch) gives the metrics the run recorded."""
    result = read(trained / "seed-1" / "result.json")
    checkpoint = load_checkpoint(trained / "seed-1" / "best")
    corpus = read_corpus(mmsa_corpus)
    clips = corpus.split("test")
    audios = [decode_audio(find_media(corpus.root, c)) for c in clips]
    with torch.no_grad():
        scores = checkpoint.model(**checkpoint.preprocessor([c.text for c in clips], audios))
    for head, labels in (
        ("fused", [c.label for c in clips]),
        ("text", [c.label_text for c in clips]),
        ("audio", [c.label_audio for c in clips]),
    ):
        expected = mosi_metrics(getattr(scores, head).numpy(), labels)
        assert result["metrics"]["test"][head] == pytest.approx(expected, abs=2e-4), head
    summary = read(trained / "summary.json")
    assert summary["test"]["fused"] == {
        k: {"mean": v, "std": 0.0} for k, v in result["metrics"]["test"]["fused"].items()
    }


def test_early_stopping_stops_after_patience(config: TrainConfig, tmp_path: Path) -> None:
    # No epoch can beat the first by 1e9: the run must stop exactly `patience` epochs after epoch 1.
    stopping = replace(
        config,
        early_stop=EarlyStopConfig(patience=1, min_delta=1e9),
        optim=replace(config.optim, max_epochs=50),
        seeds=(1, 2),
    )
    summary = fit(stopping, tmp_path, quiet())
    results = [read(tmp_path / f"seed-{s}" / "result.json") for s in (1, 2)]
    for result in results:
        assert (result["epochs"], result["best_epoch"], result["stopped_early"]) == (2, 1, True)
    acc = [r["metrics"]["test"]["fused"]["Non0_acc_2"] for r in results]
    assert summary["test"]["fused"]["Non0_acc_2"]["mean"] == pytest.approx(np.mean(acc), abs=1e-4)
    assert summary["test"]["fused"]["Non0_acc_2"]["std"] == pytest.approx(np.std(acc, ddof=1), abs=1e-4)


def test_resume_continues_from_the_saved_epoch(
    config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = replace(config, optim=replace(config.optim, max_epochs=2), seeds=(5,))
    fit(run, tmp_path / "straight", quiet())

    real_save = trainer.save_resume_point

    def interrupted_after_epoch_1(directory, model, optimizer, progress):
        real_save(directory, model, optimizer, progress)
        if progress["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_resume_point", interrupted_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        fit(run, tmp_path / "resumed", quiet())
    assert read(tmp_path / "resumed" / "seed-5" / "resume" / "state.json")["progress"]["epoch"] == 1
    monkeypatch.setattr(trainer, "save_resume_point", real_save)

    messages: list[str] = []
    fit(run, tmp_path / "resumed", quiet(messages))
    assert "seed 5: resuming after epoch 1" in messages
    assert sum("train loss" in m for m in messages) == 1  # only epoch 2 was trained again
    straight, resumed = (read(tmp_path / d / "seed-5" / "result.json") for d in ("straight", "resumed"))
    for a, b in zip(straight["history"], resumed["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=1e-5)
    assert resumed["metrics"] == straight["metrics"]


def test_a_finished_run_is_not_trained_again_and_other_settings_are_refused(trained: Path, config: TrainConfig) -> None:
    messages: list[str] = []
    fit(config, trained, quiet(messages))
    assert messages == ["seed 1: already finished (" + str(trained / "seed-1" / "result.json") + ")"]
    with pytest.raises(RunDirectoryError, match="different configuration"):
        fit(replace(config, optim=replace(config.optim, lr=1e-4)), trained, quiet())


@pytest.fixture
def broken_corpus(mmsa_corpus: Path, tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(mmsa_corpus, root)
    (root / "wav" / "vid_b" / "0002.wav").unlink()  # clip vid_b/2: missing
    mp4 = root / "Raw" / "vid_a" / "3.mp4"
    truncate(mmsa_corpus / "Raw" / "vid_a" / "3.mp4", mp4, keep_fraction=0.05)  # clip vid_a/3: undecodable
    return root


def test_bad_media_are_listed(config: TrainConfig, broken_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as error:
        fit(
            replace(config, data=replace(config.data, corpora=(CorpusConfig(str(broken_corpus), "mosi"),))),
            tmp_path / "run",
            quiet(),
        )
    message = str(error.value)
    assert "2 clip(s) have missing or undecodable media" in message and "--skip-bad-media" in message
    assert "clip vid_b/2 (line 5): no media file" in message
    assert "clip vid_a/3 (line 6): cannot decode" in message


def test_bad_media_can_be_skipped_and_counted(config: TrainConfig, broken_corpus: Path, tmp_path: Path) -> None:
    skipping = replace(
        config,
        data=replace(config.data, corpora=(CorpusConfig(str(broken_corpus), "mosi"),), skip_bad_media=True),
        optim=replace(config.optim, max_epochs=1),
    )
    messages: list[str] = []
    summary = fit(skipping, tmp_path, quiet(messages))
    assert summary["skipped_clips"] == 2
    assert any(m.startswith("skipped 2 clip(s)") for m in messages)
    assert len((tmp_path / "skipped_media.txt").read_text().splitlines()) == 2


def test_skipping_every_clip_of_a_split_is_an_error(config: TrainConfig, mmsa_corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(mmsa_corpus, root)
    for clip in read_corpus(root).split("test"):
        find_media(root, clip).unlink()
    skipping = replace(
        config, data=replace(config.data, corpora=(CorpusConfig(str(root), "mosi"),), skip_bad_media=True)
    )
    with pytest.raises(CorpusError, match=r"no clip of split\(s\) test has usable media"):
        fit(skipping, tmp_path / "run", quiet())


def test_the_summary_takes_corpora_in_the_configuration_s_order_whatever_a_seed_s_result_lists(
    config: TrainConfig, tmp_path: Path
) -> None:
    """A seed finished by an earlier process comes back from JSON with its corpora sorted by name; the primary
    corpus (the first configured, the one the default model's seed is chosen on) must stay the first."""
    for name in ("zeta", "alpha"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "label.csv").write_text("video_id,clip_id,text,label,mode\n")
    corpora = (CorpusConfig(str(tmp_path / "zeta"), "mosi"), CorpusConfig(str(tmp_path / "alpha"), "custom"))
    two = replace(config, data=replace(config.data, corpora=corpora))

    def metrics(mae: float) -> dict:
        return {"valid": {"fused": {"MAE": mae}}, "test": {"fused": {"MAE": mae}}}

    result = {"seed": 1, "best_epoch": 1, "epochs": [], "checkpoint": "c", "checkpoint_id": "i"}
    from_json = {**result, "corpora": {"alpha": metrics(0.9), "zeta": metrics(0.1)}}  # sorted keys
    summary = trainer.summarise(two, [from_json])
    assert list(summary["corpora"]) == ["zeta", "alpha"]
    assert summary["valid"]["fused"]["MAE"]["mean"] == 0.1
    assert summary["corpora"]["alpha"]["dataset"] == "custom"
