"""A real Label Studio server on localhost for tests: its own virtual environment, SQLite, local-files serving.

`scripts/setup.sh` installs Label Studio into `.venv-labelstudio` (its pins are not the project's);
`LABEL_STUDIO` names another `label-studio` executable. The administrator speaks to the API with a
token; labellers sign up and log in through the web forms and submit annotations with their browser
session, as the labelling page does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
TOKEN = "mmml0test0token0for0label0studio0000001"
ADMIN = ("admin@example.com", "admin-password-1")


def executable() -> str:
    found = os.environ.get("LABEL_STUDIO") or shutil.which("label-studio", path=str(REPO / ".venv-labelstudio/bin"))
    if not found:
        raise RuntimeError("Label Studio is not installed: run scripts/setup.sh (or set LABEL_STUDIO=<label-studio>)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Token {TOKEN}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.url + path, headers=self.admin, timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def labeller(self, email: str, password: str) -> Labeller:
        """A labeller who signs up through the web form and is then logged in, as in a browser."""
        session = requests.Session()
        session.get(self.url + "/user/signup/", timeout=60)
        form = {"email": email, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]}
        session.post(self.url + "/user/signup/", data=form, headers={"Referer": self.url}, timeout=60)
        who = session.get(self.url + "/api/current-user/whoami", timeout=60)
        who.raise_for_status()
        return Labeller(self, session, who.json()["id"])


@dataclass
class Labeller:
    server: Server
    session: requests.Session
    user_id: int

    def get(self, path: str) -> requests.Response:
        response = self.session.get(self.server.url + path, timeout=60)
        response.raise_for_status()
        return response

    def submit(self, project: int, task: int, result: list[dict], *, skip: bool = False) -> dict:
        headers = {"X-CSRFToken": self.session.cookies["csrftoken"], "Referer": self.server.url}
        body = {"result": result, "was_cancelled": skip, "lead_time": 4.2}
        url = f"{self.server.url}/api/tasks/{task}/annotations/?project={project}"
        response = self.session.post(url, json=body, headers=headers, timeout=60)
        response.raise_for_status()
        return response.json()


def start(data_dir: Path, document_root: Path, timeout: float = 240.0) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
    }
    command = [executable(), "start", "--no-browser", "--port", str(port), "--data-dir", str(data_dir)]
    command += ["--username", ADMIN[0], "--password", ADMIN[1], "--user-token", TOKEN, "--enable-legacy-api-token"]
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = _tail(data_dir / "server.log")
            raise RuntimeError(f"Label Studio exited with {process.returncode}; the end of its log:\n{log}")
        try:
            if requests.get(server.url + "/health", timeout=5).ok:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(1)
    process.terminate()
    log = _tail(data_dir / "server.log")
    raise RuntimeError(f"Label Studio did not answer within {timeout:.0f} s; the end of its log:\n{log}")


def _tail(log: Path, lines: int = 40) -> str:
    """The log's end goes into the error itself: CI keeps the test output, not the server's data directory."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
