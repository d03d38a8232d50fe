"""`mmml-annotate` end to end on one local Ray: real ffmpeg, faster-whisper tiny.en, a tiny MMML checkpoint.

One annotation of the whole test corpus (spoken videos + broken files) is
shared by most tests; Ray is started once for the module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from annotate.cli import _UTTERANCE_OPTIONS, main
from annotate.config import AnnotateConfig, result_identity, with_settings
from mmml.checkpoint import checkpoint_id
from mmml.config import from_dict
from pipelines.discover import Video
from pipelines.engine import start_ray
from pipelines.local import runs_here
from pipelines.options import EngineOptions
from pipelines.write import ERRORS, UTTERANCES, read_metadata, with_metadata
from tests.annotate_corpus import BROKEN

FAST = ["--asr-model", "packaged:whisper-tiny.en", "--beam-size", "1", "--no-progress"]
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal on a machine without CUDA")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    start_ray(EngineOptions(num_cpus=2))
    yield
    ray.shutdown()


def annotate(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def whole_run(annotate_corpus, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "scores.parquet"
    manifest = out.parent / "inputs.txt"
    manifest.write_text(f"{annotate_corpus.good}\n{annotate_corpus.broken}\n/no/such/video.mp4\n")
    code, output = annotate(manifest, "--out", out, "--model", tiny_checkpoint, *FAST)
    return out, code, output


def test_one_row_per_spoken_sentence_at_its_time(whole_run, annotate_corpus) -> None:
    out, _, _ = whole_run
    table = pd.read_parquet(out)
    assert set(table["video_path"]) == {str(p) for p in annotate_corpus.sentences}
    for path, expected in annotate_corpus.sentences.items():
        rows = table[table["video_path"] == str(path)].sort_values("utterance")
        assert list(rows["utterance"]) == list(range(len(expected)))
        assert len(rows) == len(expected), rows["text"].tolist()
        for row, (sentence, start, end) in zip(rows.itertuples(), expected):
            assert row.start == pytest.approx(start, abs=0.5) and row.end == pytest.approx(end, abs=0.6), sentence
    assert not table.duplicated(["video_id", "utterance"]).any()


def test_every_column_is_filled(whole_run, tiny_checkpoint) -> None:
    out, _, _ = whole_run
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == UTTERANCES
    frame = table.to_pandas()
    assert frame.notna().all().all(), frame.isna().sum()
    assert (frame["text"].str.len() > 0).all()
    assert set(frame["model_id"]) == {checkpoint_id(tiny_checkpoint)}
    assert set(frame["asr_model"]) == {"packaged:whisper-tiny.en"} and set(frame["language"]) == {"en"}
    assert frame["asr_confidence"].between(0, 1).all() and (frame["end"] > frame["start"]).all()


def test_broken_inputs_are_recorded_and_the_rest_completes(whole_run, annotate_corpus) -> None:
    out, code, output = whole_run
    assert code == 1, output  # documented: nonzero when any input failed
    errors = pq.read_table(out.with_name("scores.errors.parquet"))
    assert errors.schema.remove_metadata() == ERRORS
    stages = {Path(r["video_path"]).name: r["stage"] for r in errors.to_pylist()}
    assert stages == {**BROKEN, "video.mp4": "discover"}
    by_name = {Path(r["video_path"]).name: r for r in errors.to_pylist()}
    assert "no audio stream" in by_name["no audio.mp4"]["message"]
    assert "0 bytes" in by_name["zero.mp4"]["message"]
    assert by_name["silent.mp4"]["error_type"] == "NoSpeech" and "no speech" in by_name["silent.mp4"]["message"]
    assert all(r["message"].startswith(r["video_path"]) for r in errors.to_pylist())
    assert {r["traceback"] for r in errors.to_pylist()} == {""}  # bad files, said in the message: no bug to trace


def test_configuration_and_version_travel_with_the_output(whole_run) -> None:
    out, _, _ = whole_run
    metadata = read_metadata(out)
    assert metadata["tool"] == "mmml-annotate" and metadata["version"]
    config = from_dict(AnnotateConfig, metadata["config"])
    assert config.asr.model == "packaged:whisper-tiny.en" and config.asr.beam_size == 1
    assert json.loads(out.with_name("scores.config.json").read_text())["config"] == metadata["config"]
    assert read_metadata(out.with_name("scores.errors.parquet"))["config"] == metadata["config"]


def test_rerun_reprocesses_nothing_finished(whole_run, tiny_checkpoint) -> None:
    out, _, _ = whole_run
    manifest = out.parent / "inputs.txt"
    parts = sorted((out.parent / "scores.parquet.parts" / "done").iterdir())
    stamps = [p.stat().st_mtime_ns for p in parts]
    before = pd.read_parquet(out)
    code, output = annotate(manifest, "--out", out, "--model", tiny_checkpoint, *FAST)
    assert code == 1 and "3 from an earlier run" in output
    assert [p.stat().st_mtime_ns for p in parts] == stamps
    pd.testing.assert_frame_equal(pd.read_parquet(out), before)


@pytest.mark.slow
def test_copies_are_annotated_once_and_reported_under_each_path(annotate_corpus, tiny_checkpoint, tmp_path) -> None:
    original = annotate_corpus.good / "review.mp4"
    copy = shutil.copy(original, tmp_path / "copy of review.mp4")
    out = tmp_path / "copies.parquet"
    code, output = annotate(original, copy, "--out", out, "--model", tiny_checkpoint, *FAST)
    assert code == 0, output  # documented: 0 when every input was annotated
    table = pd.read_parquet(out)
    assert table.groupby("video_path").size().to_dict() == {str(original.resolve()): 3, str(Path(copy).resolve()): 3}
    assert table["video_id"].nunique() == 1
    assert len(list((tmp_path / "copies.parquet.parts" / "done").iterdir())) == 1


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused_until_overwrite(annotate_corpus, tiny_checkpoint, tmp_path) -> None:
    video = annotate_corpus.good / "review.mp4"
    out = tmp_path / "s.parquet"
    assert annotate(video, "--out", out, "--model", tiny_checkpoint, *FAST)[0] == 0
    assert read_metadata(out)["config"]["segment"]["max_seconds"] == 4.0  # the tiny model reads 4 s of audio
    code, output = annotate(video, "--out", out, "--model", tiny_checkpoint, *FAST, "--max-utterance", "3")
    assert code == 2 and "--overwrite" in output and "segment.max_seconds" in output
    code, output = annotate(
        video, "--out", out, "--model", tiny_checkpoint, *FAST, "--max-utterance", "3", "--overwrite"
    )
    assert code == 0 and "0 from an earlier run" in output
    assert read_metadata(out)["config"]["segment"]["max_seconds"] == 3.0


def test_utterances_longer_than_the_audio_the_model_reads_are_refused(
    annotate_corpus, tiny_checkpoint, tmp_path
) -> None:
    """Every second of an utterance is scored: a --max-utterance beyond the model's audio limit cannot start."""
    code, output = annotate(
        annotate_corpus.good, "--out", tmp_path / "s.parquet", "--model", tiny_checkpoint, *FAST, "--max-utterance", "6"
    )
    assert code == 2 and "--max-utterance 6 s is longer than the 4 s of audio the model scores" in output
    assert not (tmp_path / "s.parquet.parts").exists()


