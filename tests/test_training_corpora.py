"""Training on several corpora at once, and corpora whose media come in any format.

The head rule: a row teaches the fused head always, and the text or audio
head only when that modality is present and its corpus's label describes it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import torch

from mmml.losses import multi_loss
from mmml.model import MMML, Scores
from mmml.preprocessing import Preprocessor
from samples.tiny import tiny_model_config
from tests.corpus_media import find_media
from tests.mmsa_corpus import corpus_rows, write_label_csv
from tests.shared_data import shared
from training.batching import epoch_members
from training.cli import parse_corpus
from training.config import CorpusConfig, DataConfig, OptimConfig, TrainConfig
from training.dataset import read_corpus
from training.examples import Example, collate, prepare_examples
from training.trainer import Runtime, fit


def test_a_head_gets_no_loss_from_rows_its_label_does_not_describe() -> None:
    scores = Scores(fused=torch.tensor([1.0, 2.0]), text=torch.tensor([0.5, 0.5]), audio=None)
    targets = {"fused": torch.tensor([0.0, 0.0]), "text": torch.tensor([math.nan, 1.5])}
    # fused: (1² + 2²) / 2 = 2.5; text: only the second row, (0.5 - 1.5)² = 1.0
    assert float(multi_loss(scores, targets, {"fused": 1.0, "text": 1.0})) == pytest.approx(3.5)


def test_example_targets_follow_the_corpus_labels(mmsa_corpus: Path) -> None:
    clip = read_corpus(mmsa_corpus).clips[0]
    speech_labelled = Example(clip, None, labels=("audio",)).targets()
    assert math.isnan(speech_labelled["text"])
    assert speech_labelled["fused"] == clip.label and speech_labelled["audio"] == clip.label_audio
    assert Example(clip, None).targets() == clip.targets()


def test_epoch_members_draw_a_fresh_subset_of_each_capped_corpus() -> None:
    one = epoch_members([5, 100, 10], [None, 20, None], seed=1, epoch=1)
    assert len(one) == 35 and len(set(one)) == 35
    assert one[:5] == [0, 1, 2, 3, 4] and one[-10:] == list(range(105, 115))
    assert all(5 <= i < 105 for i in one[5:25])
    assert epoch_members([5, 100, 10], [None, 20, None], seed=1, epoch=1) == one  # resumable: same draw
    assert epoch_members([5, 100, 10], [None, 20, None], seed=1, epoch=2) != one
    seen = {i for epoch in range(1, 30) for i in epoch_members([100], [20], seed=3, epoch=epoch)}
    assert len(seen) > 95  # over epochs, nearly all of a capped corpus is seen


def test_corpus_specs_on_the_command_line() -> None:
    spec = parse_corpus("data/ravdess:labels=audio:per_epoch=30", "mosi")
    assert spec == CorpusConfig("data/ravdess", dataset="mosi", labels=("audio",), per_epoch=30)
    assert parse_corpus("a:b/label.csv:dataset=sims", None) == CorpusConfig("a:b/label.csv", "sims")
    assert parse_corpus("plain/dir", None) == CorpusConfig("plain/dir", "custom")
    assert parse_corpus("data/ravdess:labels=audio:voices", None).lends_voices
    assert not parse_corpus("data/ravdess:labels=audio", None).lends_voices
    with pytest.raises(click.BadParameter, match="labels must name text and/or audio"):
        parse_corpus("x:labels=video", None)


def test_text_head_learns_nothing_from_speech_labelled_rows(tiny_backbones: Path, mmsa_corpus: Path, tmp_path) -> None:
    config = tiny_model_config(tiny_backbones)
    model, preprocessor = MMML.from_config(config), Preprocessor.from_config(config)
    corpus = read_corpus(mmsa_corpus)
    examples = prepare_examples(corpus, ["train"], config, progress=False, labels=("audio",)).splits["train"]
    inputs, targets = collate(examples[:4], preprocessor, torch.device("cpu"))
    multi_loss(model(**inputs), targets, {"fused": 1.0, "text": 1.0, "audio": 1.0}).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.text_head.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.audio_head.parameters())


def test_one_run_over_a_speech_corpus_and_a_transcript_corpus(tiny_backbones, mmsa_corpus, tmp_path) -> None:
    transcripts = write_label_csv(tmp_path / "transcripts" / "label.csv", corpus_rows())  # no media: text only
    model = tiny_model_config(tiny_backbones)
    model.audio.max_seconds = 2.0
    config = TrainConfig(
        model=model,
        data=DataConfig(
            corpora=(
                CorpusConfig(str(transcripts), "mosi", per_epoch=4),
                CorpusConfig(str(mmsa_corpus), "custom", labels=("audio",)),
            ),
            audio_cache=str(tmp_path / "cache"),
        ),
        optim=OptimConfig(lr=1e-3, batch_size=4, max_epochs=1),
        seeds=(1,),
    )
    summary = fit(config, tmp_path / "run", Runtime(torch.device("cpu"), progress=False, log=lambda m: None))
    corpora = summary["corpora"]
    assert list(corpora) == ["transcripts", "mmsa_corpus0"]
    assert set(corpora["transcripts"]["test"]) == {"fused", "text"}  # no audio: no audio head to judge
    assert set(corpora["mmsa_corpus0"]["test"]) == {"fused", "audio"}  # neutral-for-text labels: no text head
    assert summary["test"] == corpora["transcripts"]["test"]  # the first corpus is the primary one
    history = (tmp_path / "run" / "seed-1" / "result.json").read_text()
    assert '"train_clips_per_second"' in history
    markdown = (tmp_path / "run" / "summary.md").read_text()
    assert "### transcripts, test split" in markdown and "### mmsa_corpus0, test split" in markdown


def test_media_in_any_container_are_found_and_decoded(tiny_backbones: Path, mmsa_corpus: Path, tmp_path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(mmsa_corpus, root)
    corpus = read_corpus(root)
    converted = {}
    for clip, suffix in zip(corpus.split("train")[:3], (".flac", ".mp3", ".m4a")):
        source = find_media(root, clip)
        target = root / "wav" / clip.video_id / f"{clip.clip_id}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-vn", str(target)], check=True)
        source.unlink()
        converted[clip.key] = target
    (root / "wav" / "vid_a" / "1.txt").write_text("a note beside the media, not media")
    assert {key: find_media(root, c) for c in corpus.clips if (key := c.key) in converted} == converted
    config = tiny_model_config(tiny_backbones)
    examples = prepare_examples(corpus, ["train"], config, progress=False).splits["train"]
    assert all(e.audio is not None for e in examples)


def test_ravdess_loads_as_it_is() -> None:
    corpus = read_corpus(shared("ravdess"))
    assert [len(corpus.split(s)) for s in ("train", "valid", "test")] == [720, 120, 120]
    media = [find_media(corpus.root, clip) for clip in corpus.clips]
    assert all(m is not None and m.suffix == ".flac" for m in media)
    assert {c.video_id for c in corpus.split("test")} == {"actor_08", "actor_16"}


def test_a_batch_with_nothing_to_learn_contributes_nothing() -> None:
    fused = torch.tensor([0.3, -0.2], requires_grad=True)
    scores = Scores(fused=fused, text=fused * 2, audio=None)
    targets = {"fused": torch.tensor([math.nan, math.nan]), "text": torch.tensor([math.nan, math.nan])}
    loss = multi_loss(scores, targets, {"fused": 1.0, "text": 1.0})
    loss.backward()
    assert float(loss.detach()) == 0.0 and not fused.grad.any()
    with pytest.raises(ValueError, match="select no head"):
        multi_loss(scores, targets, {"audio": 1.0})


def test_a_single_modality_model_learns_only_from_labels_about_its_modality(mmsa_corpus: Path) -> None:
    clip = read_corpus(mmsa_corpus).clips[0]
    assert math.isnan(Example(clip, None, labels=("audio",)).targets("text-only")["fused"])
    assert Example(clip, None, labels=("audio",)).targets("audio-only")["fused"] == clip.label_audio
    assert Example(clip, None).targets("text-only")["fused"] == clip.label_text  # label_T where the corpus has it
