"""valohai-cli 0.37 against a real master and agent: `vh alias list`, and a `datum://<alias>`
input passed on `vh exec run`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack

from .test_e2e import FILES, output_of

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Stack]:
    s = Stack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url)
    try:
        s.start_master()
        s.start_agent()
        yield s
    finally:
        s.stop()


def test_vh_lists_aliases_and_runs_with_an_alias_input(tmp_path, stack: Stack) -> None:
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    for name, text in FILES.items():
        (project_dir / name).write_text(text)
    env = dict(os.environ)
    (tmp_path / "vh-config").mkdir()
    env["VALOHAI_CONFIG_DIR"] = str(tmp_path / "vh-config")
    env["VALOHAI_PROJECT_DIR"] = str(project_dir)
    exe = os.path.join(os.path.dirname(sys.executable), "vh")

    def vh(*args: str) -> str:
        proc = subprocess.run(
            [exe, *args],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, f"vh {args[0]}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    vh("login", "--host", stack.url, "--token", stack.admin_token, "--yes")
    vh("project", "create", "--name", "demo", "--owner", "admin", "--yes")
    (project,) = stack.api("GET", "/api/v0/projects/").json()["results"]
    assert "No data aliases" in vh("alias", "list")

    vh("exec", "run", "--adhoc", "produce")
    (producer,) = stack.api("GET", "/api/v0/executions/").json()["results"]
    assert stack.wait_status(producer["id"], timeout=90)["status"] == "complete"
    datums = stack.api("GET", "/api/v0/data/", params={"output_execution": producer["id"]})
    (model,) = [d for d in datums.json()["results"] if d["name"] == "model.bin"]
    resp = stack.api(
        "POST",
        "/api/v0/datum-aliases/",
        json={"project": project["id"], "name": "best-model", "datum": model["id"]},
    )
    assert resp.status_code == 201, resp.text

    listed = vh("alias", "list")
    assert "best-model" in listed and "model.bin" in listed and "datum://best-model" in listed

    vh("exec", "run", "--adhoc", "read", "--data=datum://best-model")
    executions = stack.api("GET", "/api/v0/executions/").json()["results"]
    (reader,) = [e for e in executions if e["step"] == "read"]
    assert stack.wait_status(reader["id"], timeout=90)["status"] == "complete"
    assert f"got data/model.bin {model['sha256']}" in output_of(stack, reader["id"])
