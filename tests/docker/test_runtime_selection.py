"""`jupyter valohai agent --runtime docker|auto|local`: Docker when an engine answers, local only
when configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import docker
import pytest

from jupyter_valohai.services import free_port

pytestmark = pytest.mark.slow

DEAD_ENGINE = "unix:///nonexistent/docker.sock"


def _agent(tmp_path, *args: str, docker_host: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, VH_AGENT_TOKEN="selection-token")
    env.pop("VH_AGENT_RUNTIME", None)
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "agent",
            "--master-url",
            f"http://127.0.0.1:{free_port()}",  # nothing listens: the agent just keeps trying
            "--work-dir",
            str(tmp_path / "w"),
            "--name",
            "sel",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _started_with(proc: subprocess.Popen) -> str:
    """The agent's start line; then it is stopped with SIGTERM."""
    seen = ""
    deadline = time.monotonic() + 30
    try:
        while "serving" not in seen:
            assert proc.poll() is None and time.monotonic() < deadline, seen + proc.stdout.read()
            seen += proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return seen + out


def test_docker_runtime_without_an_engine_is_refused(tmp_path) -> None:
    proc = _agent(tmp_path, "--runtime", "docker", docker_host=DEAD_ENGINE)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert "no Docker engine answers" in out
    assert "--runtime auto" in out  # the hint


def test_auto_falls_back_to_local_without_an_engine(tmp_path) -> None:
    out = _started_with(_agent(tmp_path, "--runtime", "auto", docker_host=DEAD_ENGINE))
    assert "No Docker engine answers; running executions locally" in out
    assert "(LocalRuntime runtime)" in out


def test_auto_takes_docker_when_an_engine_answers(tmp_path, dockerd: docker.DockerClient) -> None:
    out = _started_with(_agent(tmp_path, "--runtime", "auto"))
    assert "(DockerRuntime runtime)" in out


@pytest.mark.parametrize(
    ("value", "runtime"),
    [(None, "docker"), ("local", "local"), ("docker", "docker"), ("auto", "auto")],
)
def test_environment_variable_picks_the_runtime(value: str | None, runtime: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VH_AGENT_RUNTIME"}
    if value is not None:
        env["VH_AGENT_RUNTIME"] = value
    code = "from agent.app import AgentApp; a = AgentApp(); a.initialize([]); print(a.runtime)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == runtime, out.stderr
