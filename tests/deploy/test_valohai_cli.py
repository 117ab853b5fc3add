"""valohai-cli 0.37's `vh deployment create-version` against the master (acceptance 5): the
calls it makes (deployments, suggest_version_name, commits ?include=config, deployment-versions)
and the datum reference it insists on (``datum://<uuid>``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from master.deploy.models import datum_uuid
from tests.deploy.conftest import SAMPLES, wait_version
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _vh(stack: Stack, tmp_path: Path, project_dir: Path):
    env = dict(os.environ)
    (tmp_path / "vh-config").mkdir(exist_ok=True)
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
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, f"vh {args[0]}: {proc.stdout}\n{proc.stderr}\n{stack.logs()}"
        return proc

    return run


def test_vh_deployment_create_version(deploy_stack: Stack, trained: dict, tmp_path: Path) -> None:
    stack = deploy_stack
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    for name, content in trained["files"].items():
        (project_dir / name).write_text(content)
    vh = _vh(stack, tmp_path, project_dir)
    vh("login", "--host", stack.url, "--token", stack.admin_token, "--yes")
    vh("project", "link", trained["project"]["id"], "--yes")
    body = {"project": trained["project"]["id"], "name": "cli", "target": "local"}
    deployment = stack.api("POST", "/api/v0/deployments/", json=body)
    assert deployment.status_code == 201, deployment.text

    out = vh(
        "deployment",
        "create-version",
        "--adhoc",
        "--deployment",
        "cli",
        "--endpoints",
        "predict",
        "--predict-model",
        f"datum://{datum_uuid(trained['datum'])}",
    )
    said = out.stdout + out.stderr
    assert "Using automatically generated name" in said, said
    assert "Deployment version" in said and "created" in said, said

    versions = stack.api(
        "GET", "/api/v0/deployment-versions/", params={"deployment": deployment.json()["id"]}
    ).json()["results"]
    assert len(versions) == 1
    version = wait_version(stack, versions[0]["id"])
    assert version["status"] == "running", version
    endpoint = version["endpoints"][0]
    assert endpoint["files"] == {"model": trained["datum"]}
    answer = requests.post(endpoint["endpoint_url"], json={"data": SAMPLES}, timeout=30)
    assert answer.json()["predictions"] == [int(p) for p in trained["model"].predict(SAMPLES)]
