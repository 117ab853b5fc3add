"""Worker groups through the API: admins create and change them, bad input is refused with a
hint and changes nothing, workers are listed with their state and can be drained."""

from __future__ import annotations

import pymongo
import pytest

from jupyter_valohai.models import hash_token, new_token
from tests.e2e.stack import Stack

from .conftest import commit, create_group, environment, start_group_agent, wait_for


def user_token(stack: Stack, username: str = "someone") -> str:
    """A token of a user who is not an administrator."""
    token = new_token()
    with pymongo.MongoClient(stack.mongo_url) as client:
        db = client[stack.mongo_db]
        db.users.insert_one({"_id": f"u-{username}", "username": username, "is_admin": False})
        db.tokens.insert_one({"hash": hash_token(token), "user": f"u-{username}"})
    return token


def test_create_describe_and_change_a_group(stack: Stack) -> None:
    created = create_group(
        stack,
        slug="gpu-pool",
        name="GPU pool",
        provider="static",
        gpus=2,
        max_size=3,
        settings={"rack": "b12", "ipmi_password": "hunter2"},
    )
    assert created["token"] and created["slug"] == "gpu-pool"
    assert created["settings"] == {"rack": "b12", "ipmi_password": "<hidden>"}
    described = environment(stack, "gpu-pool")
    assert "token" not in described and "token_sealed" not in described
    assert "hunter2" not in str(described)
    assert described["gpu_spec"] == "2 GPU" and described["provider"] == "static"
    listed = stack.api("GET", "/api/v0/environments/").json()["results"]
    assert {e["slug"] for e in listed} == {"local", "gpu-pool"}
    assert "hunter2" not in str(listed)

    resp = stack.api("PATCH", "/api/v0/environments/gpu-pool/", json={"max_size": 5})
    assert resp.status_code == 200, resp.text
    assert environment(stack, "gpu-pool")["max_size"] == 5


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"slug": "a", "min_size": 3, "max_size": 1}, 400, "min_size"),
        ({"slug": "a", "provider": "nimbus"}, 400, "Unknown worker-group provider"),
        ({"slug": "a", "max_size": -1}, 400, "negative"),
        ({"slug": "a", "max_size": "4"}, 400, "max_size"),
        ({"slug": "a", "colour": "red"}, 400, "Unknown fields"),
        ({"slug": "Not A Slug"}, 400, "slug"),
        ({"slug": "a", "allowed_projects": [1]}, 400, "allowed_projects"),
        ({"slug": "local"}, 409, "exists"),
    ],
)
def test_bad_groups_are_refused(stack: Stack, body: dict, status: int, words: str) -> None:
    before = stack.api("GET", "/api/v0/environments/").json()
    resp = stack.api("POST", "/api/v0/environments/", json=body)
    assert resp.status_code == status, resp.text
    answer = resp.json()
    assert words in answer["message"], answer
    assert answer.get("hint"), answer
    assert stack.api("GET", "/api/v0/environments/").json() == before


def test_bad_changes_are_refused_and_change_nothing(stack: Stack) -> None:
    create_group(stack, slug="pool", provider="static", min_size=1, max_size=2)
    before = environment(stack, "pool")
    for body in ({"max_size": 0}, {"provider": "nimbus"}, {"slug": "other"}, {"gpus": True}):
        resp = stack.api("PATCH", "/api/v0/environments/pool/", json=body)
        assert resp.status_code == 400, (body, resp.text)
    resp = stack.api("PATCH", "/api/v0/environments/pool/", data=b"{not json")
    assert resp.status_code == 400, resp.text
    assert stack.api("PATCH", "/api/v0/environments/nope/", json={}).status_code == 404
    after = environment(stack, "pool")
    assert {k: v for k, v in after.items() if k != "scaling"} == {
        k: v for k, v in before.items() if k != "scaling"
    }


def test_only_admins_change_groups_or_drain(stack: Stack) -> None:
    create_group(stack, slug="pool", provider="static")
    token = user_token(stack)
    assert stack.api("GET", "/api/v0/environments/", token=token).status_code == 200
    resp = stack.api("POST", "/api/v0/environments/", token=token, json={"slug": "mine"})
    assert resp.status_code == 403, resp.text
    resp = stack.api("PATCH", "/api/v0/environments/pool/", token=token, json={"max_size": 9})
    assert resp.status_code == 403, resp.text
    resp = stack.api("POST", "/api/v0/workers/x~y/drain/", token=token)
    assert resp.status_code == 403, resp.text
    assert environment(stack, "pool")["max_size"] == 1
    assert stack.api("GET", "/api/v0/workers/", token="nonsense").status_code == 401


def test_allowed_projects(stack: Stack) -> None:
    project_id, identifier = commit(stack, "mine")
    other_id, other_commit = commit(stack, "other")
    create_group(stack, slug="private", provider="static", allowed_projects=[project_id])
    stack.submit(project_id, identifier, "train", environment="private")
    resp = stack.api(
        "POST",
        "/api/v0/executions/",
        json={
            "project": other_id,
            "commit": other_commit,
            "step": "train",
            "environment": "private",
        },
    )
    assert resp.status_code == 403, resp.text
    assert "does not serve this project" in resp.json()["message"]


def test_static_workers_listed_and_drained(stack: Stack) -> None:
    group = create_group(stack, slug="onprem", provider="static", max_size=1)
    project_id, identifier = commit(stack)
    start_group_agent(stack, group["token"], "machine-1")

    def workers() -> list[dict]:
        answer = stack.api("GET", "/api/v0/workers/", params={"environment": "onprem"})
        return list(answer.json()["results"])

    (worker,) = wait_for("the agent to check in", workers, stack)
    assert worker["state"] == "idle" and worker["name"] == "machine-1", worker
    assert worker["environment"]["slug"] == "onprem"

    first = stack.submit(project_id, identifier, "slow", environment="onprem")
    stack.wait_status(first["id"], {"started"})
    (worker,) = wait_for(
        "the worker to be busy", lambda: [w for w in workers() if w["execution"]], stack
    )
    assert worker["state"] == "busy" and worker["execution"] == first["id"], worker

    resp = stack.api("POST", f"/api/v0/workers/{worker['id']}/drain/")
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "draining" and resp.json()["execution"] == first["id"]
    second = stack.submit(project_id, identifier, "train", environment="onprem")

    # The drained worker finishes what it runs, and claims nothing more.
    assert stack.wait_status(first["id"])["status"] == "complete"

    def reason() -> str | None:
        described = stack.api("GET", f"/api/v0/executions/{second['id']}/").json()
        text = described.get("waiting_reason") or ""
        return text if "static group" in text else None

    text = wait_for("the second execution's reason", reason, stack)
    assert "Waiting for a machine of the static group 'onprem'" in text, text
    assert stack.api("GET", f"/api/v0/executions/{second['id']}/").json()["status"] == "queued"
    (worker,) = workers()
    assert worker["state"] == "draining" and worker["execution"] is None, worker

    resp = stack.api("POST", f"/api/v0/workers/{worker['id']}/drain/", json={"drain": False})
    assert resp.status_code == 200 and resp.json()["state"] == "idle", resp.text
    assert stack.wait_status(second["id"])["status"] == "complete"
    assert stack.api("POST", "/api/v0/workers/nope/drain/").status_code == 404
    resp = stack.api("POST", f"/api/v0/workers/{worker['id']}/drain/", json={"drain": "yes"})
    assert resp.status_code == 400, resp.text
