"""`mmml-export`: an annotation output becomes an MMSA corpus that `mmml-train` reads, clips cut from real media."""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotate.export import main, split_of
from pipelines.demux import decode_audio
from pipelines.discover import content_id
from tests.annotate_corpus import GONE
from tests.corpus_media import find_media
from training.dataset import CorpusError, read_corpus


def export(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_export_is_a_corpus_mmml_train_reads_with_clips_cut_at_the_utterance_times(
    scores_file, annotate_corpus, tmp_path
) -> None:
    out = tmp_path / "corpus"
    code, output = export(scores_file, "--out", out)
    assert code == 1 and GONE in output  # the vanished video is named; the rest is exported
    corpus = read_corpus(out)
    expected = {
        (content_id(p), str(i)): s
        for p, sentences in annotate_corpus.sentences.items()
        for i, s in enumerate(sentences)
    }
    assert {(c.video_id, c.clip_id) for c in corpus.clips} == set(expected)  # no wordless clip, nothing of GONE
    for clip in corpus.clips:
        text, start, end = expected[(clip.video_id, clip.clip_id)]
        assert clip.text == text
        assert clip.label == pytest.approx(round(1.26 - 0.5 * int(clip.clip_id), 1))
        media = find_media(corpus.root, clip)
        with wave.open(str(media)) as handle:
            assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16_000, 1, 2)
            pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32767
        source = next(p for p in annotate_corpus.sentences if content_id(p) == clip.video_id)
        cut = decode_audio(source)[round(round(start, 3) * 16_000) : round(round(end, 3) * 16_000)]
        assert len(pcm) == len(cut)
        np.testing.assert_allclose(pcm, cut, atol=1.5 / 32767)


def test_labels_start_at_the_model_score_and_keep_it_for_comparison(scores_file, tmp_path) -> None:
    out = tmp_path / "corpus"
    export(scores_file, "--out", out, "--no-audio")
    with (out / "label.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_clip = {(Path(r["video_path"]).name, r["clip_id"]): r for r in rows}
    first = by_clip[("review.mp4", "0")]
    assert (first["label"], first["annotation"], first["model_score"]) == ("1.3", "Positive", "1.2600")
    third = by_clip[("review.mp4", "2")]
    assert (third["label"], third["annotation"]) == ("0.3", "Positive")
    assert by_clip[("away.mp4", "0")]["annotation"] == "Negative"  # --no-audio: no decoding, every row kept
    assert not (out / "wav").exists()
    provenance = json.loads((out / "export.json").read_text())
    assert provenance["options"] == {"split": [0.8, 0.1, 0.1], "audio": False, "prefill": True}
    assert provenance["scores"] == str(scores_file) and provenance["tool"] == "mmml-annotate"


def test_each_video_goes_to_one_split_and_splits_follow_the_fractions(scores_file, tmp_path) -> None:
    out = tmp_path / "corpus"
    export(scores_file, "--out", out, "--no-audio", "--split", "0.5,0.25,0.25")
    with (out / "label.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["mode"] == split_of(r["video_id"], (0.5, 0.25, 0.25)) for r in rows)
    ids = [f"{i:016x}" for i in range(4000)]
    splits = [split_of(v, (0.8, 0.1, 0.1)) for v in ids]
    shares = {name: splits.count(name) / len(ids) for name in ("train", "valid", "test")}
    assert shares == pytest.approx({"train": 0.8, "valid": 0.1, "test": 0.1}, abs=0.03)
    assert {split_of(v, (1.0,)) for v in ids} == {"train"}


def test_unlabelled_export_is_refused_by_training_until_people_label_it(scores_file, tmp_path) -> None:
    out = tmp_path / "corpus"
    export(scores_file, "--out", out, "--no-audio", "--no-prefill")
    with pytest.raises(CorpusError, match=r"line 2, column label: '' is not a number"):
        read_corpus(out)


def test_an_existing_label_file_is_never_overwritten(scores_file, tmp_path) -> None:
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "label.csv").write_text("people's work\n")
    code, output = export(scores_file, "--out", out, "--no-audio")
    assert code == 2 and "label.csv exists" in output
    assert (out / "label.csv").read_text() == "people's work\n"


def test_bad_split_and_bad_input_are_named(scores_file, tmp_path) -> None:
    code, output = export(scores_file, "--out", tmp_path / "c", "--split", "0.9,0.9")
    assert code == 2 and "summing to 1" in output
    not_scores = tmp_path / "notes.parquet"
    not_scores.write_text("not parquet")
    code, output = export(not_scores, "--out", tmp_path / "c")
    assert code == 2 and str(not_scores) in output and "not an mmml-annotate output" in output
