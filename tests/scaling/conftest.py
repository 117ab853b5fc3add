"""A real master (subprocess) whose scaler runs every fraction of a second, and helpers to make
worker groups and executions on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.stack import Stack

SCALER_INTERVAL = "0.3"

VALOHAI_YAML = """\
- step:
    name: quick
    image: python:3.11
    command:
      - python -c "import time; time.sleep(0.5); print('quick done')"
- step:
    name: slow
    image: python:3.11
    command:
      - python -c "import time; time.sleep(4); print('slow done')"
- step:
    name: train
    image: python:3.11
    command:
      - python -c "print('trained')"
"""


@pytest.fixture(scope="session")
def agent_wheel(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory holding this package's wheel (built once per source state, cached)."""
    from .wheel import agent_wheel_dir

    return str(agent_wheel_dir(tmp_path_factory.mktemp("agent-wheel")))


@pytest.fixture
def stack(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Stack]:
    s = Stack(
        root=str(tmp_path / "stack"),
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        master_args=[f"--scaler-interval={SCALER_INTERVAL}"],
    )
    s.start_master()
    try:
        yield s
    finally:
        s.stop()


def create_group(stack: Stack, **body: Any) -> dict[str, Any]:
    resp = stack.api("POST", "/api/v0/environments/", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def environment(stack: Stack, ref: str) -> dict[str, Any]:
    resp = stack.api("GET", f"/api/v0/environments/{ref}/")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def commit(stack: Stack, project_name: str = "demo", yaml: str = VALOHAI_YAML) -> tuple[str, str]:
    project = stack.create_project(project_name)
    identifier = stack.import_package(project["id"], {"valohai.yaml": yaml})["identifier"]
    return project["id"], identifier


def wait_for(what: str, check: Callable[[], Any], stack: Stack, timeout: float = 120) -> Any:
    """Poll ``check`` until it returns something true; fail with the processes' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    groups = stack.api("GET", "/api/v0/environments/").json().get("results", [])
    scaling = json.dumps([{g.get("slug"): g.get("scaling")} for g in groups], indent=1)
    raise AssertionError(f"timed out waiting for {what}\n{scaling}\n{stack.logs()}")


def start_group_agent(stack: Stack, token: str, name: str) -> subprocess.Popen:
    """A real agent started by hand with a group's token (as on an on-premises machine)."""
    default, stack.agent_token = stack.agent_token, token
    try:
        return stack.start_agent(name)
    finally:
        stack.agent_token = default


@pytest.fixture
def vh(tmp_path, stack: Stack) -> Callable[..., subprocess.CompletedProcess]:
    """valohai-cli 0.37, logged in to ``stack``, in a project directory linked to 'demo'."""
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "valohai.yaml").write_text(VALOHAI_YAML)
    (tmp_path / "vh-config").mkdir()
    env = dict(os.environ)
    env["VALOHAI_CONFIG_DIR"] = str(tmp_path / "vh-config")
    env["VALOHAI_PROJECT_DIR"] = str(project_dir)
    exe = os.path.join(os.path.dirname(sys.executable), "vh")

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [exe, *args],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        shown = " ".join("<token>" if a == stack.admin_token else a for a in args)
        assert proc.returncode == 0, f"vh {shown}: {proc.stdout}\n{proc.stderr}\n{stack.logs()}"
        return proc

    run("login", "--host", stack.url, "--token", stack.admin_token, "--yes")
    run("project", "create", "--name", "demo", "--owner", "admin", "--yes")
    return run
