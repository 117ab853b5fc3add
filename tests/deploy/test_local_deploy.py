"""A notebook trains a model; deploying it builds an image, pushes it to a registry with auth,
runs it on the local Docker engine and answers predictions (acceptance 1, 2 and 4)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.deploy.conftest import PASSWORD, SAMPLES, USER, wait_version
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _deployment(stack: Stack, trained: dict, name: str) -> dict:
    body = {
        "project": trained["project"]["id"],
        "name": name,
        "target": "local",
        "registry": trained["registry"],
    }
    resp = stack.api("POST", "/api/v0/deployments/", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _version(stack: Stack, deployment: dict, commit: str, datum: str, **extra) -> dict:
    body = {
        "deployment": deployment["id"],
        "commit": commit,
        "endpoint_configurations": {"predict": {"files": {"model": datum}}},
        **extra,
    }
    resp = stack.api("POST", "/api/v0/deployment-versions/", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _build_log(stack: Stack, endpoint: dict) -> dict:
    return dict(
        stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint['id']}/build-log/").json()
    )


def _predict(url: str) -> list[int]:
    resp = requests.post(url, json={"data": SAMPLES}, timeout=30)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["predictions"])


def _registry_tags(registry: str, image: str) -> list[str]:
    repository = image.split("/", 1)[1].rsplit(":", 1)[0]
    resp = requests.get(
        f"http://{registry}/v2/{repository}/tags/list", auth=(USER, PASSWORD), timeout=10
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json()["tags"])


def test_a_notebook_model_becomes_an_endpoint(deploy_stack: Stack, trained: dict) -> None:
    stack = deploy_stack
    deployment = _deployment(stack, trained, "iris")
    created = _version(
        stack, deployment, trained["commit"]["identifier"], trained["datum"], alias="production"
    )
    assert created["status"] == "building"
    version = wait_version(stack, created["id"])
    endpoint = version["endpoints"][0]
    assert version["status"] == "running", f"{_build_log(stack, endpoint)}\n{stack.logs()}"
    # Pushed to the real registry, with the stored credentials.
    image = endpoint["image"]
    assert image.startswith(trained["registry"] + "/"), image
    assert version["name"] in _registry_tags(trained["registry"], image)
    # The endpoint answers the model's predictions, by version and by alias.
    expected = [int(p) for p in trained["model"].predict(SAMPLES)]
    assert _predict(endpoint["endpoint_url"]) == expected
    assert _predict(endpoint["alias_urls"]["production"]) == expected
    assert len(set(expected)) == 3  # the samples are one of each class
    # Health, logs and build log are shown.
    detail = stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint['id']}/").json()
    assert detail["health"]["state"] == "ready", detail
    logs = stack.api("GET", f"/api/v0/deployment-endpoints/{endpoint['id']}/logs/").json()
    assert any("serving predict:application" in line for line in logs["lines"]), logs
    build = _build_log(stack, endpoint)
    messages = [e["message"] for e in build["events"]]
    assert f"Pushed {image}" in messages, messages
    assert any(m.startswith("Endpoint ready on 127.0.0.1:") for m in messages), messages


def test_a_failed_build_keeps_the_previous_version(deploy_stack: Stack, trained: dict) -> None:
    stack = deploy_stack
    deployment = _deployment(stack, trained, "iris-failing")
    commit, datum = trained["commit"]["identifier"], trained["datum"]
    first = wait_version(stack, _version(stack, deployment, commit, datum, alias="prod")["id"])
    assert first["status"] == "running"
    alias_url = first["endpoints"][0]["alias_urls"]["prod"]
    expected = _predict(alias_url)

    # Bad requirements: the build fails with pip's own words; nothing new is deployed.
    bad_files = {**trained["files"], "requirements-deployment.txt": "no-such-package-vh==1.0\n"}
    bad_commit = stack.import_package(trained["project"]["id"], bad_files)["identifier"]
    bad = wait_version(stack, _version(stack, deployment, bad_commit, datum, alias="prod")["id"])
    assert bad["status"] == "failed"
    endpoint = bad["endpoints"][0]
    assert endpoint["failure"]["phase"] == "build"
    assert "no-such-package-vh" in endpoint["failure"]["reason"], "\n".join(
        e["message"] for e in _build_log(stack, endpoint)["events"]
    )
    log = _build_log(stack, endpoint)
    assert log["failure"] == endpoint["failure"]
    assert any("no-such-package-vh" in e["message"] for e in log["events"]), log
    assert endpoint["endpoint_url"] is None
    # The alias still names the first version, which still serves.
    aliases = stack.api("GET", f"/api/v0/deployments/{deployment['id']}/aliases/").json()
    assert [(a["name"], a["version"]["id"]) for a in aliases["results"]] == [("prod", first["id"])]
    assert _predict(alias_url) == expected
    assert stack.api("GET", f"/api/v0/deployment-versions/{first['id']}/").json()["status"] == (
        "running"
    )

    # A missing model file is refused before any build, with what to give.
    resp = stack.api(
        "POST",
        "/api/v0/deployment-versions/",
        json={"deployment": deployment["id"], "commit": commit, "endpoints": ["predict"]},
    )
    assert resp.status_code == 400, resp.text
    assert "file 'model'" in resp.json()["message"] and resp.json()["hint"]
    resp = stack.api(
        "POST",
        "/api/v0/deployment-versions/",
        json={
            "deployment": deployment["id"],
            "commit": commit,
            "endpoint_configurations": {"predict": {"files": {"model": "d-" + "0" * 32}}},
        },
    )
    assert resp.status_code == 404, resp.text
    assert _predict(alias_url) == expected


def test_an_alias_switch_loses_no_request(deploy_stack: Stack, trained: dict) -> None:
    stack = deploy_stack
    deployment = _deployment(stack, trained, "iris-switch")
    commit, datum = trained["commit"]["identifier"], trained["datum"]
    first = wait_version(
        stack,
        _version(
            stack,
            deployment,
            commit,
            datum,
            alias="live",
            environment_variables={"MODEL_TAG": "one"},
        )["id"],
    )
    assert first["status"] == "running"
    url = first["endpoints"][0]["alias_urls"]["live"]
    stop = threading.Event()
    results: list[tuple[int, str]] = []

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    resp = session.post(url, json={"data": SAMPLES}, timeout=30)
                    tag = resp.json().get("tag", "") if resp.status_code == 200 else resp.text
                    results.append((resp.status_code, tag))
                except requests.RequestException as exc:
                    results.append((0, str(exc)))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        second = wait_version(
            stack,
            _version(
                stack,
                deployment,
                commit,
                datum,
                alias="live",
                environment_variables={"MODEL_TAG": "two"},
            )["id"],
        )
        assert second["status"] == "running"
        # The old version is retired once the alias moved; keep sending until it is gone.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            old = stack.api("GET", f"/api/v0/deployment-versions/{first['id']}/").json()
            if old["status"] == "stopped" and results and results[-1][1] == "two":
                break
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    failures = [r for r in results if r[0] != 200]
    tags = [t for code, t in results if code == 200]
    print(f"\n[alias switch: {len(results)} requests, {len(failures)} failed]")
    assert failures == [], failures[:5]
    assert "one" in tags and "two" in tags
    assert tags[-1] == "two"
    old = stack.api("GET", f"/api/v0/deployment-versions/{first['id']}/").json()
    assert old["status"] == "stopped"
    assert all(e["status"] == "stopped" for e in old["endpoints"])
    # The new version's own URL works; the old version's URL no longer does.
    assert requests.post(second["endpoints"][0]["endpoint_url"], json={"data": SAMPLES}).ok
    gone = requests.post(
        first["endpoints"][0]["endpoint_url"] or url.replace("/live/", f"/{first['name']}/"),
        json={"data": SAMPLES},
        timeout=10,
    )
    assert gone.status_code == 404
