"""Engine logic that needs no cluster: regrouping rows into videos, resource decisions."""

from __future__ import annotations

import pytest

from pipelines.collecting import Collector
from pipelines.discover import Video
from pipelines.engine import ClusterTooSmall, _check_fits, check_gpus
from pipelines.options import ASROptions, EngineOptions, ScoreOptions
from pipelines.sizing import worker_gpus as _gpus

VIDEO = Video("/v/a.mp4", "a" * 16)


def row(i: int, n: int, **extra) -> dict:
    return {
        "video_path": VIDEO.path,
        "video_id": VIDEO.video_id,
        "utterance": i,
        "start": float(i),
        "end": i + 0.5,
        "text": f"u{i}",
        "language": "en",
        "language_probability": 1.0,
        "asr_confidence": 0.9,
        "score_fused": 0.1,
        "score_text": 0.2,
        "score_audio": 0.3,
        "model_id": "m",
        "asr_model": "w",
        "n_utterances": n,
        "duration": 9.0,
        "error_stage": "",
        "error_type": "",
        "error_message": "",
        "error_traceback": "",
        **extra,
    }


def test_a_video_is_complete_when_all_its_rows_arrived_in_any_order_and_repeats_do_not_count() -> None:
    collector = Collector()
    assert collector.add(row(2, 3), VIDEO) is None
    assert collector.add(row(2, 3), VIDEO) is None  # a retried task delivering a row again
    assert collector.add(row(0, 3), VIDEO) is None
    result = collector.add(row(1, 3), VIDEO)
    assert [r["utterance"] for r in result.rows] == [0, 1, 2] and result.error is None
    assert "n_utterances" not in result.rows[0] and result.audio_seconds == 9.0


def test_one_failed_utterance_fails_its_video() -> None:
    collector = Collector()
    collector.add(row(0, 2), VIDEO)
    result = collector.add(row(1, 2, error_stage="score", error_type="RuntimeError", error_message="boom"), VIDEO)
    assert result.rows == [] and result.error["stage"] == "score" and result.error["message"] == "boom"


def test_an_early_failure_is_the_only_row_of_its_video() -> None:
    result = Collector().add(row(-1, 0, error_stage="demux", error_type="DemuxError", error_message="x"), VIDEO)
    assert result.error == {
        "video_path": VIDEO.path,
        "video_id": VIDEO.video_id,
        "stage": "demux",
        "error_type": "DemuxError",
        "message": "x",
        "traceback": "",
    }


def _bug() -> float:
    return 1 / 0


def test_an_unexpected_error_keeps_its_traceback_and_a_bad_file_does_not_need_one() -> None:
    from pipelines.demux import DemuxError
    from pipelines.rows import NoSpeech
    from pipelines.rows import failure as _failure

    try:
        _bug()
    except ZeroDivisionError as err:
        failure = _failure("/v.mp4", "asr", err)
    assert failure["error_message"] == "/v.mp4: division by zero" and failure["error_type"] == "ZeroDivisionError"
    assert "in _bug" in failure["error_traceback"] and "return 1 / 0" in failure["error_traceback"]
    assert _failure("/v.mp4", "segment", NoSpeech("/v.mp4: silent"))["error_traceback"] == ""
    assert _failure("/v.mp4", "demux", DemuxError("/v.mp4: no audio stream"))["error_traceback"] == ""


@pytest.mark.parametrize(
    ("requested", "has_gpu", "device", "expected"),
    [
        (None, False, "auto", 0.0),
        (None, True, "auto", 0.5),
        (None, True, "cpu", 0.0),
        (1.0, True, "auto", 1.0),
    ],
)
def test_workers_take_gpus_only_where_there_are_some(requested, has_gpu, device, expected) -> None:
    assert _gpus(requested, has_gpu, device) == expected


def test_a_pipeline_larger_than_the_cluster_is_refused() -> None:
    _check_fits(EngineOptions(), available_cpus=2)
    with pytest.raises(ClusterTooSmall, match="needs 4.75 logical CPUs"):
        _check_fits(EngineOptions(asr_workers=4), available_cpus=2)


