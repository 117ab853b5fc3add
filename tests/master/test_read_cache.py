"""The per-process read cache (master/cache.py): what the API reads on every request comes from
memory, and every write that changes it is visible at once (in the writing master) and right
after (in every other master, through Redis pub/sub).

The cross-master tests give the cache an hour of TTL, so only an invalidation explains a change
seen there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import requests
from mastertest import MasterClient

from jupyter_valohai.models import new_token
from master.cache import MISSING, ReadCache, cache_key
from master.services.describe import DESCRIBED
from master.web.accounts import TOKEN_ID_CHARS, Accounts

#: Longest wait for another master to see a change (its invalidation comes over pub/sub).
PROPAGATION = 10.0


async def make_user(master: MasterClient, name: str) -> tuple[str, str]:
    """A user made by the admin, logged in; (user id, token)."""
    password = f"pw-{name}-{new_token(8)}"
    resp = await master.api("POST", "/api/v0/users/", json={"username": name, "password": password})
    assert resp.status_code == 201, resp.text
    login = await master.request(
        "POST", "/api/v0/get-token/", None, data={"username": name, "password": password}
    )
    assert login.status_code == 200, login.text
    return resp.json()["id"], login.json()["token"]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail after PROPAGATION seconds (a pub/sub message lost)."""
    deadline = asyncio.get_running_loop().time() + PROPAGATION
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


def cached(master: MasterClient, namespace: str, key: str) -> Any:
    return master.master.ctx.store.cache.get(namespace, key)


# --- the cache itself -----------------------------------------------------------------------------


async def test_a_read_racing_a_write_is_not_kept() -> None:
    cache = ReadCache(ttl=60)
    cache.set_live(True)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_old_read() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"_id": "x", "v": "old"}

    reader = asyncio.create_task(cache.load("things", "x", slow_old_read))
    await started.wait()
    cache.forget("things", ["x"])  # a write lands while the read is in flight
    release.set()
    assert (await reader)["v"] == "old"  # that reader gets what it read...
    assert cache.get("things", "x") is MISSING  # ...but nobody after it

    async def fresh_read() -> dict[str, Any]:
        return {"_id": "x", "v": "new"}

    assert (await cache.load("things", "x", fresh_read))["v"] == "new"
    assert cache.get("things", "x")["v"] == "new"


async def test_nothing_is_served_without_a_live_subscription() -> None:
    cache = ReadCache(ttl=60)

    async def read() -> dict[str, Any]:
        return {"_id": "x"}

    await cache.load("things", "x", read)
    assert cache.get("things", "x") is MISSING  # never live: nothing kept
    cache.set_live(True)
    await cache.load("things", "x", read)
    assert cache.get("things", "x") == {"_id": "x"}
    cache.set_live(False)  # the subscription dropped: invalidations may be missed
    assert cache.get("things", "x") is MISSING
    cache.set_live(True)
    assert cache.get("things", "x") is MISSING  # and it starts empty when it comes back


def test_write_filters_name_their_keys() -> None:
    assert cache_key(("_id",), {"_id": "e-1", "status": "started"}) == ["e-1"]
    assert cache_key(("_id",), {"_id": {"$in": ["a", "b"]}}) == ["a", "b"]
    assert cache_key(("_id",), {"_id": {"$eq": "a"}}) == ["a"]
    assert cache_key(("project", "user"), {"project": "p", "user": "u"}) == ["p u"]
    # a filter that pins no key invalidates the whole namespace
    assert cache_key(("_id",), {"username": "ada"}) is None
    assert cache_key(("_id",), {"_id": {"$gt": "a"}}) is None
    assert cache_key(("project", "user"), {"project": "p"}) is None


# --- one master: a write is never followed by a stale read --------------------------------------