def test_a_bad_checkpoint_stops_before_any_work(annotate_corpus, tmp_path) -> None:
    (tmp_path / "model").mkdir()
    code, output = annotate(annotate_corpus.good, "--out", tmp_path / "s.parquet", "--model", tmp_path / "model", *FAST)
    assert code == 2 and "checksums.json" in output
    assert not (tmp_path / "s.parquet").exists()


def test_a_pipeline_the_cluster_cannot_hold_is_refused_not_hung(annotate_corpus, tiny_checkpoint, tmp_path) -> None:
    code, output = annotate(
        annotate_corpus.good,
        "--out",
        tmp_path / "s.parquet",
        "--model",
        tiny_checkpoint,
        *FAST,
        "--asr-workers",
        "3",
        "--asr-cpus",
        "1",
    )
    assert code == 2 and "logical CPUs" in output


@without_cuda
def test_cuda_on_a_cluster_without_gpus_is_refused_before_any_work(annotate_corpus, tiny_checkpoint, tmp_path) -> None:
    code, output = annotate(
        annotate_corpus.good, "--out", tmp_path / "s.parquet", "--model", tiny_checkpoint, *FAST, "--device", "cuda"
    )
    assert code == 2 and "--device cuda asks for GPUs but the Ray cluster has none" in output
    assert not (tmp_path / "s.parquet").exists() and not list((tmp_path / "s.parquet.parts" / "done").glob("*"))


