"""A real Docker engine, the offline-built notebook image, and a master with Docker agents.

``dockerd`` uses the engine that answers on ``$DOCKER_HOST`` or the default socket; when none does
it starts ``dockerd`` itself, with its data under ``~/.cache/jupyter-valohai/dockerd`` so the
test image survives between runs. Parallel test workers share one engine: each registers itself,
and the last one out stops the engine the tests started (never one that was already running).
``test_image`` runs ``scripts/build-test-image`` (a no-op when the image of the same recipe exists).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agent.runtimes.docker import LABEL_OWNER
from agent.runtimes.engine import engine_answers
from tests.docker.dockerstack import DockerStack

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("VH_CACHE_DIR") or Path.home() / ".cache" / "jupyter-valohai")
STATE = CACHE / "dockerd-tests"  # lock, pid of the dockerd the tests started, its users


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_dockerd() -> None:
    """Start dockerd on the default socket, data under the cache; fail clearly if it can't."""
    binary = subprocess.run(["sh", "-c", "command -v dockerd"], capture_output=True, text=True)
    if binary.returncode != 0:
        pytest.fail(
            "No Docker engine answers and dockerd is not installed: apt-get install docker.io"
        )
    run_dir = STATE / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(STATE / "dockerd.log", "ab")  # noqa: SIM115 - dockerd holds it
    proc = subprocess.Popen(
        [
            binary.stdout.strip(),
            "--data-root",
            str(CACHE / "dockerd"),
            "--exec-root",
            str(run_dir / "exec"),
            "--pidfile",
            str(run_dir / "dockerd.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # outlives this worker if another one still uses it
    )
    (STATE / "started.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while not engine_answers():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = (STATE / "dockerd.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"dockerd did not start (exit {proc.poll()}):\n{tail}")
        time.sleep(0.2)


def _stop_dockerd() -> None:
    pid_file = STATE / "started.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    pid_file.unlink()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[docker.DockerClient]:
    """A client of a real Docker engine (the running one, or a dockerd started for the tests)."""
    users = STATE / "users"
    me = users / str(os.getpid())
    with _locked():
        users.mkdir(parents=True, exist_ok=True)
        for stale in users.iterdir():  # workers that died without tearing down
            if not _alive(int(stale.name)):
                stale.unlink()
        if not engine_answers():
            _stop_dockerd()  # a pid file of ours whose engine died
            _start_dockerd()
        me.touch()
    client = docker.from_env(timeout=120)
    try:
        yield client
    finally:
        client.close()
        with _locked():
            me.unlink(missing_ok=True)
            if not any(users.iterdir()):
                _stop_dockerd()


@pytest.fixture(scope="session")
def test_image(dockerd: docker.DockerClient) -> str:
    """The notebook image built offline by scripts/build-test-image (cached by recipe)."""
    env = dict(os.environ, PYTHON=sys.executable)
    started = time.monotonic()
    proc = subprocess.run(
        [str(REPO / "scripts" / "build-test-image")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/build-test-image failed:\n{proc.stderr[-5000:]}")
    image = proc.stdout.strip().splitlines()[-1]
    sys.stderr.write(f"\n[test image {image} ready in {time.monotonic() - started:.1f} s]\n")
    dockerd.images.get(image)  # fails the test when the script lied
    return image


@pytest.fixture
def docker_stack(
    tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str, dockerd: docker.DockerClient
) -> Iterator[DockerStack]:
    """A running master with no agent yet; the test starts Docker agents on it."""
    s = DockerStack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url)
    s.start_master()
    try:
        yield s
    finally:
        s.stop()
        # Nothing may outlive the test: a container of these agents left now is a bug.
        # sparse: no inspect per container (another worker may be removing its own meanwhile)
        listed = dockerd.containers.list(all=True, sparse=True, filters={"label": LABEL_OWNER})
        for container in listed:
            owner = str((container.attrs.get("Labels") or {}).get(LABEL_OWNER, ""))
            if owner.startswith(s.root):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
