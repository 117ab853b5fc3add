"""Valohai's own client, `valohai-cli` 0.37 from PyPI, driven against a real master and agent."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from .stack import Stack

pytestmark = pytest.mark.slow

VALOHAI_YAML = """\
- step:
    name: train
    image: python:3.11
    command:
      - python train.py {parameters}
    parameters:
      - name: epochs
        type: integer
        default: 2
      - name: message
        type: string
        default: hello
- step:
    name: sleepy
    image: python:3.11
    command:
      - python -c "import time; [print('tick', i, flush=1) or time.sleep(0.5) for i in range(600)]"
"""

TRAIN_PY = """\
import argparse, hashlib, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--message")
args = parser.parse_args()
for epoch in range(args.epochs):
    print(f"epoch {epoch} says {args.message}")
    print(json.dumps({"epoch": epoch, "loss": 1.0 / (epoch + 1)}))
blob = b"".join(
    hashlib.sha256(f"{args.message}-{i}".encode()).digest() for i in range(args.epochs * 4096)
)
with open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "model.bin"), "wb") as f:
    f.write(blob)
"""


def expected_model(message: str, epochs: int) -> bytes:
    return b"".join(
        hashlib.sha256(f"{message}-{i}".encode()).digest() for i in range(epochs * 4096)
    )


@pytest.fixture
def vh(tmp_path, stack: Stack):
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "valohai.yaml").write_text(VALOHAI_YAML)
    (project_dir / "train.py").write_text(TRAIN_PY)
    env = dict(os.environ)
    (tmp_path / "vh-config").mkdir()
    env["VALOHAI_CONFIG_DIR"] = str(tmp_path / "vh-config")
    env["VALOHAI_PROJECT_DIR"] = str(project_dir)
    exe = os.path.join(os.path.dirname(sys.executable), "vh")

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [exe, *args],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            shown = " ".join("<token>" if a == stack.admin_token else a for a in args)
            raise AssertionError(
                f"vh {shown} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                f"stderr:\n{proc.stderr}\n{stack.logs()}"
            )
        return proc

    run("login", "--host", stack.url, "--token", stack.admin_token, "--yes")
    run("project", "create", "--name", "demo", "--owner", "admin", "--yes")
    run.project_dir = project_dir  # type: ignore[attr-defined]
    return run


def test_adhoc_run_logs_outputs(vh, stack: Stack, tmp_path) -> None:
    stack.start_agent()
    out = vh("exec", "run", "--adhoc", "train", "--epochs=3", "--message=bonjour")
    assert "Execution #1 created" in out.stdout + out.stderr, out.stdout + out.stderr

    logs = vh("exec", "logs", "--stream", "1", timeout=180)
    assert "epoch 2 says bonjour" in logs.stdout, logs.stdout + logs.stderr
    assert "has finished (status" in logs.stderr

    info = vh("--output-format", "json", "exec", "info", "1")
    execution = json.loads(info.stdout)
    assert execution["status"] == "complete", execution
    assert execution["parameters"] == {"epochs": 3, "message": "bonjour"}

    listing = vh("exec", "list")
    assert "complete" in listing.stdout and "train" in listing.stdout

    download = tmp_path / "downloaded"
    outputs = vh("exec", "outputs", "1", "--download", str(download))
    assert "model.bin" in outputs.stdout
    assert (download / "model.bin").read_bytes() == expected_model("bonjour", 3)

    envs = vh("environments")
    assert "local" in envs.stdout


def test_adhoc_same_code_is_uploaded_once(vh, stack: Stack) -> None:
    vh("exec", "run", "--adhoc", "train")
    second = vh("exec", "run", "--adhoc", "train", "--epochs=1")
    assert "already uploaded" in second.stdout + second.stderr, second.stderr
    listing = stack.api("GET", "/api/v0/executions/", params={"limit": 10}).json()
    assert listing["count"] == 2
    commits = {e["commit"]["identifier"] for e in listing["results"]}
    assert len(commits) == 1 and next(iter(commits)).startswith("~")


def test_bad_parameter_type_is_refused_by_the_master(vh, stack: Stack) -> None:
    vh("exec", "run", "--adhoc", "train")
    project_id = stack.api("GET", "/api/v0/projects/").json()["results"][0]["id"]
    commit = stack.api("GET", "/api/v0/executions/").json()["results"][0]["commit"]["identifier"]
    resp = stack.api(
        "POST",
        "/api/v0/executions/",
        json={
            "project": project_id,
            "commit": commit,
            "step": "train",
            "parameters": {"epochs": "many"},
        },
    )
    assert resp.status_code == 400, resp.text
    assert "epochs" in resp.json()["message"]
    assert stack.api("GET", "/api/v0/executions/").json()["count"] == 1


def test_stop_a_running_execution(vh, stack: Stack) -> None:
    stack.start_agent()
    vh("exec", "run", "--adhoc", "sleepy")
    execution = stack.api("GET", "/api/v0/executions/").json()["results"][0]
    stack.wait_status(execution["id"], {"started"})
    stopped = vh("exec", "stop", "1")
    assert "Done" in stopped.stdout + stopped.stderr
    final = stack.wait_status(execution["id"], timeout=30)
    assert final["status"] == "stopped", final