@pytest.fixture(scope="module")
def earlier_output(whole_run, tmp_path_factory):
    """The whole run's output with every text marked, and one video left out (it must be transcribed anew)."""
    out, _, _ = whole_run
    table = pq.read_table(out)
    left_out = str(next(p for p in table.column("video_path").to_pylist() if p.endswith(".wav")))
    frame = table.to_pandas()
    frame = frame[frame["video_path"] != left_out].assign(text=lambda f: "REUSED " + f["text"])
    marked = pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)
    path = tmp_path_factory.mktemp("earlier") / "earlier.parquet"
    pq.write_table(marked, path)
    return path, left_out, table.to_pandas()


@pytest.fixture(scope="module")
def rescored(earlier_output, annotate_corpus, tmp_path_factory):
    """The good videos scored by a retrained model, reusing the earlier transcripts (one video is not in them)."""
    from samples.tiny import build_tiny_checkpoint

    earlier, _, _ = earlier_output
    root = tmp_path_factory.mktemp("rescored")
    retrained = build_tiny_checkpoint(root / "retrained", seed=1)
    out = root / "rescored.parquet"
    code, output = annotate(annotate_corpus.good, "--out", out, "--model", retrained, "--transcripts", earlier, *FAST)
    return out, code, output, retrained


@pytest.mark.slow
def test_rescoring_reuses_earlier_utterances_and_transcribes_only_new_videos(earlier_output, rescored) -> None:
    _, left_out, before = earlier_output
    out, code, output, retrained = rescored
    assert code == 0, output
    after = pd.read_parquet(out)
    assert set(after["model_id"]) == {checkpoint_id(retrained)}
    key = ["video_path", "utterance"]
    reused, fresh = after[after["video_path"] != left_out], after[after["video_path"] == left_out]
    assert reused["text"].str.startswith("REUSED ").all() and not fresh["text"].str.startswith("REUSED").any()
    merged = after.merge(before, on=key, suffixes=("", "_before"), validate="one_to_one")
    assert len(merged) == len(before) == len(after)
    kept = merged["video_path"] != left_out
    for column in ("start", "end", "language", "asr_confidence", "asr_model"):
        assert (merged.loc[kept, column] == merged.loc[kept, f"{column}_before"]).all(), column
    # The new video was transcribed in a group of its own, no longer sharing Whisper windows with the others
    # (`pipelines.windows`): the same utterances, word times within Whisper's timing jitter.
    anew = merged[~kept]
    np.testing.assert_allclose(anew[["start", "end"]], anew[["start_before", "end_before"]], atol=0.5)
    assert (merged["score_audio"] != merged["score_audio_before"]).all()  # another model scored them


@pytest.mark.slow
def test_the_report_pairs_each_rescored_utterance_with_its_earlier_self(whole_run, earlier_output, rescored, tmp_path):
    """Shared transcripts: every reused utterance meets itself. The video transcribed anew may be cut otherwise;
    whatever of it has no partner is counted on each side, and the changes are the new model's minus the old."""
    from annotate.report.cli import main as report
    from tests.report_page import read_page

    (scores, _, _), (_, left_out, before), (out, _, _, _) = whole_run, earlier_output, rescored
    page_file = tmp_path / "changes.html"
    result = CliRunner().invoke(report, [str(out), "--compare", str(scores), "--out", str(page_file)])
    assert result.exit_code == 0, result.output
    figures = {k: f.value for k, f in read_page(page_file.read_text()).figures.items()}

    after = pd.read_parquet(out)
    keys = ["video_id", "s", "e"]
    millis = {"s": lambda f: (f["start"] * 1000).round(), "e": lambda f: (f["end"] * 1000).round()}
    pairs = after.assign(**millis).merge(before.assign(**millis), on=keys, suffixes=("", "_before"))
    assert (pairs["video_path"] != left_out).sum() == (after["video_path"] != left_out).sum()  # all reused met
    assert figures["compare.matched"] == len(pairs)
    assert figures["compare.only_here"] == len(after) - len(pairs)
    assert figures["compare.only_other"] == len(before) - len(pairs)
    change = pairs["score_fused"].astype(float) - pairs["score_fused_before"].astype(float)
    assert figures["compare.fused.mean_change"] == pytest.approx(change.mean(), rel=1e-6)
    assert figures["compare.audio.pearson"] == pytest.approx(
        pairs["score_audio"].astype(float).corr(pairs["score_audio_before"].astype(float)), rel=1e-6
    )


