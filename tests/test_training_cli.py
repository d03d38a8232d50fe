"""`mmml-train` end to end: text-only training on the real MOSI labels with no media, evaluation
of a checkpoint (the text subnet alone included), a paper experiment group, and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from samples.tiny import tiny_model_config
from tests.mmsa_corpus import corpus_rows, write_label_csv
from tests.shared_data import shared
from training.cli import main

TINY = ["--fusion-layers", "1", "--max-seconds", "2", "--max-tokens", "32", "--dropout", "0.1", "--quiet"]


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny(tiny_backbones: Path) -> dict[str, str]:
    config = tiny_model_config(tiny_backbones)
    return {"text": config.text.name_or_path, "audio": config.audio.name_or_path}


def test_text_only_training_on_mosi_labels_needs_no_media(tiny: dict, tmp_path: Path, capsys) -> None:
    labels = shutil.copy(shared("mosi_label.csv"), tmp_path / "mosi_label.csv")  # a directory with nothing else in it
    out = tmp_path / "run"
    code, stdout, stderr = run(
        [
            "fit",
            "--data",
            str(labels),
            "--dataset",
            "mosi",
            "--modalities",
            "text",
            "--text-encoder",
            tiny["text"],
            "--max-epochs",
            "1",
            "--seeds",
            "7",
            "--batch-size",
            "64",
            "--lr",
            "1e-3",
            "--out",
            str(out),
            *TINY,
        ],
        capsys,
    )
    assert code == 0, stderr
    assert "| fused head |" in stdout and "Non0 Acc2" in stdout
    result = json.loads((out / "seed-7" / "result.json").read_text())
    assert set(result["metrics"]["test"]) == {"fused"}

    code, stdout, stderr = run(
        [
            "evaluate",
            str(out / "seed-7" / "best"),
            "--data",
            str(labels),
            "--split",
            "test",
            "--dataset",
            "mosi",
            "--out",
            str(tmp_path / "m.json"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, stderr
    evaluated = json.loads((tmp_path / "m.json").read_text())
    assert evaluated["clips"] == 685
    assert evaluated["metrics"] == pytest.approx(result["metrics"]["test"]["fused"], abs=2e-4)


def test_text_subnet_of_a_multimodal_checkpoint_runs_without_audio(
    tiny: dict, mmsa_corpus: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "run"
    code, _, stderr = run(
        [
            "fit",
            "--data",
            str(mmsa_corpus),
            "--dataset",
            "mosi",
            "--text-encoder",
            tiny["text"],
            "--audio-encoder",
            tiny["audio"],
            "--max-epochs",
            "1",
            "--seeds",
            "3",
            "--batch-size",
            "8",
            "--audio-cache",
            str(tmp_path / "cache"),
            "--gate",
            "--text-pooling",
            "mean",
            "--out",
            str(out),
            *TINY,
        ],
        capsys,
    )
    assert code == 0, stderr
    saved = json.loads((out / "train_config.json").read_text())["model"]
    assert saved["fusion"]["gate"] is True and saved["text"]["pooling"] == "mean"
    recorded = json.loads((out / "seed-3" / "result.json").read_text())["metrics"]["test"]
    labels_only = write_label_csv(tmp_path / "no_media" / "label.csv", corpus_rows())
    code, stdout, stderr = run(
        [
            "evaluate",
            str(out / "seed-3" / "best"),
            "--data",
            str(labels_only),
            "--head",
            "text",
            "--dataset",
            "mosi",
            "--out",
            str(tmp_path / "text.json"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert "| text head |" in stdout
    # The text head reads only the text encoder: same numbers with or without the audio present.
    assert json.loads((tmp_path / "text.json").read_text())["metrics"] == pytest.approx(recorded["text"], abs=2e-4)

    # A label.csv with no media tree is a transcript corpus: the fused head (its gate) answers with the audio missing.
    code, _, stderr = run(["evaluate", str(out / "seed-3" / "best"), "--data", str(labels_only), "--quiet"], capsys)
    assert code == 0, stderr
    # With a media tree, every clip must have its file.
    (labels_only.parent / "wav").mkdir()
    code, _, stderr = run(["evaluate", str(out / "seed-3" / "best"), "--data", str(labels_only), "--quiet"], capsys)
    assert code == 1 and "4 clip(s) have missing or undecodable media" in stderr
    looked_for = "Raw/vid_a/4-edited|4|0004.* or wav/vid_a/4-edited|4|0004.*"  # a MOSEI -edited cut first
    assert f"clip vid_a/4 (line 8): no media file (looked for {looked_for})" in stderr


def test_experiment_group_prints_one_comparison_table(tiny: dict, mmsa_corpus: Path, tmp_path: Path, capsys) -> None:
    args = [
        "experiment",
        "table4",
        "--data",
        str(mmsa_corpus),
        "--dataset",
        "mosi",
        "--text-encoder",
        tiny["text"],
        "--audio-encoder",
        tiny["audio"],
        "--max-epochs",
        "1",
        "--seeds",
        "1",
        "--batch-size",
        "8",
        "--audio-cache",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "t4"),
        *TINY,
    ]
    code, stdout, stderr = run(args, capsys)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("| | Has0 Acc2 |")
    assert lines[2].startswith("| single-loss |") and lines[3].startswith("| multi-loss |")
    assert "Single-loss vs. multi-loss training (paper Table 4)" in stdout
    assert sorted(p.name for p in (tmp_path / "t4").iterdir()) == [
        "concat_loss-f1-t0-a0",
        "concat_loss-f1-t1-a1",
        "table4.json",
        "table4.md",
    ]
    code, again, stderr = run(args, capsys)  # finished arms are reused, not retrained
    assert code == 0 and again == stdout and stderr.count("already finished") == 2


def test_table2_puts_each_audio_encoder_on_one_row(
    tiny: dict, mmsa_corpus: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMML_CACHE", str(tmp_path / "mmml-cache"))  # the feature encoders' configs
    args = ["experiment", "table2", "--data", str(mmsa_corpus), "--audio-encoder", tiny["audio"]]
    args += ["--max-epochs", "1", "--seeds", "1", "--batch-size", "8", "--lr", "1e-3"]
    code, stdout, stderr = run(
        [*args, "--audio-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "t2"), *TINY], capsys
    )
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "| Feature name | Has0 Acc2 | Non0 Acc2 |"  # the paper's Table 2 columns
    assert [line.split(" |")[0] for line in lines[2:5]] == [
        "| openSMILE (eGeMAPS)",
        "| Mel Spectrogram (CNN)",
        "| pretrained encoder",
    ]
    assert f"The pretrained encoder is {tiny['audio']}." in stdout  # every metric follows, captioned
    runs = sorted(p.name for p in (tmp_path / "t2").iterdir() if p.is_dir())
    assert runs == [
        "audio-only_audio",
        "audio-only_mel-cnn",
        "audio-only_opensmile-eGeMAPSv02",
    ]
    saved = json.loads((tmp_path / "t2" / "audio-only_mel-cnn" / "seed-1" / "best" / "mmml_config.json").read_text())
    assert saved["audio"]["name_or_path"] == "mel-cnn" and saved["fusion"]["variant"] == "audio-only"


def test_malformed_label_file_exits_with_line_and_column(tmp_path: Path, capsys) -> None:
    rows = corpus_rows()
    rows[2]["label"] = "positive"
    labels = write_label_csv(tmp_path / "label.csv", rows)
    code, _, stderr = run(
        ["fit", "--data", str(labels), "--modalities", "text", "--out", str(tmp_path / "r"), "--quiet"], capsys
    )
    assert code == 1
    assert "line 4, column label: 'positive' is not a number" in stderr and "Traceback" not in stderr


def test_conflicting_options_are_refused(tmp_path: Path, capsys) -> None:
    code, _, stderr = run(
        ["fit", "--data", str(tmp_path), "--modalities", "text", "--variant", "concat", "--out", str(tmp_path / "r")],
        capsys,
    )
    assert code == 2 and "--modalities text trains the text-only model" in stderr
