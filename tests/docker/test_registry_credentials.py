"""Docker registry credentials stored on the master (encrypted, never answered) and handed to the
Docker agent for the pull: a real master, agent, engine and `docker-registry` with htpasswd."""

from __future__ import annotations

import os
import stat

import docker
import pymongo
import pytest

from master.services.registries import registry_of
from tests.docker.dockerstack import DockerStack
from tests.docker.test_registry_pull import PASSWORD, USER, _forget, pushed, registry
from tests.e2e.stack import Stack

__all__ = ["pushed", "registry"]  # the fixtures of the registry tests, shared

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WRONG = "wrong-secret-4711"
YAML = """\
- step:
    name: pull
    image: {image}
    command:
      - echo pulled and ran
"""


def _store(stack: Stack, registry: str, username: str, password: str) -> dict:
    body = {"registry": registry, "username": username, "password": password}
    resp = stack.api("POST", "/api/v0/registry-credentials/", json=body)
    assert resp.status_code == 201, resp.text
    assert password not in resp.text
    return resp.json()


def _run(stack: DockerStack, image: str) -> tuple[str, dict]:
    project = stack.create_project()
    commit = stack.import_package(project["id"], {"valohai.yaml": YAML.format(image=image)})
    eid = stack.submit(project["id"], commit["identifier"], "pull")["id"]
    return eid, stack.wait_status(eid, timeout=180)


def _answers(stack: Stack, eid: str) -> str:
    """Everything the API and the processes said about the execution and the credentials."""
    parts = [
        stack.api("GET", f"/api/v0/executions/{eid}/").text,
        stack.api("GET", f"/api/v0/executions/{eid}/events/", params={"limit": 0}).text,
        stack.api("GET", "/api/v0/registry-credentials/").text,
    ]
    for name in os.listdir(os.path.join(stack.root, "logs")):
        with open(os.path.join(stack.root, "logs", name), errors="replace") as f:
            parts.append(f.read())
    return "\n".join(parts)


def test_registry_of_follows_docker_reference_parsing() -> None:
    assert registry_of("127.0.0.1:5000/vh/tiny:1") == "127.0.0.1:5000"
    assert registry_of("registry.example.com/team/img") == "registry.example.com"
    assert registry_of("localhost/img") == "localhost"
    assert registry_of("Quay.IO/org/img@sha256:abc") == "quay.io"
    assert registry_of("python:3.11") is None
    assert registry_of("library/python") is None
    assert registry_of("") is None


def test_pull_with_the_stored_credentials(
    docker_stack: DockerStack,
    dockerd: docker.DockerClient,
    registry: str,
    pushed: str,
    mongo_url: str,
    mongo_db_name: str,
) -> None:
    stack = docker_stack
    _forget(dockerd, pushed)
    stored = _store(stack, registry, USER, PASSWORD)
    assert stored["registry"] == registry and stored["has_password"] is True
    # Encrypted at rest: the document holds no password, the key file is the master's alone.
    with pymongo.MongoClient(mongo_url) as client:
        doc = client[mongo_db_name]["registry_credentials"].find_one({"_id": stored["id"]})
    assert doc is not None and PASSWORD not in str(doc)
    keys = [
        os.path.join(d, "registry.key")
        for d, _, files in os.walk(stack.root)
        if "registry.key" in files
    ]
    assert len(keys) == 1, "no registry.key under the master's data dir"
    key = keys[0]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600

    stack.start_docker_agent()
    eid, final = _run(stack, pushed)
    assert final["status"] == "complete", stack.explain(eid)
    messages = [(e["stream"], e["message"]) for e in stack.events(eid)]
    assert ("stdout", "pulled and ran\n") in messages, messages
    assert ("status", f"Pulling image {pushed}") in messages, messages
    assert PASSWORD not in _answers(stack, eid)
    _forget(dockerd, pushed)


def test_wrong_stored_credentials_are_a_clear_error(
    docker_stack: DockerStack, dockerd: docker.DockerClient, registry: str, pushed: str
) -> None:
    stack = docker_stack
    _forget(dockerd, pushed)
    _store(stack, registry, USER, WRONG)
    stack.start_docker_agent()
    eid, final = _run(stack, pushed)
    assert final["status"] == "error", stack.explain(eid)
    status = [e["message"] for e in stack.events(eid) if e["stream"] == "status"]
    failure = [m for m in status if m.startswith("Could not pull Docker image")]
    assert failure and registry in failure[-1], status
    assert "credentials" in stack.explain(eid)  # the hint
    assert not any("pulled and ran" in e["message"] for e in stack.events(eid))
    assert WRONG not in _answers(stack, eid)


def test_api_never_answers_the_password(master: Stack) -> None:
    stored = _store(master, "registry.example.com:5000", "robot", "s3cret-api-pass")
    assert set(stored) == {"id", "registry", "username", "has_password", "ctime", "mtime"}
    assert (stored["registry"], stored["username"], stored["has_password"]) == (
        "registry.example.com:5000",
        "robot",
        True,
    )
    # Storing again for the same registry replaces it (same id), still without the password.
    again = _store(master, "Registry.Example.com:5000", "robot2", "other-pass")
    assert again["id"] == stored["id"] and again["username"] == "robot2"

    listing = master.api("GET", "/api/v0/registry-credentials/")
    assert listing.status_code == 200
    assert "s3cret-api-pass" not in listing.text and "other-pass" not in listing.text
    mine = [r for r in listing.json()["results"] if r["id"] == stored["id"]]
    assert mine == [again]

    gone = master.api("DELETE", f"/api/v0/registry-credentials/{stored['id']}/")
    assert gone.status_code == 204
    listing = master.api("GET", "/api/v0/registry-credentials/").json()
    assert stored["id"] not in [r["id"] for r in listing["results"]]
    missing = master.api("DELETE", f"/api/v0/registry-credentials/{stored['id']}/")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"username": "u", "password": "p"},
        {"registry": "r.example.com", "password": "p"},
        {"registry": "r.example.com", "username": "u"},
        {"registry": "r.example.com", "username": "u", "password": ""},
        {"registry": "https://r.example.com/v2", "username": "u", "password": "p"},
        {"registry": ["r.example.com"], "username": "u", "password": "p"},
    ],
    ids=["no-registry", "no-username", "no-password", "empty-password", "url", "list"],
)
def test_bad_bodies_are_refused_with_a_hint(master: Stack, body: dict) -> None:
    resp = master.api("POST", "/api/v0/registry-credentials/", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json().get("hint"), resp.text


def test_credentials_need_a_user(master: Stack) -> None:
    resp = master.api("GET", "/api/v0/registry-credentials/", token="not-a-token")
    assert resp.status_code == 401