def annotate_without_ray(*args: str | Path) -> subprocess.CompletedProcess:
    """The command in a process of its own, no Ray running or asked for; its stderr ends saying if Ray was imported."""
    reports_ray = "import sys\nfrom annotate.cli import main\ntry:\n    main()\nfinally:\n"
    reports_ray += "    print('ray imported:', 'ray' in sys.modules, file=sys.stderr)\n"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-c", reports_ray, *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_rescoring_on_this_machine_alone_needs_no_ray_and_gives_each_utterance_its_score(
    whole_run, annotate_corpus, tiny_checkpoint, tmp_path
) -> None:
    """Every video stored and no cluster asked for: the command re-scores in its own process (`pipelines.local`)
    and never imports Ray; each reused utterance keeps its fields and gets the score the Ray run gave it."""
    earlier, _, _ = whole_run
    assert not runs_here(EngineOptions(), [Video("/v.mp4", "a" * 16)], {"a" * 16: "[]"})  # Ray is up in this one
    out = tmp_path / "here.parquet"
    args = [annotate_corpus.good, "--out", out, "--model", tiny_checkpoint, "--transcripts", earlier, *FAST]
    done = annotate_without_ray(*args)
    assert done.returncode == 0 and "ray imported: False" in done.stderr, done.stderr[-3000:]
    key = ["video_id", "utterance"]
    here, before = pd.read_parquet(out), pd.read_parquet(earlier)
    merged = here.merge(before, on=key, suffixes=("", "_ray"), validate="one_to_one")
    assert len(merged) == len(here) == len(before[before["video_path"].str.startswith(str(annotate_corpus.good))])
    for column in ("video_path", "start", "end", "text", "language", "asr_confidence", "asr_model", "model_id"):
        assert (merged[column] == merged[f"{column}_ray"]).all(), column
    for head in ("score_fused", "score_text", "score_audio"):
        np.testing.assert_allclose(merged[head], merged[f"{head}_ray"], atol=1e-5)


@pytest.mark.parametrize("stored", [True, False], ids=["rescoring", "first-run"])
def test_a_run_here_gives_what_ray_gives_error_rows_included(
    whole_run, annotate_corpus, tiny_checkpoint, stored
) -> None:
    """`pipelines.local.run_here` against `pipelines.engine.run` (Ray is up in this module) on the same videos:
    re-scoring stored utterances (the good videos, one whose stored utterances are unreadable, and a broken file
    made to look stored, its decoding fails), and a first run through Whisper (the good videos and the broken
    file)."""
    from pipelines.discover import discover
    from pipelines.engine import run
    from pipelines.local import run_here
    from pipelines.options import ASROptions, ScoreOptions, SegmentOptions
    from pipelines.transcripts import stored_utterances

    earlier, _, _ = whole_run
    good, _ = discover([annotate_corpus.good])
    [broken], _ = discover([annotate_corpus.broken / "notes.mp4"])
    transcripts = {}
    if stored:
        kept = stored_utterances(str(earlier), {v.video_id for v in good})
        transcripts = {**kept, good[-1].video_id: "not json", broken.video_id: kept[good[0].video_id]}
    videos = [*good, broken]
    asr, scoring = ASROptions(model="packaged:whisper-tiny.en"), ScoreOptions(checkpoint=str(tiny_checkpoint))
    engine = EngineOptions(score_calls=2)

    def by_video(results):
        return {r.video.video_id: r for r in results}

    here = by_video(run_here(videos, asr, SegmentOptions(), scoring, engine, transcripts))
    ray = by_video(run(videos, asr, SegmentOptions(), scoring, engine, transcripts))
    assert here.keys() == ray.keys() == {v.video_id for v in videos}
    assert here[broken.video_id].error["stage"] == "demux"
    if stored:
        assert here[good[-1].video_id].error["stage"] == "segment"
    for video_id, result in here.items():
        other = ray[video_id]
        if result.error or other.error:

            def said(error):  # ffmpeg names its decoder by memory address
                return error["stage"], error["error_type"], re.sub(r"0x[0-9a-f]+", "", error["message"])

            assert said(result.error) == said(other.error)
            continue
        assert len(result.rows) == len(other.rows) > 0 and result.audio_seconds == other.audio_seconds
        for mine, theirs in zip(result.rows, other.rows):
            for key in mine:
                if key.startswith("score_"):
                    assert mine[key] == pytest.approx(theirs[key], abs=1e-5), key
                else:
                    assert mine[key] == theirs[key] or mine[key] != mine[key] and theirs[key] != theirs[key], key


