"""docker/Dockerfile and a Ray cluster of containers: the image builds and runs, a worker with its own image and
its own filesystem annotates videos it reads from shared storage, and losing that worker mid-run loses nothing.

Needs podman (scripts/container-tools.sh installs it on Debian). Where podman cannot run, these tests are skipped
with the reason; `MMML_REQUIRE_CONTAINERS=1` (set by .ci/run) makes that a failure. The image is built once per
session on a Debian base made here with mmdebstrap (no registry is needed), with the host's pip configuration
(local wheel folders, the CA bundle of a TLS-intercepting proxy) mounted into the build only: none of it ends up
in the image. Podman's layer cache makes later sessions' builds take seconds.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from tests.test_annotate_resilience import (  # the corpus and checks the single-machine kill tests use
    FAST,
    SENTENCES,
    assert_complete,
    corpus,  # noqa: F401  (a fixture)
    done_parts,
    wait_for,
)

pytestmark = [pytest.mark.containers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BASE = "localhost/mmml-test-base:bookworm"
IMAGE = "localhost/mmml-annotate:test"
PREFIX = f"mmml-test-{os.getpid()}"  # containers and network of this session only
HEAD = f"{PREFIX}-head"
SHARED = "/shared"  # where every container sees the inputs, the model and the output
CA_IN_BUILD = "/run/host-ca/ca-certificates.crt"
WORKER_CPUS = "2"  # the local reference run gets the same, so both size their ASR workers alike
TRANSCRIBE = "MapWorker(FlatMap(Transcribe))"  # Ray Data's name for the ASR actors
ANNOTATED_ON_THE_WORKER = {"Map(demux_group)", TRANSCRIBE, "MapWorker(MapBatches(Score))"}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run podman with an argument list (never a shell); with `check`, a failure fails the test with podman's own
    words."""
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args[:3])}: {result.stderr[-3000:]}"
    return result


