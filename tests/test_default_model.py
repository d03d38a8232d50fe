"""The headline command, `mmml-annotate VIDEOS --out scores.parquet`, with no `--model`.

Without a default it stops with one line saying how to get one (exit 2).
With the default built the way the README builds it (`mmml-train default`,
here on a small slice of the same real corpora), it annotates with it.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from annotate.cli import main as annotate_main
from mmml.integrity import checkpoint_id
from mmml.packaged import installed_default_dir
from pipelines.engine import start_ray
from pipelines.options import EngineOptions
from tests.shared_data import shared
from training.cli import main as train_main
from training.default_model import default_recipe

FAST = ["--asr-model", "packaged:whisper-tiny.en", "--beam-size", "1", "--no-progress"]


@pytest.fixture()
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMML_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MMML_MODEL", raising=False)
    return tmp_path / "cache"


def annotate(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(annotate_main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_without_any_model_one_line_says_how_to_get_one(empty_cache, annotate_corpus, tmp_path) -> None:
    code, output = annotate(annotate_corpus.good, "--out", tmp_path / "scores.parquet", *FAST)
    assert code == 2
    assert output.strip().count("\n") == 0 and "mmml-train default" in output and "--model" in output
    assert not (tmp_path / "scores.parquet.parts").exists()  # nothing started


def test_mmml_model_names_the_default(empty_cache, annotate_corpus, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MMML_MODEL", str(tmp_path / "no-such-model"))
    code, output = annotate(annotate_corpus.good, "--out", tmp_path / "scores.parquet", *FAST)
    assert code == 2 and "no-such-model" in output  # a bad MMML_MODEL is named, never silently skipped


def test_the_recipe_trains_on_the_real_corpora() -> None:
    recipe = default_recipe(shared("."))
    assert [Path(c.path).name for c in recipe.data.corpora] == [
        "mosi_label.csv",
        "mosei_label_trainvalid.csv",
        "ravdess",
    ]
    assert recipe.data.corpora[2].labels == ("audio",)  # RAVDESS's neutral sentences teach no text head
    assert recipe.model.text.name_or_path == "packaged:all-minilm-l6-v2"
    assert recipe.model.audio.name_or_path == "packaged:whisper-tiny.en"
    assert recipe.model.text_languages == ("en",)  # MiniLM-L6 reads English: other languages get no text score
    # Fusion learns what each modality carries only from composed rows (training.composition): RAVDESS lends its
    # neutral voices to a share of the transcripts and trains a share of its clips without words; a share of
    # the clips is heard through recording conditions. Only human voices: no synthetic corpus is trained on.
    assert [c.lends_voices for c in recipe.data.corpora] == [False, False, True]
    assert 0 < recipe.data.compose.voiced <= 1 and 0 < recipe.data.compose.wordless <= 1
    assert 0 < recipe.data.augment <= 1


def small_slice(target: Path) -> Path:
    """The recipe's three corpora, a few clips of each split, as real files."""
    target.mkdir(parents=True)
    for name, per_split in (("mosi_label.csv", 12), ("mosei_label_trainvalid.csv", 12)):
        _copy_rows(shared(name), target / name, per_split)
    rows = _copy_rows(shared("ravdess") / "label.csv", target / "ravdess" / "label.csv", 8)
    for row in rows:
        media = f"wav/{row['video_id']}/{row['clip_id']}.flac"
        (target / "ravdess" / media).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared("ravdess") / media, target / "ravdess" / media)
    return target


def _copy_rows(source: Path, target: Path, per_split: int) -> list[dict[str, str]]:
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows, fields = list(reader), reader.fieldnames
    kept = [r for split in ("train", "valid", "test") for r in [r for r in rows if r["mode"] == split][:per_split]]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return kept


@pytest.mark.slow
def test_headline_command_uses_the_default_built_as_the_readme_builds_it(
    empty_cache, annotate_corpus, tmp_path
) -> None:
    data = small_slice(tmp_path / "data")
    train_main(["default", "--data-dir", str(data), "--out", str(tmp_path / "run"), "--quiet"])
    installed = installed_default_dir()
    assert installed.is_relative_to(empty_cache)

    start_ray(EngineOptions(num_cpus=2))
    try:
        code, output = annotate(annotate_corpus.good, "--out", tmp_path / "scores.parquet", *FAST)
    finally:
        import ray

        ray.shutdown()
    assert code == 0, output
    table = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(table) > 0 and set(table["model_id"]) == {checkpoint_id(installed)}
    assert table[["score_fused", "score_text", "score_audio"]].notna().all().all()


def test_set_default_installs_a_verified_copy_and_mmml_model_wins(empty_cache, tiny_checkpoint, tmp_path, monkeypatch):
    from mmml.packaged import default_model

    assert default_model() is None
    train_main(["set-default", str(tiny_checkpoint)])
    installed = default_model()
    assert installed == installed_default_dir() and checkpoint_id(installed) == checkpoint_id(tiny_checkpoint)
    monkeypatch.setenv("MMML_MODEL", str(tiny_checkpoint))
    assert default_model() == tiny_checkpoint  # the environment names the default before the installed one
    (tiny_checkpoint.parent / "broken").mkdir()
    with pytest.raises(SystemExit) as refused:  # an unverifiable checkpoint never becomes the default
        train_main(["set-default", str(tiny_checkpoint.parent / "broken")])
    assert refused.value.code == 1 and checkpoint_id(installed_default_dir()) == checkpoint_id(tiny_checkpoint)
