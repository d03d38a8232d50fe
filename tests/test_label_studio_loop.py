"""The labelling loop end to end with a real Label Studio server: annotate, export tasks, label in Label
Studio (two labellers, through their browser sessions), export, import as a corpus, retrain, re-annotate
with the earlier transcripts, compare the two runs. Every command is the installed one, run as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from annotate.export import split_of, split_position
from annotate.labelstudio import AUDIO, FLAGS, SENTIMENT, TRANSCRIPT, WORDS_WRONG
from mmml.checkpoint import checkpoint_id
from samples.tiny import tiny_model_config
from tests import label_studio
from tests.report_page import read_page
from training.dataset import read_corpus

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
FAST = ["--asr-model", "packaged:whisper-tiny.en", "--beam-size", "1", "--no-progress"]
TINY = ["--fusion-layers", "1", "--max-seconds", "4", "--max-tokens", "32", "--dropout", "0.1", "--quiet"]
CORRECTED = "the words as they were really spoken"


def run(command: str, *args: object) -> str:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    result = subprocess.run(
        [str(BIN / command), *map(str, args)], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    assert result.returncode == 0, f"{command} {args}: {result.stderr[-3000:]}"
    return result.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-studio")
    (root / "data").mkdir()
    (root / "projects").mkdir()
    running = label_studio.start(root / "data", root / "projects")
    yield running, root / "projects"
    label_studio.stop(running)


def number(score: float) -> dict:
    return {"id": "s", "from_name": SENTIMENT, "to_name": AUDIO, "type": "number", "value": {"number": score}}


def one_video_per_split(video_ids: list[str]) -> str:
    """--split fractions whose edges fall between the videos' hash positions: a train, a valid, a test video."""
    first, second, third = sorted(split_position(v) for v in video_ids)
    train, valid = (first + second) / 2, (second + third) / 2
    return f"{train:.6f},{valid - train:.6f},{1 - valid:.6f}"


def test_label_in_label_studio_retrain_and_reannotate(
    server, annotate_corpus, tiny_backbones, tiny_checkpoint, tmp_path
):
    studio, projects = server
    scores = tmp_path / "scores.parquet"
    run("mmml-annotate", annotate_corpus.good, "--out", scores, "--model", tiny_checkpoint, *FAST)
    tasks_dir = projects / "corpus-v2"
    run("mmml-label", "export", scores, "--out", tasks_dir, "--document-root", projects)

    # The administrator creates the project from the written configuration, connects the clips, imports the tasks.
    config = (tasks_dir / "labeling_config.xml").read_text()
    project = studio.api("POST", "/api/projects", json={"title": "corpus v2", "label_config": config})["id"]
    storage = {"project": project, "path": str(tasks_dir / "wav"), "title": "clips", "use_blob_urls": False}
    studio.api("POST", "/api/storages/localfiles", json=storage)
    tasks = json.loads((tasks_dir / "tasks.json").read_text())
    imported = studio.api("POST", f"/api/projects/{project}/import", json=tasks)
    assert (imported["task_count"], imported["prediction_count"]) == (len(tasks), 3 * len(tasks))
    listed = studio.api("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]
    listed.sort(key=lambda t: (t["data"]["video_id"], int(t["data"]["clip_id"])))
    assert len(listed) == len(tasks) == 7

    # Two labellers listen to each clip as the labelling page plays it, and score it; some they skip or fix.
    ann = studio.labeller("ann@example.com", "ann-password-1")
    bea = studio.labeller("bea@example.com", "bea-password-1")
    # The three-sentence video loses two clips (one skipped, one unheard) and keeps one: every video stays labelled.
    longest = Counter(t["data"]["video_id"] for t in listed).most_common(1)[0][0]
    expected: dict[str, tuple[float, str]] = {}
    for n, task in enumerate(listed):
        data = task["data"]
        played = ann.get(data["audio"]).content
        assert played == (tasks_dir / "wav" / data["video_id"] / f"{data['clip_id']}.wav").read_bytes()
        key = f"{data['video_id']}/{data['clip_id']}"
        if key == f"{longest}/1":  # both skip: never a label
            ann.submit(project, task["id"], [], skip=True)
            bea.submit(project, task["id"], [], skip=True)
            continue
        if key == f"{longest}/2":  # unheard by anyone: never a label either
            continue
        score = round(-2.5 + 0.8 * n, 1)
        result = [number(score)]
        if n == 0:
            fix = {"from_name": TRANSCRIPT, "to_name": AUDIO, "type": "textarea", "value": {"text": [CORRECTED]}}
            flag = {"from_name": FLAGS, "to_name": AUDIO, "type": "choices", "value": {"choices": [WORDS_WRONG]}}
            result += [fix, flag]
        ann.submit(project, task["id"], result)
        if n % 2:
            bea.submit(project, task["id"], [number(score + 0.5)])
        expected[key] = (score + 0.25 if n % 2 else score, CORRECTED if n == 0 else data["text"])
    export = studio.api("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")
    export_file = tmp_path / "project-export.json"
    export_file.write_text(json.dumps(export))

    videos = sorted({t["data"]["video_id"] for t in listed})
    split = one_video_per_split(videos)
    corpus_dir = tmp_path / "corpus-v2"
    said = run("mmml-label", "import", export_file, "--tasks", tasks_dir, "--out", corpus_dir, "--split", split)
    assert "5 labelled clips" in said and "1 skipped, 1 unlabelled" in said and "1 with corrected words" in said
    corpus = read_corpus(corpus_dir)
    assert {c.key: c.text for c in corpus.clips} == {k: text for k, (_, text) in expected.items()}
    assert {c.key: c.label for c in corpus.clips} == pytest.approx({k: label for k, (label, _) in expected.items()})
    fractions = tuple(map(float, split.split(",")))
    assert {c.split for c in corpus.clips} == {split_of(c.video_id, fractions) for c in corpus.clips}

    tiny = tiny_model_config(tiny_backbones)
    run_dir = tmp_path / "runs" / "v2"
    run(
        "mmml-train",
        "fit",
        "--data",
        corpus_dir,
        "--dataset",
        "custom",
        "--text-encoder",
        tiny.text.name_or_path,
        "--audio-encoder",
        tiny.audio.name_or_path,
        "--max-epochs",
        "1",
        "--seeds",
        "5",
        "--batch-size",
        "4",
        "--out",
        run_dir,
        *TINY,
    )
    retrained = run_dir / "seed-5" / "best"
    rescored = tmp_path / "scores-v2.parquet"
    run("mmml-annotate", annotate_corpus.good, "--out", rescored, "--model", retrained, "--transcripts", scores, *FAST)
    before, after = pd.read_parquet(scores), pd.read_parquet(rescored)
    assert set(after["model_id"]) == {checkpoint_id(retrained)}
    pairs = ["video_id", "utterance", "text", "start", "end"]
    assert after[pairs].sort_values(pairs).values.tolist() == before[pairs].sort_values(pairs).values.tolist()

    page = tmp_path / "changes.html"
    run("mmml-report", rescored, "--compare", scores, "--out", page)
    figures = {k: f.value for k, f in read_page(page.read_text()).figures.items()}
    assert figures["compare.matched"] == len(before) == 7
