"""A real IPython kernel (jupyter_client) talking to a real master and agent.

The kernel runs the venv's Python in a working folder of its own, with its own IPython and Jupyter
dirs (so no user profile or login file leaks in), and finds the master through ``VH_MASTER_URL``
and ``VH_TOKEN``, as the brief's connection contract says.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from tests.e2e.stack import Stack

#: Generous bounds for one cell; tests never assert on time, these only keep a hang from blocking.
CELL_TIMEOUT = 150


@dataclass
class Output:
    """What one executed cell sent: stdout, stderr, displays and its reply status."""

    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""
    error: str = ""

    def json(self) -> Any:
        """The last stdout line, parsed (tests print their findings as JSON)."""
        return json.loads(self.stdout.strip().splitlines()[-1])


class Kernel:
    """One running kernel and a blocking client; ``run(code)`` executes a cell."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=env)
        argv = self.km.format_kernel_cmd()
        assert argv[0] == sys.executable, argv  # the venv's Python, with this checkout
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = CELL_TIMEOUT) -> Output:
        out = Output()

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    out.stdout += content["text"]
                else:
                    out.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                out.displays.append(content["data"])
            elif kind == "error":
                out.error = "\n".join(content["traceback"])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        out.status = reply["content"]["status"]
        return out

    def ok(self, code: str, timeout: float = CELL_TIMEOUT) -> Output:
        """Run a cell that must succeed without anything on stderr."""
        out = self.run(code, timeout)
        assert out.status == "ok" and not out.error, out
        assert not out.stderr, out
        return out

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def kernel_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VH_", "JPY_", "JUPYTER_"))}
    env["VH_AGENT_RUNTIME"] = "local"  # the tests' agents never pull images (no registry)
    env.update(
        IPYTHONDIR=str(tmp_path / "ipython"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        VH_DATA_DIR=str(tmp_path / "no-embedded-master"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def stack(master: Stack) -> Stack:
    """A running master with one agent, on the session's real nx-27017 and Redis."""
    return master


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def kernel(stack: Stack, workdir: Path, tmp_path: Path) -> Iterator[Kernel]:
    """A kernel in ``workdir`` that knows the master, with ``%load_ext jupyter_valohai`` done."""
    env = kernel_env(tmp_path, VH_MASTER_URL=stack.url, VH_TOKEN=stack.admin_token)
    k = Kernel(workdir, env)
    try:
        k.ok("%load_ext jupyter_valohai")
        yield k
    finally:
        k.stop()
