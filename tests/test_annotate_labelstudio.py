"""`mmml-label`: annotation -> Label Studio tasks, Label Studio export -> corpus, and what to label next."""

from __future__ import annotations

import csv
import json
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotate.export import split_of
from annotate.labelstudio import (
    AUDIO,
    FLAGS,
    LOCAL_FILES,
    SENTIMENT,
    TRANSCRIPT,
    WORDS_WRONG,
    LabelStudioError,
    import_export,
    main,
)
from annotate.selection import Selection, SelectionError, select
from pipelines.discover import content_id
from training.dataset import read_corpus


def label(cli_args: list) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in cli_args], catch_exceptions=False)
    return result.exit_code, result.output


# --- what to label next ------------------------------------------------------------------------------------


def utterance(video: str, n: int, fused: float, text: float | None = None, audio: float | None = 0.0) -> dict:
    return {"video_id": video, "utterance": n, "score_fused": fused, "score_text": text, "score_audio": audio}


def test_disagreement_takes_the_largest_gap_between_text_and_audio_heads() -> None:
    rows = [
        utterance("a", 0, 0.0, text=2.0, audio=-1.0),  # gap 3
        utterance("a", 1, 0.0, text=0.5, audio=0.0),  # 0.5
        utterance("b", 0, 0.0, text=None, audio=2.0),  # no text score: 0
        utterance("b", 1, 0.0, text=-1.0, audio=1.0),  # 2
    ]
    assert select(rows, Selection("disagreement", 3)) == [(0, 3.0), (3, 2.0), (1, 0.5)]


def test_uncertainty_is_the_spread_of_the_fused_score_over_seeds() -> None:
    rows = [utterance("a", 0, 1.0), utterance("a", 1, 0.0), utterance("b", 0, -1.0)]
    other = {("a", 0): 2.0, ("a", 1): 0.0, ("b", 0): -1.5}
    chosen = select(rows, Selection("uncertainty", 2), [other])
    assert [i for i, _ in chosen] == [0, 2]
    assert [s for _, s in chosen] == pytest.approx([0.5**0.5, 0.125**0.5])  # std of (1, 2), of (-1, -1.5)
    with pytest.raises(SelectionError, match="lacks 1 of the utterances"):
        select(rows, Selection("uncertainty", 2), [{("a", 0): 2.0, ("a", 1): 0.0}])
    with pytest.raises(SelectionError, match="needs at least one --ensemble"):
        select(rows, Selection("uncertainty", 2))


def test_spread_covers_every_score_bin_and_the_least_picked_video_first() -> None:
    rows = [utterance("a", i, 2.9) for i in range(4)] + [utterance("b", 0, 2.8), utterance("c", 0, -2.9)]
    chosen = select(rows, Selection("spread", 3, seed=1))
    assert [s for _, s in chosen] == [-3.0, 2.5, 2.5]  # lower edges of the two populated bins, round-robin
    picked = [rows[i]["video_id"] for i, _ in chosen]
    assert picked[0] == "c" and sorted(picked[1:]) == ["a", "b"]  # b is not starved by a's four


def test_random_selection_is_reproducible_from_its_seed() -> None:
    rows = [utterance("v", i, 0.0) for i in range(50)]
    first = select(rows, Selection("random", 10, seed=7))
    assert first == select(rows, Selection("random", 10, seed=7))
    assert first != select(rows, Selection("random", 10, seed=8))
    with pytest.raises(SelectionError, match="unknown selection strategy 'loudest'"):
        Selection("loudest", 3)


# --- export to Label Studio --------------------------------------------------------------------------------


