"""The fault suite's world: a real master, agents and a Redis of its own, each killable.

Agents run in sessions of their own (SIGKILL to the whole group); the master restarts on the same
port; Redis restarts empty on the same port. MongoDB (the session's nx-27017) is never killed: it
is the source of truth the invariants are checked against.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from jupyter_valohai.services import ManagedProcess, free_port, start_redis
from tests.e2e.stack import Stack

#: Short leases and fast loops: a killed agent's execution is re-queued within ~2 s.
MASTER_ARGS = [
    "--MasterApp.lease_seconds=2",
    "--MasterApp.heartbeat_seconds=0.5",
    "--MasterApp.reaper_interval=0.3",
    "--MasterApp.reconcile_interval=1",
    "--MasterApp.max_attempts=8",
    "--MasterApp.max_claim_wait=2",
]


@dataclass
class Faults:
    """Counts of the faults injected and a handle on every process."""

    stack: Stack
    redis_dir: str
    redis: ManagedProcess
    redis_port: int
    agents: dict[str, subprocess.Popen] = field(default_factory=dict)
    agent_logs: dict[str, str] = field(default_factory=dict)
    kills: list[str] = field(default_factory=list)  # the phase each killed agent was in
    master_restarts: int = 0
    redis_restarts: int = 0
    started: int = 0

    def start_agent(self) -> str:
        name = f"agent-{self.started}"
        self.started += 1
        root = self.stack.root
        log = os.path.join(root, "logs", f"{name}.log")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "agent",
            "--master-url",
            self.stack.url,
            "--name",
            name,
            "--work-dir",
            os.path.join(root, name),
            "--AgentApp.claim_wait=2",
        ]
        env = {**os.environ, "VH_AGENT_TOKEN": self.stack.agent_token, "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as fp:
            proc = subprocess.Popen(
                argv, env=env, stdout=fp, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.agents[name] = proc
        self.agent_logs[name] = log
        return name

    def kill_agent(self, name: str, phase: str) -> None:
        proc = self.agents.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            self.kills.append(phase)

    def restart_master(self, down: float = 0.3) -> None:
        import time

        assert self.stack.master is not None
        self.stack.master.kill()
        self.stack.master.wait(10)
        time.sleep(down)
        self.stack.start_master()
        self.master_restarts += 1

    def restart_redis(self, down: float = 0.3) -> None:
        import time

        self.redis.kill()
        time.sleep(down)
        self.redis = start_redis(self.redis_dir, self.redis_port)  # empty: no persistence
        self.redis_restarts += 1

    def stop(self) -> None:
        for name in list(self.agents):
            proc = self.agents.pop(name)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.stack.stop()
        self.redis.stop()


@pytest.fixture
def faults(tmp_path: Any, mongo_url: str, mongo_db_name: str) -> Iterator[Faults]:
    port = free_port()
    redis_dir = str(tmp_path / "redis")
    redis = start_redis(redis_dir, port)
    stack = Stack(
        str(tmp_path / "stack"),
        mongo_url,
        mongo_db_name,
        redis.url,
        master_args=list(MASTER_ARGS),
    )
    world = Faults(stack, redis_dir, redis, port)
    try:
        stack.start_master()
        yield world
    finally:
        world.stop()