def _unusable() -> str | None:
    """Why podman cannot run containers here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/container-tools.sh installs it)"
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"podman does not work here: {info.stderr.strip()[-500:]}"
    if podman("image", "exists", BASE, check=False).returncode != 0 and shutil.which("mmdebstrap") is None:
        return f"neither the base image {BASE} nor mmdebstrap to make it"
    return None


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> str:
    """The CPU image of docker/Dockerfile, on a Debian base made here; built once per session."""
    reason = _unusable()
    if reason:
        if os.environ.get("MMML_REQUIRE_CONTAINERS"):
            pytest.fail(reason)
        pytest.skip(reason)
    started = time.monotonic()
    if podman("image", "exists", BASE, check=False).returncode != 0:
        _make_base()
    scratch = tmp_path_factory.mktemp("build")
    args = ["build", "-f", "docker/Dockerfile", "-t", IMAGE, "--build-arg", f"BASE={BASE}"]
    args += _host_pip_settings(scratch)
    result = subprocess.run(["podman", *args, "."], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"\nimage {IMAGE} ready in {time.monotonic() - started:.0f} s")
    return IMAGE


def _make_base() -> None:
    """A minimal Debian bookworm with Python, imported as BASE (about a minute, no registry)."""
    command = ["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm", "-"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as debootstrap:
        imported = subprocess.run(["podman", "import", "-", BASE], stdin=debootstrap.stdout, capture_output=True)
        debootstrap.stdout.close()
    assert debootstrap.returncode == 0 and imported.returncode == 0, imported.stderr[-2000:]


def _host_pip_settings(scratch: Path) -> list[str]:
    """`podman build` arguments that give the build's pip this machine's pip settings, for this build only.

    The local package folders, the constraints file and the certificate bundle (which trusts this machine's
    TLS-intercepting proxy) are mounted read-only for the build's RUN steps, and a pip.conf naming them
    is mounted at /etc/pip.conf: mounts are not committed, so the image keeps none of them. With local
    package folders, torch comes from them (TORCH_INDEX left empty) rather than from download.pytorch.org.
    """
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    settings: dict[str, str] = {}
    for line in sorted(listed.splitlines(), key=lambda line: line.startswith(":env:")):  # the environment wins
        key, _, value = line.partition("=")
        settings[key.rsplit(".", 1)[-1]] = ast.literal_eval(value)
    mounts: set[str] = set()
    conf = ["[global]"]
    for key in ("index-url", "extra-index-url", "find-links"):
        if key in settings:
            locations = settings[key].split()
            paths = [urlparse(loc).path if loc.startswith("file://") else loc for loc in locations]
            # a local index (.../simple) links to its files beside it, so its parent goes in whole
            mounts.update(str(Path(path).parent) if key.endswith("index-url") else path for path in paths)
            conf.append(f"{key} = {' '.join(locations)}")
    if "constraint" in settings:
        mounts.add(settings["constraint"])
        conf.append(f"constraint = {settings['constraint']}")
    args = [f"--volume={path}:{path}:ro" for path in sorted(mounts) if path.startswith("/") and Path(path).exists()]
    if settings.get("cert"):
        args.append(f"--volume={settings['cert']}:{CA_IN_BUILD}:ro")
        conf.append(f"cert = {CA_IN_BUILD}")
    (scratch / "pip.conf").write_text("\n".join(conf) + "\n")
    args.append(f"--volume={scratch / 'pip.conf'}:/etc/pip.conf:ro")
    if {"find-links", "extra-index-url"} & settings.keys():
        args += ["--build-arg", "TORCH_INDEX="]
    return args


def test_the_image_runs_the_command_as_a_non_root_user_and_holds_no_certificate_of_the_build_machine(image) -> None:
    help_text = podman("run", "--rm", image, "--help").stdout
    assert help_text.startswith("Usage: mmml-annotate") and "--ray-address" in help_text
    probe = (
        "import os, torch; from mmml.packaged import resolve; "
        "print(os.getuid(), torch.version.cuda, os.path.isdir(resolve('packaged:whisper-tiny.en')))"
    )
    uid, cuda, whisper_packaged = podman("run", "--rm", "--entrypoint", "python", image, "-c", probe).stdout.split()
    assert uid != "0" and whisper_packaged == "True"
    assert cuda == "None", f"the CPU image holds a CUDA {cuda} build of torch"
    bundle = podman("run", "--rm", "--entrypoint", "cat", image, "/etc/ssl/certs/ca-certificates.crt").stdout
    for ca in Path("/usr/local/share/ca-certificates").glob("**/*.crt"):
        assert ca.read_text().strip() not in bundle, f"{ca} was baked into the image"
    leftover = podman(
        "run", "--rm", "--entrypoint", "find", image, "/run", "/etc", "-type", "f", "-size", "+0", check=False
    )
    assert CA_IN_BUILD not in leftover.stdout and "/etc/pip.conf" not in leftover.stdout


# ---------------------------------------------------------------- a head and a worker on a private network


@pytest.fixture(scope="module")
def shared(corpus, tiny_checkpoint, tmp_path_factory) -> Path:  # noqa: F811  (the imported fixture)
    """What the README puts on shared storage: the inputs, the model, the output folder (writable by the image's
    non-root user), mounted at the same path in every container."""
    root = tmp_path_factory.mktemp("shared")
    shutil.copytree(corpus, root / "in")
    shutil.copytree(tiny_checkpoint, root / "model")
    (root / "out").mkdir()
    for path in [root, *root.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o644)
    return root


def container_run(shared: Path, *options: str) -> list[str]:
    """`podman run` and the options every container of the test shares (the image comes next)."""
    return ["run", f"--volume={shared}:{SHARED}", "--shm-size=1g", "--env=RAY_AUTH_MODE=disabled", *options]


def annotate_args(out: str) -> list[str]:
    """The one command every run in this module makes, local or on the cluster: only `out` differs."""
    return [f"{SHARED}/in", "--out", f"{SHARED}/out/{out}", "--model", f"{SHARED}/model", *FAST]


@pytest.fixture(scope="module")
def local_rows(image, shared) -> pd.DataFrame:
    """The reference: the same command in one container with its own local Ray."""
    podman(
        *container_run(shared, "--rm"), image, *annotate_args("local.parquet"), "--num-cpus", WORKER_CPUS, timeout=600
    )
    return rows(shared / "out" / "local.parquet")


def rows(path: Path) -> pd.DataFrame:
    """Every row and column, in an order that does not depend on which video finished first."""
    return pd.read_parquet(path).sort_values(["video_id", "utterance"]).reset_index(drop=True)


class Cluster:
    """A Ray head with no CPUs (so every task must run on a worker) and workers, each in its own container."""

    def __init__(self, image: str, shared: Path) -> None:
        self.image, self.shared, self.network = image, shared, PREFIX
        podman("network", "create", self.network)
        self.start(HEAD, "--head", "--port=6379", "--num-cpus=0", "--include-dashboard=false")

    def start(self, name: str, *ray_args: str) -> None:
        podman(
            *container_run(
                self.shared, "--detach", f"--name={name}", f"--hostname={name}", f"--network={self.network}"
            ),
            "--entrypoint=ray",
            self.image,
            "start",
            *ray_args,
            "--disable-usage-stats",
            "--block",
        )

    def add_worker(self, name: str) -> None:
        self.start(f"{PREFIX}-{name}", f"--address={HEAD}:6379", f"--num-cpus={WORKER_CPUS}")
        self.wait_for_nodes(2)

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        probe = (
            "import ray; ray.init(address='auto', logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while True:
            alive = podman("exec", HEAD, "python", "-c", probe, check=False).stdout.split()
            if alive and alive[-1] == str(count):
                return
            assert time.monotonic() < deadline, f"the cluster did not reach {count} nodes"
            time.sleep(2)

    def annotate(self, out: str) -> list[str]:
        """The command, run in the head container as a driver that joins the cluster."""
        return ["podman", "exec", HEAD, "mmml-annotate", *annotate_args(out), "--ray-address", f"{HEAD}:6379"]

    def stop(self) -> None:
        names = podman("ps", "--all", "--filter", f"name=^{PREFIX}-", "--format", "{{.Names}}").stdout.split()
        if names:
            podman("rm", "--force", "--time=0", *names, check=False)
        podman("network", "rm", "--force", self.network, check=False)


@pytest.fixture(scope="module")
def cluster(image, shared):
    cluster = Cluster(image, shared)
    try:
        cluster.add_worker("worker-1")
        yield cluster
    finally:
        cluster.stop()


def ray_work_in(container: str) -> Counter[str]:
    """The Ray tasks and actors that ran in a container (in how many worker processes), from the headers of its
    Ray worker logs."""
    script = (
        "import glob\n"
        "for log in glob.glob('/tmp/ray/session_latest/logs/worker-*.out'):\n"
        "    heads = {line.strip() for line in open(log) if line.startswith((':task_name:', ':actor_name:'))}\n"
        "    print(*(head.split(':', 2)[2] for head in heads), sep='\\n')\n"
    )
    return Counter(line for line in podman("exec", container, "python", "-c", script).stdout.splitlines() if line)


def test_a_worker_container_annotates_through_ray_address_as_a_local_run_does(cluster, local_rows, shared) -> None:
    run = subprocess.run(cluster.annotate("cluster.parquet"), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert ANNOTATED_ON_THE_WORKER.issubset(ray_work_in(f"{PREFIX}-worker-1"))
    assert not ANNOTATED_ON_THE_WORKER & set(ray_work_in(HEAD))
    pd.testing.assert_frame_equal(rows(shared / "out" / "cluster.parquet"), local_rows)


def test_a_worker_container_killed_mid_run_loses_and_duplicates_nothing(cluster, local_rows, shared, corpus) -> None:  # noqa: F811
    out = shared / "out" / "killed.parquet"
    worker = f"{PREFIX}-worker-1"
    transcribers = ray_work_in(worker)[TRANSCRIBE]  # from an earlier run on this cluster
    with open(shared / "killed.log", "w") as log:
        driver = subprocess.Popen(cluster.annotate(out.name), stdout=log, stderr=subprocess.STDOUT)
        try:
            # Killed once this run's ASR worker has started on it: waiting for the first finished video instead
            # raced with warm runs, which finish all six within a second of the first.
            wait_for(lambda: ray_work_in(worker)[TRANSCRIBE] > transcribers, driver)
            podman("kill", worker)
            before = done_parts(out)
            assert len(before) < len(SENTENCES), "the kill should land mid-run"
            cluster.add_worker("worker-2")  # the replacement a restart policy or an autoscaler would start
            finished = driver.wait(timeout=600)
        finally:
            driver.kill()
    if finished != 0:  # Ray gave up on the lost work: the same command resumes the run
        rerun = subprocess.run(cluster.annotate(out.name), capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert f"{len(before)} from an earlier run" in rerun.stderr
    print(
        f"\nkilled with {len(before)} of {len(SENTENCES)} videos done; "
        + ("Ray retried" if finished == 0 else "resumed")
    )
    after = done_parts(out)
    assert {name: after[name] for name in before} == before  # finished videos were not processed again
    assert_complete(out, corpus)
    pd.testing.assert_frame_equal(rows(out), local_rows)
