"""With no Docker engine answering, the local target runs the endpoint as a process from the built
context: a master whose DOCKER_HOST leads nowhere deploys a notebook's model and answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.deploy.conftest import PREDICT_PY, SAMPLES, TRAIN_YAML, train_notebook, wait_version
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def engineless(
    tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    stack = Stack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url)
    stack.start_master()
    stack.start_agent()
    try:
        yield stack
    finally:
        stack.stop()


def test_no_engine_runs_the_endpoint_as_a_process(engineless: Stack) -> None:
    stack = engineless
    project = stack.create_project("iris-process")
    files = {
        "valohai.yaml": TRAIN_YAML.format(image="python:3.11"),
        "train.ipynb": train_notebook(),
        "predict.py": PREDICT_PY,
    }
    commit = stack.import_package(project["id"], files)["identifier"]
    execution = stack.submit(project["id"], commit, "train")
    assert stack.wait_status(execution["id"], timeout=240)["status"] == "complete"
    data = stack.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]})
    datum = next(d["id"] for d in data.json()["results"] if d["name"] == "model.pkl")
    deployment = stack.api(
        "POST",
        "/api/v0/deployments/",
        json={"project": project["id"], "name": "proc", "target": "local"},
    ).json()
    created = stack.api(
        "POST",
        "/api/v0/deployment-versions/",
        json={
            "deployment": deployment["id"],
            "commit": commit,
            "endpoint_configurations": {"predict": {"files": {"model": datum}}},
            "environment_variables": {"MODEL_TAG": "process"},
        },
    ).json()
    version = wait_version(stack, created["id"], timeout=120)
    endpoint = version["endpoints"][0]
    log = stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint['id']}/build-log/").json()
    messages = [e["message"] for e in log["events"]]
    try:
        assert version["status"] == "running", (version, messages, stack.logs())
        assert endpoint["image"] is None
        assert any("No Docker engine answers" in m for m in messages), messages
        answer = requests.post(endpoint["endpoint_url"], json={"data": SAMPLES}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["tag"] == "process"
        assert len(answer.json()["predictions"]) == len(SAMPLES)
        detail = stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint['id']}/").json()
        assert detail["health"]["state"] == "ready", detail
        # the master's secrets are not in the endpoint's environment
        info = requests.get(endpoint["endpoint_url"], timeout=30).json()
        assert info == {"ok": True, "tag": "process", "secrets": []}, info
    finally:
        stopped = stack.api("POST", f"/api/v0/deployment-versions/{version['id']}/stop/").json()
    assert stopped["status"] == "stopped"
    gone = stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint['id']}/").json()
    assert gone["status"] == "stopped"
    assert requests.post(endpoint["endpoint_url"], json={"data": SAMPLES}).status_code == 404

    # Endpoint processes have no supervisor: they end with the master that ran them, even when
    # it is SIGKILLed (nothing of the master runs then: the kernel's parent-death signal does it).
    again = stack.api(
        "POST",
        "/api/v0/deployment-versions/",
        json={
            "deployment": deployment["id"],
            "commit": commit,
            "endpoint_configurations": {"predict": {"files": {"model": datum}}},
        },
    ).json()
    running = wait_version(stack, again["id"], timeout=120)
    assert running["status"] == "running", running
    endpoint_id = running["endpoints"][0]["id"]
    health = stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint_id}/").json()["health"]
    port = int(health["detail"].rsplit(":", 1)[1].rstrip("."))
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).ok
    assert stack.master is not None
    stack.master.kill()
    stack.master.wait(10)
    for _ in range(100):  # SIGKILL was sent when the master died; wait for the exit
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        except requests.ConnectionError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the endpoint process on port {port} outlived its master")