def test_export_writes_tasks_label_studio_imports_with_three_predictions(
    scores_file, annotate_corpus, tmp_path
) -> None:
    out = tmp_path / "project" / "tasks"
    code, output = label(["export", scores_file, "--out", out])
    assert code == 1 and "/gone/away.mp4" in output  # the vanished video is named, the rest exported
    tasks = json.loads((out / "tasks.json").read_text())
    spoken = {
        (content_id(p), str(i)): s
        for p, sentences in annotate_corpus.sentences.items()
        for i, s in enumerate(sentences)
    }
    assert {(t["data"]["video_id"], t["data"]["clip_id"]) for t in tasks} == set(spoken)
    for t in tasks:
        data = t["data"]
        text, start, end = spoken[(data["video_id"], data["clip_id"])]
        assert (data["text"], data["start"], data["end"]) == (text, round(start, 3), round(end, 3))
        clip = f"tasks/wav/{data['video_id']}/{data['clip_id']}.wav"
        assert data["audio"] == LOCAL_FILES + clip  # relative to the folder above --out (the document root)
        with wave.open(str(tmp_path / "project" / clip)) as handle:
            assert handle.getframerate() == 16000
            assert handle.getnframes() == pytest.approx((end - start) * 16000, abs=160)
        fused = 1.26 - 0.5 * int(data["clip_id"])
        assert [(p["model_version"], p["result"][0]["value"]["number"]) for p in t["predictions"]] == [
            ("m" * 16 + "/fused", round(fused, 1)),
            ("m" * 16 + "/text", round(fused, 1)),
            ("m" * 16 + "/audio", 0.0),
        ]
        assert all(
            p["result"][0]["from_name"] == SENTIMENT and p["result"][0]["type"] == "number" for p in t["predictions"]
        )
    config = ET.fromstring((out / "labeling_config.xml").read_text())
    controls = {e.get("name"): e for e in config if e.get("toName")}
    assert set(controls) == {SENTIMENT, FLAGS, TRANSCRIPT}
    assert all(c.get("toName") == AUDIO for c in controls.values())
    assert (controls[SENTIMENT].tag, controls[SENTIMENT].get("min"), controls[SENTIMENT].get("max")) == (
        "Number",
        "-3",
        "3",
    )
    assert config.find("Audio").get("value") == "$audio"
    assert json.loads((out / "export.json").read_text())["options"]["label_studio"] is True
    code, output = label(["export", scores_file, "--out", out])
    assert code == 2 and "tasks.json exists" in output  # a project may already be labelling it


def test_select_exports_the_chosen_utterances_and_saves_the_choice(scores_file, tmp_path) -> None:
    out = tmp_path / "tasks"
    code, _ = label(["export", scores_file, "--out", out, "--select", 2, "--strategy", "disagreement"])
    tasks = json.loads((out / "tasks.json").read_text())
    # The heads disagree by |fused| (text = fused, audio 0): the vanished video's -2.0, then one of the first
    # utterances (1.26); the vanished one cannot be cut, so one task is left and the exit status says so.
    assert code == 1 and [t["data"]["clip_id"] for t in tasks] == ["0"]
    saved = json.loads((out / "selection.json").read_text())
    assert (saved["strategy"], saved["n"], saved["seed"]) == ("disagreement", 2, 0)
    assert [c["score"] for c in saved["chosen"]] == pytest.approx([2.0, 1.26])  # the vanished video's -2.0 first
    code, output = label(["export", scores_file, "--out", tmp_path / "u", "--select", 2, "--strategy", "uncertainty"])
    assert code == 2 and "--ensemble" in output


# --- import from Label Studio ------------------------------------------------------------------------------


def annotation(who: int, score: float | None = None, *, words: str | None = None, wrong: bool = False) -> dict:
    result = []
    if score is not None:
        result.append({"from_name": SENTIMENT, "to_name": AUDIO, "type": "number", "value": {"number": score}})
    if words is not None:
        result.append({"from_name": TRANSCRIPT, "to_name": AUDIO, "type": "textarea", "value": {"text": [words]}})
    if wrong:
        result.append({"from_name": FLAGS, "to_name": AUDIO, "type": "choices", "value": {"choices": [WORDS_WRONG]}})
    return {"completed_by": who, "was_cancelled": False, "result": result}


SKIPPED = {"completed_by": 3, "was_cancelled": True, "result": []}


def ls_task(n: int, video: str, annotations: list[dict]) -> dict:
    data = {
        "audio": f"{LOCAL_FILES}tasks/wav/{video}/{n}.wav",
        "text": f"words heard in clip {n}",
        "video_id": video,
        "clip_id": str(n),
        "video_path": f"/videos/{video}.mp4",
        "start": float(n),
        "end": n + 1.5,
        "model_score": 0.25,
    }
    return {"id": 100 + n, "data": data, "annotations": annotations, "predictions": []}


