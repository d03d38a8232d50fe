"""The command under real adversity, each run in its own process: SIGKILL and resume, a worker dying,
and a run that joins a two-node Ray cluster through `--ray-address`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from mmml.packaged import OFFLINE_ENV
from tests import media

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FAST = [
    "--asr-model",
    "packaged:whisper-tiny.en",
    "--beam-size",
    "1",
    "--no-progress",
    "--score-batch-size",
    "1",
    "--group-videos",
    "1",
]  # six groups, so that a kill can land between them
SENTENCES = [
    "The first video says something nice.",
    "The second video is rather boring.",
    "A third one about a terrible film.",
    "Number four talks about great music.",
    "The fifth clip complains about the plot.",
    "Six is the last and it is wonderful.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Six distinct videos of three sentences each (enough work per video that a kill lands between two)."""
    folder = tmp_path_factory.mktemp("six")
    for i, sentence in enumerate(SENTENCES):
        more = ["We watched it at home last night.", "My brother chose the film."]
        media.spoken_video([sentence, *more], folder / f"clip {i} ü.mp4", pause_seconds=0.5)
    return folder


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "annotate", *map(str, args)]


def env() -> dict[str, str]:
    return {**os.environ, **OFFLINE_ENV}


def done_parts(out: Path) -> dict[str, int]:
    folder = out.with_name(out.name + ".parts") / "done"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")} if folder.is_dir() else {}


def wait_for(condition, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the awaited moment"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill_tree(process: subprocess.Popen, descendants: list[psutil.Process]) -> None:
    """SIGKILL the command, then reap whatever it had started (Ray agents outlive their driver)."""
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(2)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def assert_complete(out: Path, corpus: Path) -> pd.DataFrame:
    table = pd.read_parquet(out)
    per_video = table.groupby("video_path")["utterance"].apply(sorted)
    assert sorted(Path(p).name for p in per_video.index) == sorted(p.name for p in corpus.glob("*.mp4"))
    assert all(utterances == list(range(3)) for utterances in per_video)  # every sentence once, none twice
    assert not table.duplicated(["video_id", "utterance"]).any()
    assert table.notna().all().all()
    return table


def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(corpus, tiny_checkpoint, tmp_path) -> None:
    out = tmp_path / "scores.parquet"
    args = command(corpus, "--out", out, "--model", tiny_checkpoint, *FAST)
    first = subprocess.Popen(args, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(done_parts(out)) >= 1, first)
    kill_tree(first, psutil.Process(first.pid).children(recursive=True))
    before = done_parts(out)
    assert 1 <= len(before) < len(SENTENCES), "the kill should land mid-run"
    assert not out.exists()

    second = subprocess.run(args, cwd=REPO, env=env(), capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{len(before)} from an earlier run" in second.stderr
    after = done_parts(out)
    assert {name: after[name] for name in before} == before  # finished videos were not processed again
    assert_complete(out, corpus)


def test_a_dying_worker_is_retried(corpus, tiny_checkpoint, tmp_path) -> None:
    """Ray restarts a killed ASR actor (`--engine ray`: on a small machine the run would otherwise have none)."""
    out = tmp_path / "scores.parquet"
    run = subprocess.Popen(
        command(corpus, "--out", out, "--model", tiny_checkpoint, *FAST, "--engine", "ray"),
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def asr_worker() -> psutil.Process | None:
        for child in psutil.Process(run.pid).children(recursive=True):
            try:
                if "Transcribe" in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                pass
        return None

    # Kill the ASR worker as soon as it exists: waiting for a finished video as well raced with short runs that
    # finish transcribing (and retire the worker) before their first video is scored.
    seen: list[psutil.Process | None] = []

    def worker_found() -> bool:
        seen.append(asr_worker())
        return seen[-1] is not None

    wait_for(worker_found, run)
    seen[-1].kill()
    _, stderr = run.communicate(timeout=400)
    assert run.returncode == 0, stderr[-3000:]
    assert_complete(out, corpus)


@pytest.fixture
def two_node_cluster(tmp_path):
    """`ray start --head` and a second `ray start --address` (1 CPU each); only their own processes are stopped."""
    port = _free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths have a length limit
    ray = str(Path(sys.executable).with_name("ray"))
    common = {"cwd": REPO, "env": env(), "capture_output": True, "text": True, "timeout": 120}
    head = subprocess.run(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        **common,
    )
    assert head.returncode == 0, head.stderr
    address = f"127.0.0.1:{port}"
    try:
        worker = subprocess.run([ray, "start", f"--address={address}", "--num-cpus=1"], **common)
        assert worker.returncode == 0, worker.stderr
        yield address
    finally:
        _stop_processes_under(temp_dir)


def test_joins_an_existing_cluster(two_node_cluster, corpus, tiny_checkpoint, tmp_path) -> None:
    out = tmp_path / "scores.parquet"
    nodes = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import ray; ray.init(address='{two_node_cluster}'); print(sum(n['Alive'] for n in ray.nodes()))",
        ],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert nodes.stdout.strip().splitlines()[-1] == "2", nodes.stderr[-2000:]
    run = subprocess.run(
        command(
            corpus,
            "--out",
            out,
            "--model",
            tiny_checkpoint,
            *FAST,
            "--ray-address",
            two_node_cluster,
            "--asr-cpus",
            "0.5",
            "--score-cpus",
            "0.5",
        ),
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert_complete(out, corpus)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_processes_under(temp_dir: Path) -> None:
    """Kill the processes whose command line names our Ray temp dir, and their descendants (never `ray stop`,
    which would stop every Ray on the machine)."""
    roots = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(str(temp_dir) in part for part in process.info["cmdline"] or ()):
                roots.append(process)
        except psutil.Error:
            pass
    family = {p.pid: p for root in roots for p in [root, *_children(root)]}
    for process in family.values():
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(list(family.values()), timeout=10)


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []
