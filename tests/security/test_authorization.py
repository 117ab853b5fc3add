"""The authorization matrix: every route of ROUTES, with no token, a stranger's token (a member
of another project only), a viewer's token and another worker group's agent token.

The walk is generic, so routes added later are covered as they land: each path parameter is tried
with every identifier of project A, each body names A's objects. Nobody unauthorized may get a
2xx: no 2xx at all without a token, and for the stranger and the other agent no 2xx answer may
mention any of A's objects; a viewer may read but never change anything.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import requests

from jupyter_valohai.models import hash_token
from master.api.routes import ROUTES, Route

from .conftest import World

#: Routes any signed-in user may change: they act on the caller's own things only.
USER_SCOPED = {("post", "/api/v0/projects/")}
PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


def candidates(world: World, name: str) -> list[str]:
    if name == "attempt":
        return ["1", "2"]
    if name == "name":
        return ["model.bin"]
    ids = world.ids
    return sorted({*ids.values(), world.users["owner"], world.users["viewer"], "owner"})


def paths(world: World, route: Route) -> list[str]:
    names = [m.group(1) for m in PARAM.finditer(route.path)]
    out = []
    for values in itertools.product(*(candidates(world, n) for n in names)):
        path = route.path
        for value in values:
            path = PARAM.sub(value, path, count=1)
        out.append(path)
    return out


def body(world: World) -> dict[str, Any]:
    ids = world.ids
    return {
        "project": ids["project"],
        "commit": ids["commit"],
        "step": "train",
        "name": "intruder",
        "datum": ids["datum"],
        "user": world.users["stranger"],
        "username": "intruder",
        "password": "intruder-password",
        "role": "owner",
        "value": "x",
        "secret": False,
        "repository": None,
        "attempt": 1,
        "status": "complete",
        "events": [{"stream": "stdout", "message": "intruder"}],
        "outputs": [],
        "files": [],
        "registry": "registry.example.com",
    }


def call(url: str, method: str, token: str | None, json_body: Any) -> tuple[int, str]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    kw: dict[str, Any] = {"headers": headers, "timeout": 30, "stream": True}
    if method != "get":
        kw["json"] = json_body
    resp = requests.request(method.upper(), url, **kw)
    try:
        if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            # A stream that opened: read its first events (they would hold A's objects).
            text = ""
            for chunk in resp.iter_content(4096, decode_unicode=True):
                text += chunk
                if len(text) > 2000 or "\n\n" in text:
                    break
            return resp.status_code, text
        return resp.status_code, resp.text
    finally:
        resp.close()


async def walk(world: World) -> dict[str, Any]:
    master = world.master
    secrets = world.secret_ids()
    payload = body(world)
    violations: list[str] = []
    counts = {"requests": 0, "viewer_reads_ok": 0, "routes": 0}
    for route in ROUTES:
        auth = getattr(route.handler, "auth", "user")
        if auth is None:
            continue
        counts["routes"] += 1
        for path, method in itertools.product(paths(world, route), route.ops):
            url = master.url + path
            if auth == "agent":
                identities = [
                    ("none", None),
                    ("viewer", world.tokens["viewer"]),
                    ("other-agent", world.other_agent_token),
                ]
            else:
                identities = [
                    ("none", None),
                    ("stranger", world.tokens["stranger"]),
                    ("viewer", world.tokens["viewer"]),
                    ("agent", master.agent_token),
                ]
            for who, token in identities:
                status, text = await asyncio.to_thread(call, url, method, token, payload)
                counts["requests"] += 1
                where = f"{who} {method.upper()} {path} -> {status}: {text[:200]}"
                assert status < 500, where
                if not 200 <= status < 300:
                    continue
                leaked = [s for s in secrets if s in text]
                if who in ("none",) or (auth == "agent" and who == "viewer"):
                    violations.append(where)
                elif who in ("stranger", "other-agent", "agent") and leaked:
                    violations.append(f"{where} (mentions {leaked})")
                elif method != "get" and who in ("stranger", "agent", "viewer"):
                    if (method, route.path) not in USER_SCOPED:
                        violations.append(where)
                elif who == "viewer":
                    counts["viewer_reads_ok"] += 1
    counts["violations"] = violations
    return counts


async def test_authorization_matrix(world: World) -> None:
    counts = await walk(world)
    print(
        f"\nauthorization matrix: {counts['routes']} routes, {counts['requests']} requests, "
        f"{len(counts['violations'])} unauthorized 2xx, "
        f"{counts['viewer_reads_ok']} viewer reads allowed"
    )
    assert counts["violations"] == [], "\n".join(counts["violations"])
    assert counts["viewer_reads_ok"] >= 12  # the walk did reach A's objects
    # Nothing the intruders sent changed A: the queued execution is still queued.
    queued = await world.master.execution(world.ids["queued"])
    assert queued["status"] == "queued"
    members = await world.master.api("GET", f"/api/v0/projects/{world.ids['project']}/members/")
    roles = {m["user"]["username"]: m["role"] for m in members.json()["results"]}
    assert roles == {"owner": "owner", "editor": "editor", "viewer": "viewer"}


async def test_tokens_are_stored_only_as_hashes(world: World) -> None:
    store = world.master.master.ctx.store
    tokens = [*world.tokens.values(), world.master.admin_token, world.master.agent_token]
    tokens.append(world.other_agent_token)
    dump = []
    for name in await store.db.list_collection_names():
        dump += [str(doc) async for doc in store.db[name].find({})]
    text = "\n".join(dump)
    for token in tokens:
        assert len(token) >= 32  # >= 192 random bits, url-safe base64
        assert token not in text
    stored = {doc["hash"] async for doc in store.tokens.find({})}
    assert {hash_token(t) for t in tokens} <= stored
    async for user in store.users.find({"password_hash": {"$exists": True}}):
        assert user["password_hash"].startswith("$argon2id$")


async def test_roles(world: World) -> None:
    master, pid = world.master, world.ids["project"]
    t = world.tokens
    submit = {"project": pid, "commit": world.ids["commit"], "step": "train"}
    viewer = await master.api("POST", "/api/v0/executions/", token=t["viewer"], json=submit)
    assert viewer.status_code == 403 and "editor" in viewer.json()["message"]
    stranger = await master.api("POST", "/api/v0/executions/", token=t["stranger"], json=submit)
    assert stranger.status_code == 400  # told there is no such project
    editor = await master.api("POST", "/api/v0/executions/", token=t["editor"], json=submit)
    assert editor.status_code == 201, editor.text
    stop = f"/api/v0/executions/{editor.json()['id']}/stop/"
    assert (await master.api("POST", stop, token=t["viewer"])).status_code == 403
    assert (await master.api("POST", stop, token=t["editor"])).status_code == 200
    # Settings and membership are the owner's.
    members = f"/api/v0/projects/{pid}/members/"
    for who in ("viewer", "editor"):
        resp = await master.api("POST", members, token=t[who], json={"user": who, "role": "owner"})
        assert resp.status_code == 403, resp.text
        resp = await master.api("PATCH", f"/api/v0/projects/{pid}/", token=t[who], json={})
        assert resp.status_code == 403, resp.text
    # The owner removes the viewer: the viewer loses the project.
    gone = await master.api("DELETE", f"{members}viewer/", token=t["owner"])
    assert gone.status_code == 204, gone.text
    resp = await master.api("GET", f"/api/v0/projects/{pid}/", token=t["viewer"])
    assert resp.status_code == 404
    listed = await master.api("GET", "/api/v0/executions/", token=t["viewer"])
    assert listed.status_code == 200 and listed.json()["count"] == 0
    # The creator stays owner; roles are checked.
    resp = await master.api("DELETE", f"{members}owner/", token=t["owner"])
    assert resp.status_code == 409
    resp = await master.api("POST", members, token=t["owner"], json={"user": "x", "role": "god"})
    assert resp.status_code == 400


async def test_only_admins_manage_users_and_registries(world: World) -> None:
    master, t = world.master, world.tokens
    body = {"username": "eve", "password": "long enough password"}
    resp = await master.api("POST", "/api/v0/users/", token=t["owner"], json=body)
    assert resp.status_code == 403
    assert (await master.api("GET", "/api/v0/users/", token=t["owner"])).status_code == 403
    cred = {"registry": "r.example.com", "username": "u", "password": "p"}
    resp = await master.api("POST", "/api/v0/registry-credentials/", token=t["owner"], json=cred)
    assert resp.status_code == 403