@pytest.fixture()
def labelled(tmp_path) -> tuple[Path, Path]:
    tasks = [
        ls_task(0, "va", [annotation(1, 2.0), annotation(2, 1.0)]),
        ls_task(1, "va", [annotation(1, -3.0, words="what was really said", wrong=True)]),
        ls_task(2, "vb", [SKIPPED]),
        ls_task(3, "vb", []),
        ls_task(4, "vb", [annotation(1, 1.0, wrong=True)]),
        ls_task(5, "vc", [annotation(1, wrong=True), annotation(2, 0.5)]),
        ls_task(6, "vc", [annotation(1, -2.0), annotation(2, -1.5), SKIPPED]),
    ]
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(tasks))
    for t in tasks:
        clip = tmp_path / "tasks" / "wav" / t["data"]["video_id"] / f"{t['data']['clip_id']}.wav"
        clip.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(clip), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(16000)
            handle.writeframes(b"\0\0" * 1600)
    return export_file, tmp_path / "tasks"


def test_imported_labels_are_the_labellers_mean_and_skips_never_become_labels(labelled, tmp_path) -> None:
    export_file, tasks_dir = labelled
    summary = import_export(export_file, tasks_dir, tmp_path / "corpus")
    with (tmp_path / "corpus" / "label.csv").open() as handle:
        rows = {r["clip_id"]: r for r in csv.DictReader(handle)}
    # 2 skipped/unlabelled and 4 flagged with no correction are left out; 5's flag-only annotation gives no score
    assert set(rows) == {"0", "1", "5", "6"}
    assert {k: (float(r["label"]), int(r["annotators"])) for k, r in rows.items()} == {
        "0": (1.5, 2),
        "1": (-3.0, 1),
        "5": (0.5, 1),
        "6": (-1.75, 2),
    }
    assert float(rows["0"]["label_std"]) == pytest.approx(0.5**0.5, abs=1e-4)
    assert rows["1"]["text"] == "what was really said" and rows["1"]["asr_text"] == "words heard in clip 1"
    assert rows["0"]["text"] == "words heard in clip 0" and rows["0"]["asr_text"] == ""
    assert {r["mode"] for r in rows.values() if r["video_id"] == "va"} == {split_of("va", (0.8, 0.1, 0.1))}
    assert (summary.clips, summary.skipped, summary.unlabelled, summary.words_wrong, summary.corrected) == (
        4,
        1,
        1,
        1,
        1,
    )
    # Two tasks scored twice, (2, 1) and (-2, -1.5): alpha = 1 - D_o / D_e = 1 - 0.625 / (89.5 / 12), by hand
    assert summary.agreement == {
        "tasks": 2,
        "annotators": 2,
        "alpha_interval": pytest.approx(1 - 0.625 / (89.5 / 12), abs=1e-4),
        "mean_abs_diff": 0.75,
        "sign_agreement": 1.0,
    }
    corpus = read_corpus(tmp_path / "corpus")
    assert corpus.label_file.parent == tmp_path / "corpus" and len(corpus.clips) == 4
    assert (tmp_path / "corpus" / "wav" / "va" / "1.wav").is_file()
    assert json.loads((tmp_path / "corpus" / "import.json").read_text())["skipped"] == 1


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"id": 7, "data": {"image": "x.png"}, "annotations": []}, "task 7: data lacks audio, text, video_id"),
        (ls_task(8, "va", [annotation(1, 4.0)]), "task 108: annotator 1's sentiment 4.0 is outside -3..3"),
        (ls_task(9, "va", [annotation(1, "2")]), "task 109: annotator 1's sentiment '2' is not a number"),
    ],
)
def test_bad_exports_are_refused_naming_the_task(labelled, tmp_path, broken, message) -> None:
    export_file, tasks_dir = labelled
    tasks = json.loads(export_file.read_text()) + [broken]
    export_file.write_text(json.dumps(tasks))
    code, output = label(["import", export_file, "--tasks", tasks_dir, "--out", tmp_path / "corpus"])
    assert code == 2 and message in output
    assert not (tmp_path / "corpus" / "label.csv").exists()
    export_file.write_text(json.dumps({"tasks": tasks}))
    with pytest.raises(LabelStudioError, match="is a list of tasks, this is a dict"):
        import_export(export_file, tasks_dir, tmp_path / "corpus")