@pytest.mark.parametrize(
    ("asr", "scoring", "engine", "named"),
    [
        (ASROptions(device="cuda"), ScoreOptions(device="cuda"), EngineOptions(), "--device cuda"),
        (ASROptions(), ScoreOptions(), EngineOptions(asr_gpus=0.5), "--asr-gpus"),
        (ASROptions(), ScoreOptions(), EngineOptions(score_gpus=1.0), "--score-gpus"),
    ],
)
def test_gpu_work_on_a_cluster_without_gpus_is_refused(asr, scoring, engine, named) -> None:
    with pytest.raises(ClusterTooSmall, match=f"{named} asks for GPUs but the Ray cluster has none \\(2 CPUs\\)"):
        check_gpus(asr, scoring, engine, {"CPU": 2.0})
    check_gpus(asr, scoring, engine, {"CPU": 2.0, "GPU": 1.0})  # with a GPU it goes ahead
    check_gpus(ASROptions(), ScoreOptions(), EngineOptions(), {"CPU": 2.0})  # auto never asks for one


def test_a_long_recording_is_whole_when_its_last_row_has_come_and_failed_part_way_when_an_error_row_comes() -> None:
    collector = Collector()
    assert collector.add(row(1, 0), VIDEO) is None and collector.add(row(0, 0), VIDEO) is None  # count unknown yet
    result = collector.add(row(2, 3, duration=7200.0), VIDEO)
    assert [r["utterance"] for r in result.rows] == [0, 1, 2] and result.audio_seconds == 7200.0

    failing = Collector()
    assert failing.add(row(0, 0), VIDEO) is None
    error = row(-1, 0, error_stage="demux", error_type="DemuxError", error_message="broken at 1:10:00")
    assert failing.add(error, VIDEO).error["message"] == "broken at 1:10:00"
    assert failing.add(row(1, 0), VIDEO) is None and failing.add(row(2, 3), VIDEO) is None  # late rows: dropped
    assert not failing.pending


def test_asr_workers_and_threads_are_sized_from_the_cluster() -> None:
    from pipelines.sizing import sized

    def size(nodes, asr=ASROptions(), engine=EngineOptions()):
        asr, _, engine = sized(asr, ScoreOptions(), engine, nodes)
        return engine.asr_workers, asr.cpu_threads

    assert size([{"CPU": 2.0}]) == (1, 2)  # this machine: one worker on both cores
    assert size([{"CPU": 16.0}]) == (2, 8)
    assert size([{"CPU": 16.0}, {"CPU": 4.0}]) == (5, 4)  # threads fit the smallest node
    assert size([{"CPU": 16.0, "GPU": 2.0}]) == (2, 8)  # one per GPU
    assert size([{"CPU": 16.0, "GPU": 2.0}], asr=ASROptions(device="cpu")) == (2, 8)
    assert size([{"CPU": 2.0}], ASROptions(cpu_threads=1), EngineOptions(asr_workers=3)) == (3, 1)  # flags win
    # --asr-threads 1 on 2 cores: two workers would ask for 2 + 0.5 (scoring) + 0.25 (decoding) logical CPUs of 2
    assert size([{"CPU": 2.0}], ASROptions(cpu_threads=1)) == (1, 1)
    asr, _, engine = sized(ASROptions(cpu_threads=1), ScoreOptions(), EngineOptions(), [{"CPU": 2.0}])
    _check_fits(engine, 2.0)  # what the run checks before any work: no ClusterTooSmall


def test_scoring_runs_calls_side_by_side_on_a_cpu_with_one_thread_each_beside_asr() -> None:
    from pipelines.sizing import sized

    def sizing(nodes, needs_asr, scoring=ScoreOptions(), engine=EngineOptions()):
        _, scoring, engine = sized(ASROptions(), scoring, engine, nodes, needs_asr)
        return engine.score_calls, scoring.torch_threads

    mixed = [{"CPU": 16.0}, {"CPU": 4.0}]
    assert sizing(mixed, needs_asr=True) == (4, 1)  # beside ASR: calls for the backlog Whisper leaves, one thread
    assert sizing([{"CPU": 16.0, "GPU": 1.0}], needs_asr=True) == (1, 1)
    assert sizing([{"CPU": 2.0}], needs_asr=False) == (2, 1)  # this machine: one call per core
    assert sizing(mixed, needs_asr=False) == (4, 1)  # the smallest node's cores
    assert sizing([{"CPU": 16.0}], needs_asr=False) == (4, 4)  # at most MAX_SCORE_CALLS, threads for the rest
    assert sizing([{"CPU": 16.0, "GPU": 1.0}], needs_asr=False) == (1, 16)  # a GPU scores one batch at a time
    gpu_left_out = EngineOptions(score_gpus=0)  # --score-gpus 0: scoring on the CPU of a GPU node
    assert sizing([{"CPU": 16.0, "GPU": 1.0}], needs_asr=False, engine=gpu_left_out) == (4, 4)
    assert sizing(mixed, needs_asr=False, scoring=ScoreOptions(torch_threads=2)) == (4, 2)  # flags win
    assert sizing(mixed, needs_asr=False, engine=EngineOptions(score_calls=1)) == (1, 4)


