"""Helpers of the Docker tests: a master with Docker agents, a job without one, containers."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import docker

from agent.runtimes.base import Job
from agent.runtimes.docker import LABEL_EXECUTION
from tests.e2e.stack import Stack


class DockerStack(Stack):
    """A master whose agents run executions in Docker."""

    def start_docker_agent(self, name: str = "docker-agent", *extra: str) -> None:
        self.start_agent(name, "--runtime", "docker", "--AgentApp.stop_grace_seconds=2", *extra)

    def agent_dir(self, name: str = "docker-agent") -> str:
        return os.path.join(self.root, name)


def containers_of(client: docker.DockerClient, execution_id: str) -> list:
    """Every container (running or not) of one execution."""
    # sparse, then inspected one by one: a container removed in between (by its agent, or by
    # another test worker) is skipped instead of failing the whole listing with a 404
    listed = client.containers.list(
        all=True, sparse=True, filters={"label": f"{LABEL_EXECUTION}={execution_id}"}
    )
    found = []
    for container in listed:
        with contextlib.suppress(docker.errors.NotFound):
            found.append(client.containers.get(container.id))
    return found


class Lines:
    """What a runtime emitted, by stream (thread-safe enough for appends)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, stream: str, message: str) -> None:
        self.events.append((stream, message))

    def of(self, stream: str) -> list[str]:
        return [m for s, m in self.events if s == stream]


def make_job(tmp_path: Path, spec: dict, lines: Lines) -> Job:
    root = tmp_path / "execution"
    for name in ("repository", "inputs", "outputs", "config"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "config" / "parameters.json").write_text(json.dumps(spec.get("parameters", {})))
    return Job(
        spec={"id": f"e-direct-{time.monotonic_ns()}", "attempt": 1, **spec},
        repository=str(root / "repository"),
        inputs=str(root / "inputs"),
        outputs=str(root / "outputs"),
        config=str(root / "config"),
        env={},
        emit=lines,
    )
