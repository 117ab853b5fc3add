"""Deploying an output through the extension's routes, on a real master: the endpoints of the
run's code, a version built by the master's builder and started by the ``local`` target, its
build log relayed, and a JSON payload tried on the running endpoint.

No Docker engine here (``DOCKER_HOST`` points nowhere, for the master too): the builder says so
and the ``local`` target runs the endpoint as a process. The Docker build, push and container
path is tests/deploy's and tests/browser/test_deploy.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_handlers import sse_events

TRAIN = """\
import json, os
with open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "model.json"), "w") as f:
    json.dump({"slope": 2, "intercept": 1}, f)
print("trained")
"""
PREDICT = """\
import json

with open("model.json") as f:
    MODEL = json.load(f)


def application(environ, start_response):
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(size) or b"{}")
    y = MODEL["slope"] * body["x"] + MODEL["intercept"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"y": y}).encode()]
"""
VALOHAI_YAML = """\
- endpoint:
    name: predict
    image: python:3.11
    wsgi: predict:application
    port: 8000
    files:
      - name: model
        path: model.json
"""


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Before the master starts: no Docker engine answers it (the process path, every time)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


async def run_to_end(api, jp_fetch, path: str) -> dict:
    status, execution = await api("POST", "executions", body={"path": path})
    assert status == 201, execution
    response = await jp_fetch(
        "valohai", "executions", execution["id"], "events", request_timeout=120
    )
    assert sse_events(response.body.decode())[-1] == ("end", {"status": "complete"})
    return execution


async def test_an_output_deployed_from_the_routes_answers(api, jp_fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "model").mkdir()
    (jp_root_dir / "model" / "train.py").write_text(TRAIN)
    (jp_root_dir / "model" / "predict.py").write_text(PREDICT)
    (jp_root_dir / "model" / "valohai.yaml").write_text(VALOHAI_YAML)
    execution = await run_to_end(api, jp_fetch, "model/train.py")
    ref = execution["id"]

    status, options = await api("GET", "executions", ref, "deploy-options")
    assert status == 200, options
    assert options["problem"] is None
    assert options["commit"] == execution["commit"]["identifier"]
    (endpoint,) = options["endpoints"]
    assert endpoint["name"] == "predict"
    assert endpoint["files"] == [{"name": "model", "path": "model.json"}]
    assert endpoint["wsgi"] == "predict:application"
    assert "local" in [t["name"] for t in options["targets"]]
    assert options["deployments"] == []

    _, outputs = await api("GET", "executions", ref, "outputs")
    model = next(d for d in outputs["results"] if d["name"] == "model.json")
    deploy = {
        "execution": ref,
        "endpoint": "predict",
        "files": {"model": model["id"]},
        "deployment": "lab",
        "alias": "staging",
    }

    # Bad input: a readable 4xx with a hint, nothing created.
    status, body = await api("POST", "deployments", body={**deploy, "nope": 1})
    assert status == 400 and "nope" in body["message"] and body["hint"], body
    status, body = await api("POST", "deployments", body={**deploy, "files": {"model": 3}})
    assert status == 400 and "'files'" in body["message"], body
    status, body = await api("POST", "deployments", body={**deploy, "files": {}})
    assert status == 400 and "file 'model'" in body["message"] and body["hint"], body
    status, body = await api("POST", "deployments", body={**deploy, "endpoint": "other"})
    assert status == 400 and "no endpoint 'other'" in body["message"], body
    status, body = await api("POST", "deployments", body={**deploy, "deployment": "Bad Name"})
    assert status == 400 and body["hint"], body

    status, version = await api("POST", "deployments", body=deploy)
    assert status == 201, version
    assert version["status"] == "building"
    assert version["deployment"]["name"] == "lab"
    (created,) = version["endpoints"]

    # The build log, relayed until the build is over.
    response = await jp_fetch(
        "valohai",
        "deployment-endpoints",
        created["id"],
        "build-log",
        "events",
        request_timeout=180,
    )
    events = sse_events(response.body.decode())
    assert events[-1] == ("end", {"status": "running"}), events
    messages = [data["message"] for kind, data in events if kind == "log"]
    assert any("No Docker engine answers" in m for m in messages), messages
    assert any(m.startswith("Endpoint ready on 127.0.0.1:") for m in messages), messages

    status, version = await api("GET", "deployment-versions", version["id"])
    assert status == 200 and version["status"] == "running", version
    running = version["endpoints"][0]
    assert running["endpoint_url"] and running["alias_urls"]["staging"]

    status, answer = await api(
        "POST", "deployment-endpoints", running["id"], "try", body={"payload": {"x": 3}}
    )
    assert status == 200, answer
    assert answer["status"] == 200 and answer["body"] == {"y": 7}, answer
    assert answer["url"] == running["endpoint_url"]
    status, answer = await api(
        "POST",
        "deployment-endpoints",
        running["id"],
        "try",
        body={"payload": {"x": 10}, "alias": "staging"},
    )
    assert (status, answer["body"]) == (200, {"y": 21}), answer
    # The endpoint's own error is shown as it answered.
    status, answer = await api(
        "POST", "deployment-endpoints", running["id"], "try", body={"payload": {}}
    )
    assert status == 200 and answer["status"] == 500, answer

    # The deployment is reused by name for the next version.
    status, options = await api("GET", "executions", ref, "deploy-options")
    assert [d["name"] for d in options["deployments"]] == ["lab"]
    status, again = await api("POST", "deployments", body={**deploy, "alias": None})
    assert status == 201 and again["deployment"]["id"] == version["deployment"]["id"], again


async def test_deploy_routes_refuse_clearly(api, jp_fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "train.py").write_text(TRAIN)
    execution = await run_to_end(api, jp_fetch, "train.py")
    status, options = await api("GET", "executions", execution["id"], "deploy-options")
    assert status == 200, options
    assert options["endpoints"] == []
    assert "defines no endpoint" in options["problem"]["message"]
    assert "valohai.yaml" in options["problem"]["hint"]

    status, body = await api("GET", "executions", "e-nope", "deploy-options")
    assert status == 404 and body["code"] == "not_found", body
    status, body = await api("GET", "deployment-versions", "depv-nope")
    assert status == 404, body
    status, body = await api("GET", "deployment-endpoints", "depe-nope", "build-log", "events")
    assert status == 404 and body["message"], body
    status, body = await api("POST", "deployment-endpoints", "depe-nope", "try", body={})
    assert status == 400 and "payload" in body["hint"], body
    status, body = await api(
        "POST", "deployment-endpoints", "depe-nope", "try", body={"payload": 1}
    )
    assert status == 404, body
    status, body = await api("POST", "deployments", body={"endpoint": "predict"})
    assert status == 400 and "'execution'" in body["message"], body
    status, body = await api("POST", "deployments", body=json.dumps([1]))
    assert status == 400, body


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "executions/e-1/deploy-options"),
        ("POST", "deployments"),
        ("GET", "deployment-versions/depv-1"),
        ("GET", "deployment-endpoints/depe-1/build-log/events"),
        ("POST", "deployment-endpoints/depe-1/try"),
    ],
)
async def test_deploy_routes_need_jupyters_login(
    method: str, route: str, jp_fetch, jp_http_port: int, jp_base_url: str
) -> None:
    import httpx

    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}valohai/{route}"
    async with httpx.AsyncClient() as http:
        response = await http.request(method, url, content=b"{}" if method == "POST" else None)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
