"""A master whose agents run executions in Docker, and the containers of one execution."""

from __future__ import annotations

import os

import docker
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
    return client.containers.list(all=True, filters={"label": f"{LABEL_EXECUTION}={execution_id}"})