@without_cuda
def test_rescoring_on_cuda_without_one_is_refused_before_any_work(
    whole_run, annotate_corpus, tiny_checkpoint, tmp_path
):
    earlier, _, _ = whole_run
    out = tmp_path / "cuda.parquet"
    done = annotate_without_ray(
        annotate_corpus.good,
        "--out",
        out,
        "--model",
        tiny_checkpoint,
        "--transcripts",
        earlier,
        *FAST,
        "--device",
        "cuda",
    )
    assert done.returncode == 2 and "--device cuda asks for GPUs but this machine has none" in done.stderr
    assert not out.exists() and not list(out.with_name(out.name + ".parts").glob("done/*"))


def test_earlier_settings_fill_in_all_but_the_kept_ones() -> None:
    config = AnnotateConfig()
    earlier = {"asr": {"model": "small", "beam_size": 1, "from_a_later_version": 3}, "segment": {"pause_seconds": 0.5}}
    taken = with_settings(config, earlier, keep={("asr", "beam_size")})
    assert (taken.asr.model, taken.asr.beam_size, taken.segment.pause_seconds) == ("small", config.asr.beam_size, 0.5)
    assert (taken.asr.language, taken.score, taken.engine) == (config.asr.language, config.score, config.engine)


def test_rescoring_takes_the_asr_and_utterance_settings_the_command_line_leaves_out(
    whole_run, annotate_corpus, tiny_checkpoint, tmp_path
) -> None:
    """The README's re-annotation command names no ASR option: an earlier run made with tiny.en and beam 1 is
    re-scored as made (not refused for differing from the defaults), and the output's configuration says so."""
    earlier, _, _ = whole_run
    out = tmp_path / "again.parquet"
    args = [annotate_corpus.good, "--out", out, "--model", tiny_checkpoint, "--transcripts", earlier, "--no-progress"]
    done = annotate_without_ray(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "taking the earlier run's asr.model 'packaged:whisper-tiny.en', asr.beam_size 1" in done.stderr
    config = read_metadata(out)["config"]
    assert (config["asr"]["model"], config["asr"]["beam_size"]) == ("packaged:whisper-tiny.en", 1)
    key = ["video_id", "utterance", "start", "end", "text"]
    again, before = pd.read_parquet(out), pd.read_parquet(earlier)
    assert len(again.merge(before, on=key, validate="one_to_one")) == len(again) > 0
    videos = again["video_id"].nunique()
    resumed = annotate_without_ray(*args)  # the same command again: the same settings taken, every video kept
    assert resumed.returncode == 0 and f"({videos} from an earlier run)" in resumed.stderr, resumed.stderr[-3000:]

    code, output = annotate(*args, "--beam-size", "5")  # given, though the default: the earlier run's was 1
    assert code == 2 and "asr.beam_size: 1 -> 5" in output


def test_a_run_saved_before_the_whisper_margin_existed_resumes_as_it_ran() -> None:
    """Such a run's Whisper heard each region's own margin; a resumption must hear the same, or its words differ."""
    saved = json.loads(json.dumps(result_identity(AnnotateConfig(), "model")))
    del saved["asr"]["whisper_pad_ms"]
    assert from_dict(AnnotateConfig, {"asr": saved["asr"]}).asr.whisper_pad_ms == 200
    assert AnnotateConfig().asr.whisper_pad_ms == 400


def test_every_option_behind_an_utterance_setting_is_known_to_the_inheritance() -> None:
    """An option feeding the asr or segment identity but missing from `_UTTERANCE_OPTIONS` would be overwritten by
    the earlier run's value without a word; only the VAD margins and minimum pause have no option."""
    identity = result_identity(AnnotateConfig(), "model")
    settings = {(section, key) for section in ("asr", "segment") for key in identity[section]}
    assert settings - set(_UTTERANCE_OPTIONS.values()) == {
        ("asr", "vad_min_silence_ms"),
        ("asr", "vad_speech_pad_ms"),
        ("asr", "whisper_pad_ms"),
    }
    assert set(_UTTERANCE_OPTIONS) <= {p.name for p in main.params}


def test_stored_utterances_longer_than_the_new_model_reads_are_refused(
    whole_run, annotate_corpus, tiny_checkpoint, tmp_path
) -> None:
    """Taken from --transcripts, an utterance limit beyond the model's audio is refused like a given one, and the
    message says where it came from."""
    earlier, _, _ = whole_run
    metadata = read_metadata(earlier)
    metadata["identity"]["segment"]["max_seconds"] = 6.0
    longer = tmp_path / "longer.parquet"
    pq.write_table(with_metadata(pq.read_table(earlier), metadata), longer)
    args = [annotate_corpus.good, "--out", tmp_path / "s.parquet", "--model", tiny_checkpoint, "--transcripts", longer]
    code, output = annotate(*args, "--no-progress")
    assert code == 2 and "--max-utterance 6 s is longer than the 4 s of audio the model scores" in output
    assert f"the utterances of --transcripts {longer} were cut that long" in output.replace("\n", "")
    assert not (tmp_path / "s.parquet.parts").exists()


def test_transcripts_from_other_asr_or_utterance_settings_are_refused(
    earlier_output, annotate_corpus, tmp_path, tiny_checkpoint
) -> None:
    earlier, _, _ = earlier_output
    code, output = annotate(
        annotate_corpus.good,
        "--out",
        tmp_path / "s.parquet",
        "--model",
        tiny_checkpoint,
        "--transcripts",
        earlier,
        *FAST,
        "--max-utterance",
        "3",
    )
    assert code == 2 and "segment.max_seconds" in output and str(earlier) in output
    not_an_output = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1]}), not_an_output)
    code, output = annotate(
        annotate_corpus.good,
        "--out",
        tmp_path / "s.parquet",
        "--model",
        tiny_checkpoint,
        "--transcripts",
        not_an_output,
        *FAST,
    )
    assert code == 2 and "not an mmml-annotate output" in output and str(not_an_output) in output
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.slow
def test_speech_in_a_language_the_text_encoder_does_not_read_gets_no_text_score(tiny_checkpoint, tmp_path) -> None:
    """espeak-ng speaks Spanish, Whisper base (multilingual) hears Spanish; the tiny model reads English only.

    The utterances keep their words but get a null text score and a fused score from the voice; the summary
    line and the report count them. (A video alone: short videos share Whisper windows, and window mates
    share a language, `pipelines.transcribe`.)
    """
    from annotate.report.figures import corpus
    from annotate.report.runs import load_run
    from tests.media import spoken_video

    video = spoken_video(
        ["Me encantó esta película, es maravillosa.", "La música es muy bonita."], tmp_path / "es.mp4", voice="es"
    )
    out = tmp_path / "scores.parquet"
    code, output = annotate(
        video, "--out", out, "--model", tiny_checkpoint, "--asr-model", "packaged:whisper-base", "--no-progress"
    )
    assert code == 0, output
    frame = pq.read_table(out).to_pandas()
    assert len(frame) == 2 and set(frame["language"]) == {"es"} and (frame["text"].str.len() > 0).all()
    assert frame["score_text"].isna().all() and np.isfinite(frame[["score_fused", "score_audio"]].to_numpy()).all()
    assert "2 utterances (2 in a language the text encoder does not read)" in output
    assert corpus(load_run(out)).unread == 2
