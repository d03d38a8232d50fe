"""Shared fixtures: tiny random backbones and checkpoints, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmml.packaged import OFFLINE_ENV  # light: no torch

for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory with tiny random `text/` and `audio/` encoders (see `samples.tiny`)."""
    from samples.tiny import tiny_model_config

    root = tmp_path_factory.mktemp("tiny_backbones")
    tiny_model_config(root)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete random `fused` MMML checkpoint."""
    from samples.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_checkpoint") / "model")


@pytest.fixture(scope="session")
def mmsa_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-clip MMSA-layout corpus (label.csv, Raw/*.mp4 and wav/*.wav) spoken by espeak-ng."""
    from tests.mmsa_corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("mmsa_corpus"))


@pytest.fixture(scope="session")
def annotate_corpus(tmp_path_factory: pytest.TempPathFactory):
    """Spoken videos with measured sentence timings, and broken files (see `tests.annotate_corpus`)."""
    from tests.annotate_corpus import build

    return build(tmp_path_factory.mktemp("annotate_corpus"))


@pytest.fixture(scope="session")
def scores_file(annotate_corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An annotation of `annotate_corpus` with known scores (`tests.annotate_corpus.annotation_rows`)."""
    from pipelines.write import utterance_table, write_atomic
    from tests.annotate_corpus import annotation_rows

    path = tmp_path_factory.mktemp("scores") / "scores.parquet"
    write_atomic(utterance_table(annotation_rows(annotate_corpus)), path)
    return path


@pytest.fixture(scope="session")
def whisper_tiny() -> str:
    """The packaged CTranslate2 Whisper tiny.en (offline)."""
    from mmml.packaged import resolve

    return resolve("packaged:whisper-tiny.en")