def test_compute_type_auto_is_float16_on_a_gpu_and_int8_on_a_cpu() -> None:
    from pipelines.transcribe import compute_type

    assert compute_type(ASROptions(), "cuda") == "float16" and compute_type(ASROptions(), "cpu") == "int8"
    assert compute_type(ASROptions(compute_type="int8_float16"), "cuda") == "int8_float16"


def test_groups_are_consecutive_inputs_within_a_count_and_a_byte_budget(tmp_path) -> None:
    from pipelines.grouping import groups

    sizes = [10, 10, 10, 50, 10, 100, 10]
    videos = []
    for i, size in enumerate(sizes):
        (tmp_path / f"{i}.mp4").write_bytes(b"x" * size)
        videos.append(Video(str(tmp_path / f"{i}.mp4"), f"{i:016d}"))
    videos.append(Video(str(tmp_path / "gone.mp4"), "g" * 16))  # vanished: counts 0 bytes, demux reports it
    names = [[v.path.rsplit("/", 1)[-1] for v in g] for g in groups(videos, max_videos=3, max_bytes=60)]
    assert names == [["0.mp4", "1.mp4", "2.mp4"], ["3.mp4", "4.mp4"], ["5.mp4"], ["6.mp4", "gone.mp4"]]
    assert groups(videos, max_videos=1, max_bytes=60) == [[v] for v in videos]


def test_scoring_autocasts_to_float16_on_a_gpu_only() -> None:
    import torch

    from pipelines.score import autocast_dtype

    assert autocast_dtype("cuda", amp=True) is torch.float16
    assert autocast_dtype("cuda", amp=False) is None and autocast_dtype("cpu", amp=True) is None


@pytest.mark.slow
def test_a_run_shuts_down_the_ray_it_started_and_leaves_a_callers_ray_up() -> None:
    """In a fresh interpreter (no other test's Ray): the run's own local Ray is gone when the run ends, before
    interpreter exit; a Ray the caller had started is still there after a run inside it."""
    import subprocess
    import sys

    probe = (
        "import ray\n"
        "from pipelines.engine import ray_session\n"
        "from pipelines.options import EngineOptions\n"
        "with ray_session(EngineOptions(num_cpus=3)):\n"
        "    assert ray.cluster_resources()['CPU'] == 3\n"
        "assert not ray.is_initialized()\n"
        "ray.init(num_cpus=1, include_dashboard=False)\n"
        "with ray_session(EngineOptions(num_cpus=1)):\n"
        "    pass\n"
        "assert ray.is_initialized()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_run_that_asks_for_no_ray_runs_in_this_process_if_one_cpu_worker_does_it(monkeypatch) -> None:
    from pipelines.local import runs_here

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    other = Video("/v/b.mp4", "b" * 16)
    stored = {VIDEO.video_id: "[]", other.video_id: "[]"}
    needs_whisper = {VIDEO.video_id: "[]"}
    assert runs_here(EngineOptions(), [VIDEO, other], stored)
    cpu = ASROptions(device="cpu"), ScoreOptions(device="cpu")
    assert runs_here(EngineOptions(num_cpus=2), [VIDEO, other], needs_whisper, *cpu)  # one ASR worker of 2 lanes
    assert not runs_here(EngineOptions(num_cpus=32), [VIDEO, other], needs_whisper, *cpu)  # 4 workers: Ray's
    assert not runs_here(EngineOptions(num_cpus=2), [VIDEO, other], needs_whisper, ASROptions(device="cuda"))
    assert not runs_here(EngineOptions(mode="ray"), [VIDEO, other], stored)  # --engine
    assert runs_here(EngineOptions(mode="here", num_cpus=32), [VIDEO, other], needs_whisper, *cpu)
    assert not runs_here(EngineOptions(ray_address="10.0.0.1:6379"), [VIDEO, other], stored)  # --ray-address
    assert not runs_here(EngineOptions(score_workers=2), [VIDEO, other], stored)  # workers are Ray's to place
    monkeypatch.setenv("RAY_ADDRESS", "auto")  # inside a Ray job
    assert not runs_here(EngineOptions(), [VIDEO, other], stored)
