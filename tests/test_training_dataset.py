"""label.csv reading: per-modality labels, splits, media layouts, and errors that name line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus_media import find_media
from tests.mmsa_corpus import COLUMNS, corpus_rows, write_label_csv
from tests.shared_data import shared
from training.dataset import CorpusError, locate_label_file, read_corpus


def test_per_modality_labels_feed_their_heads(tmp_path: Path) -> None:
    corpus = read_corpus(write_label_csv(tmp_path / "label.csv", corpus_rows()))
    first = corpus.clips[0]
    assert (first.video_id, first.clip_id, first.split, first.line) == ("vid_a", "1", "train", 2)
    assert first.targets() == {"fused": 1.0, "text": 0.8, "audio": 0.6}
    assert [len(corpus.split(s)) for s in ("train", "valid", "test")] == [8, 4, 4]


def test_single_label_is_duplicated_for_every_head(tmp_path: Path) -> None:
    columns = ["video_id", "clip_id", "text", "label", "mode"]
    corpus = read_corpus(write_label_csv(tmp_path / "label.csv", corpus_rows(), columns))
    assert corpus.clips[1].targets() == {"fused": -1.0, "text": -1.0, "audio": -1.0}


def test_blank_per_modality_label_falls_back_to_label(tmp_path: Path) -> None:
    rows = corpus_rows()
    rows[0]["label_T"] = ""
    corpus = read_corpus(write_label_csv(tmp_path / "label.csv", rows))
    assert corpus.clips[0].targets() == {"fused": 1.0, "text": 1.0, "audio": 0.6}


def test_directory_or_file_locates_the_label_file(tmp_path: Path) -> None:
    label = write_label_csv(tmp_path / "label.csv", corpus_rows())
    assert locate_label_file(tmp_path) == (label, tmp_path)
    assert locate_label_file(label) == (label, tmp_path)
    with pytest.raises(CorpusError, match="no such label file"):
        locate_label_file(tmp_path / "elsewhere")


def test_missing_column_is_named(tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c != "mode"]
    with pytest.raises(CorpusError, match=r"missing column\(s\) mode"):
        read_corpus(write_label_csv(tmp_path / "label.csv", corpus_rows(), columns))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("label", "very good", r"line 4, column label: 'very good' is not a number"),
        ("label", "nan", r"line 4, column label: 'nan' is not a finite number"),
        ("label_A", "x", r"line 4, column label_A: 'x' is not a number"),
        ("mode", "training", r"line 4, column mode: unknown split 'training'"),
        ("text", "  ", r"line 4, column text: empty transcript"),
        ("clip_id", "", r"line 4, column clip_id: empty"),
    ],
)
def test_bad_cell_is_reported_with_line_and_column(tmp_path: Path, column: str, value: str, message: str) -> None:
    rows = corpus_rows()
    rows[2][column] = value  # third data row: line 4 of the file
    with pytest.raises(CorpusError, match=message):
        read_corpus(write_label_csv(tmp_path / "label.csv", rows))


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    rows = corpus_rows()
    rows[0]["label"], rows[5]["mode"] = "?", "dev"
    with pytest.raises(CorpusError) as error:
        read_corpus(write_label_csv(tmp_path / "label.csv", rows))
    assert "2 problem(s)" in str(error.value)
    assert "line 2, column label" in str(error.value) and "line 7, column mode" in str(error.value)


def test_repeated_clip_is_an_error(tmp_path: Path) -> None:
    rows = corpus_rows()
    rows.append(dict(rows[0]))
    with pytest.raises(CorpusError, match=r"line 18: clip vid_a/1 repeats line 2"):
        read_corpus(write_label_csv(tmp_path / "label.csv", rows))


def test_audio_only_corpora_may_lack_transcripts(tmp_path: Path) -> None:
    rows = corpus_rows()
    rows[0]["text"] = ""
    assert read_corpus(write_label_csv(tmp_path / "label.csv", rows), require_text=False).clips[0].text == ""


def test_media_found_in_either_layout_with_zero_padding(mmsa_corpus: Path) -> None:
    corpus = read_corpus(mmsa_corpus)
    by_key = {clip.key: clip for clip in corpus.clips}
    assert find_media(corpus.root, by_key["vid_a/3"]) == mmsa_corpus / "Raw" / "vid_a" / "3.mp4"
    assert find_media(corpus.root, by_key["vid_b/3"]) == mmsa_corpus / "wav" / "vid_b" / "0003.wav"


def test_real_mosi_labels_read_with_their_splits() -> None:
    corpus = read_corpus(shared("mosi_label.csv"))
    assert [len(corpus.split(s)) for s in ("train", "valid", "test")] == [1281, 229, 685]
    assert corpus.clips[0].text == "anyhow it was really good" and corpus.clips[0].label == 2.4


def test_an_edited_mosei_cut_is_preferred_to_the_clip_as_named(tmp_path: Path) -> None:
    """CMU-MOSEI ships `<clip>-edited.mp4` beside some clips: the corrected cut, which the authors use."""
    write_label_csv(tmp_path / "label.csv", corpus_rows())
    corpus = read_corpus(tmp_path / "label.csv")
    clip = corpus.clips[0]
    folder = tmp_path / "Raw" / clip.video_id
    folder.mkdir(parents=True)
    (folder / f"{clip.clip_id}.mp4").write_bytes(b"x")
    assert find_media(tmp_path, clip) == folder / f"{clip.clip_id}.mp4"
    (folder / f"{clip.clip_id}-edited.mp4").write_bytes(b"x")
    assert find_media(tmp_path, clip) == folder / f"{clip.clip_id}-edited.mp4"
