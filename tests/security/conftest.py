"""A real in-process master (real nx-27017 and redis-server) and a populated two-project world.

``world`` builds what the authorization tests walk over: project A (owner, editor, viewer), project
B of a stranger, an execution of A that ran with an output (datum, alias, dataset version), a queued
one, a member, a registry credential, a second environment with its own worker-group token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from jupyter_valohai.models import new_token
from tests.master import mastertest
from tests.master.mastertest import MasterClient

# the in-process master of tests/master, shared
master_config = mastertest.master_config
master = mastertest.master


@dataclass
class World:
    master: MasterClient
    tokens: dict[str, str] = field(default_factory=dict)  # owner, editor, viewer, stranger
    users: dict[str, str] = field(default_factory=dict)  # name -> user id
    ids: dict[str, str] = field(default_factory=dict)  # what belongs to project A
    other_agent_token: str = ""

    def secret_ids(self) -> list[str]:
        """Identifiers of project A's objects: no answer to an outsider may contain one."""
        keys = ("project", "execution", "queued", "datum", "alias", "dataset", "commit")
        return [self.ids[k] for k in keys]


async def make_user(master: MasterClient, name: str, admin: bool = False) -> tuple[str, str]:
    """Create a user through the admin API and log in; return (user id, token)."""
    password = f"pw-{name}-{new_token(8)}"
    body = {"username": name, "password": password, "is_admin": admin}
    resp = await master.api("POST", "/api/v0/users/", json=body)
    assert resp.status_code == 201, resp.text
    login = await master.request(
        "POST", "/api/v0/get-token/", None, data={"username": name, "password": password}
    )
    assert login.status_code == 200, login.text
    return resp.json()["id"], login.json()["token"]


async def agent_json(master: MasterClient, method: str, path: str, **body: Any) -> Any:
    resp = await master.agent(method, path, json=body)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


@pytest.fixture
async def world(master: MasterClient) -> World:
    w = World(master)
    for name in ("owner", "editor", "viewer", "stranger"):
        w.users[name], w.tokens[name] = await make_user(master, name)
    owner = w.tokens["owner"]
    project = await master.api("POST", "/api/v0/projects/", token=owner, json={"name": "A"})
    pid = project.json()["id"]
    for name, role in (("editor", "editor"), ("viewer", "viewer")):
        resp = await master.api(
            "POST",
            f"/api/v0/projects/{pid}/members/",
            token=owner,
            json={"user": name, "role": role},
        )
        assert resp.status_code == 201, resp.text
    stranger = w.tokens["stranger"]
    b = await master.api("POST", "/api/v0/projects/", token=stranger, json={"name": "B"})
    assert b.status_code == 201, b.text
    master.admin_token, admin = owner, master.admin_token  # import and submit as A's owner
    try:
        commit = (await master.import_package(pid)).json()
        execution = await master.submit(pid, commit["identifier"])
        spec = (await master.claim()).json()
        eid, attempt = spec["id"], spec["attempt"]
        data = b"model bytes"
        prep = await agent_json(
            master,
            "POST",
            f"/api/agent/executions/{eid}/outputs/prepare",
            attempt=attempt,
            files=[{"name": "model.bin", "size": len(data)}],
        )
        put = await master.agent("PUT", prep["uploads"][0]["url"], data=data)
        assert put.status_code == 201, put.text
        meta = {"valohai.dataset-versions": ["dataset://ds/v1"]}
        out = {"name": "model.bin", "sha256": hashlib.sha256(data).hexdigest(), "metadata": meta}
        reg = await agent_json(
            master, "POST", f"/api/agent/executions/{eid}/outputs", attempt=attempt, outputs=[out]
        )
        datum_id = reg["datums"][0]["id"]
        status = f"/api/agent/executions/{eid}/status"
        await agent_json(master, "POST", status, attempt=attempt, status="complete")
        best = {"project": pid, "name": "best", "datum": datum_id}
        alias = await master.api("POST", "/api/v0/datum-aliases/", json=best)
        assert alias.status_code == 201, alias.text
        queued = await master.submit(pid, commit["identifier"])
        datasets = (await master.api("GET", "/api/v0/datasets/", params={"project": pid})).json()
    finally:
        master.admin_token = admin
    cred = await master.api(
        "POST",
        "/api/v0/registry-credentials/",
        json={"registry": "registry.example.com", "username": "u", "password": "registry-pw"},
    )
    assert cred.status_code == 201, cred.text
    w.ids = {
        "project": pid,
        "execution": execution["id"],
        "execution_ref": f"{pid}:{execution['counter']}",
        "queued": queued["id"],
        "datum": datum_id,
        "alias": alias.json()["id"],
        "dataset": datasets["results"][0]["id"],
        "commit": commit["identifier"],
        "credential": cred.json()["id"],
    }
    w.other_agent_token = new_token()
    await master.master.services.environments.ensure("other", w.other_agent_token)
    return w