async def test_revoked_token_stops_working_at_once(master: MasterClient) -> None:
    user_id, token = await make_user(master, "ada")
    me = await master.request("GET", "/api/v0/users/me/", token)
    assert me.status_code == 200, me.text
    assert await master.request("GET", "/api/v0/users/me/", token)  # now served from the cache
    accounts = Accounts(master.master.ctx, master.master.services.users)
    token_id = (await accounts.tokens(user_id))[0]["id"]
    assert len(token_id) == TOKEN_ID_CHARS
    await accounts.revoke_token(user_id, token_id)
    gone = await master.request("GET", "/api/v0/users/me/", token)
    assert gone.status_code == 401, gone.text


async def test_membership_role_change_and_removal_apply_at_once(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    pid = project["id"]
    user_id, token = await make_user(master, "bob")
    members = f"/api/v0/projects/{pid}/members/"
    resp = await master.api("POST", members, json={"user": "bob", "role": "viewer"})
    assert resp.status_code == 201, resp.text
    execution = await master.submit(pid, commit["identifier"])
    path = f"/api/v0/executions/{execution['id']}/"
    assert (await master.request("GET", path, token)).status_code == 200
    denied = await master.request("POST", f"{path}stop/", token)
    assert denied.status_code == 403, denied.text  # a viewer, cached as such

    resp = await master.api("POST", members, json={"user": "bob", "role": "editor"})
    assert resp.status_code == 201, resp.text
    stop = await master.request("POST", f"{path}stop/", token)
    assert stop.status_code == 200, stop.text  # the new role, at once
    assert (await master.request("GET", path, token)).json()["status"] == "stopped"

    gone = await master.api("DELETE", f"{members}{user_id}/")
    assert gone.status_code == 204, gone.text
    assert (await master.request("GET", path, token)).status_code == 404
    # and a membership added back after a cached "no membership"
    resp = await master.api("POST", members, json={"user": "bob", "role": "viewer"})
    assert resp.status_code == 201, resp.text
    assert (await master.request("GET", path, token)).status_code == 200


async def test_execution_changes_are_visible_at_once(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    execution = await master.submit(project["id"], commit["identifier"])
    eid = execution["id"]
    assert (await master.execution(eid))["status"] == "queued"
    assert cached(master, "executions", eid) is not MISSING  # the GET was served from memory
    spec = (await master.claim()).json()
    assert spec["id"] == eid
    assert (await master.execution(eid))["status"] == "started"
    events = f"/api/agent/executions/{eid}/events"
    body = {"attempt": spec["attempt"], "events": [], "metadata": [{"data": {"loss": 0.5}}]}
    assert (await master.agent("POST", events, json=body)).status_code == 200
    assert (await master.execution(eid))["metadata"] == {"loss": 0.5}
    body["metadata"] = [{"data": {"loss": 0.25, "acc": 0.9}}]
    assert (await master.agent("POST", events, json=body)).status_code == 200
    assert (await master.execution(eid))["metadata"] == {"loss": 0.25, "acc": 0.9}
    status = f"/api/agent/executions/{eid}/status"
    done = await master.agent(
        "POST", status, json={"attempt": spec["attempt"], "status": "complete"}
    )
    assert done.status_code == 200, done.text
    finished = await master.execution(eid)
    assert finished["status"] == "complete" and finished["metadata"] == {"loss": 0.25, "acc": 0.9}

    # a finished execution's answer is kept as bytes, per version of what it is made of
    cache = master.master.ctx.store.cache
    assert await master.execution(eid) == finished
    assert cache._spaces[DESCRIBED]  # (the answer above came from there)
    env = f"/api/v0/environments/{finished['environment']['id']}/"
    assert (await master.api("PATCH", env, json={"name": "Elsewhere"})).status_code == 200
    assert (await master.execution(eid))["environment"]["name"] == "Elsewhere"
    trimmed = await master.api("GET", f"/api/v0/executions/{eid}/", params={"exclude": "metadata"})
    assert "metadata" not in trimmed.json() and trimmed.json()["status"] == "complete"
    assert "metadata" in await master.execution(eid)


async def test_project_and_environment_edits_are_visible_at_once(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    pid = project["id"]
    execution = await master.submit(pid, commit["identifier"])
    described = await master.execution(execution["id"])
    env_id = described["environment"]["id"]
    assert (await master.api("GET", f"/api/v0/projects/{pid}/")).json()[
        "environment_variables"
    ] == {}
    variables = f"/api/v0/projects/{pid}/environment-variables/"
    resp = await master.api("POST", variables, json={"name": "MODE", "value": "fast"})
    assert resp.status_code in (200, 201), resp.text
    shown = (await master.api("GET", f"/api/v0/projects/{pid}/")).json()["environment_variables"]
    assert shown == {"MODE": {"value": "fast", "secret": False}}

    resp = await master.api("PATCH", f"/api/v0/environments/{env_id}/", json={"name": "Renamed"})
    assert resp.status_code == 200, resp.text
    assert (await master.execution(execution["id"]))["environment"]["name"] == "Renamed"


# --- two masters: the other one hears of it over Redis -------------------------------------------


async def test_revoke_and_role_change_reach_the_other_master(
    master_pair: tuple[MasterClient, MasterClient],
) -> None:
    a, b = master_pair
    project, commit = await a.setup_commit()
    pid = project["id"]
    user_id, token = await make_user(a, "carol")
    resp = await a.api("POST", f"/api/v0/projects/{pid}/members/", json={"user": "carol"})
    assert resp.status_code == 400  # (a role is required)
    resp = await a.api(
        "POST", f"/api/v0/projects/{pid}/members/", json={"user": "carol", "role": "viewer"}
    )
    assert resp.status_code == 201, resp.text
    execution = await a.submit(pid, commit["identifier"])
    path = f"/api/v0/executions/{execution['id']}/"
    seen = await b.request("GET", path, token)
    assert seen.status_code == 200 and seen.json()["status"] == "queued"
    assert cached(b, "executions", execution["id"]) is not MISSING

    async def b_answers(status: int) -> bool:
        return (await b.request("GET", path, token)).status_code == status

    # the execution changes through a: b shows the new status
    assert (await a.api("POST", f"{path}stop/")).status_code == 200

    async def b_sees_stopped() -> bool:
        return (await b.request("GET", path, token)).json()["status"] == "stopped"

    await eventually(b_sees_stopped, "b kept serving the execution before its stop")

    # the membership goes through a: b refuses at once after
    gone = await a.api("DELETE", f"/api/v0/projects/{pid}/members/{user_id}/")
    assert gone.status_code == 204, gone.text
    await eventually(lambda: b_answers(404), "b kept a removed membership")

    # the token is revoked through a: b refuses it
    accounts = Accounts(a.master.ctx, a.master.services.users)
    await accounts.revoke_token(user_id, (await accounts.tokens(user_id))[0]["id"])
    await eventually(lambda: b_answers(401), "b kept accepting a revoked token")


# --- proxy headers (master/proxy.py): applied to the requests that carry them, and only those ----


async def test_proxy_headers_apply_per_request(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    execution = await master.submit(project["id"], commit["identifier"])
    path = f"{master.url}/api/v0/executions/{execution['id']}/"
    auth = {"Authorization": f"Token {master.admin_token}"}

    def get_urls() -> list[str]:
        with requests.Session() as session:  # one keep-alive connection for all three
            proxied = {**auth, "X-Forwarded-Proto": "https", "X-Real-Ip": "203.0.113.9"}
            return [
                session.get(path, headers=headers, timeout=30).json()["url"]
                for headers in (auth, proxied, auth)
            ]

    plain, proxied, after = await asyncio.to_thread(get_urls)
    assert plain.startswith("http://") and after == plain
    assert proxied == "https://" + plain[len("http://") :]
