"""Authentication on every route, JSON errors, users, projects, environments, OpenAPI."""

from __future__ import annotations

import re

import pytest
from mastertest import MasterClient

from master.api.routes import ROUTES

OPEN = {"/api/v0/get-token/", "/api/v0/openapi.json"}


async def test_every_route_needs_a_token(master: MasterClient) -> None:
    checked = 0
    for route in ROUTES:
        if route.path in OPEN:
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in route.ops:
            for token in (None, "wrong-token"):
                resp = await master.request(
                    method.upper(), path, token, data=b"{}" if method != "get" else None
                )
                assert resp.status_code == 401, (method, path, resp.text)
                assert resp.json()["code"] == "not_authenticated"
                checked += 1
    assert checked > 40


async def test_user_token_is_not_an_agent_token_and_back(master: MasterClient) -> None:
    resp = await master.agent("POST", "/api/agent/claim", token=master.admin_token, json={})
    assert resp.status_code == 401
    resp = await master.api("GET", "/api/v0/users/me/", token=master.agent_token)
    assert resp.status_code == 401


async def test_tokens_are_stored_hashed(master: MasterClient) -> None:
    store = master.master.ctx.store
    for collection in (store.tokens, store.users, store.environments):
        async for doc in collection.find({}):
            assert master.admin_token not in str(doc)
            assert master.agent_token not in str(doc)


async def test_unknown_route_and_malformed_json(master: MasterClient) -> None:
    resp = await master.api("GET", "/api/v0/nothing-here/")
    assert resp.status_code == 404 and resp.json()["message"]
    resp = await master.api(
        "POST",
        "/api/v0/executions/",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and "JSON" in resp.json()["message"]


async def test_get_token_with_password(master_config, mongo_url) -> None:  # type: ignore[no-untyped-def]
    from mastertest import MasterClient as Client
    from mastertest import start_master

    master_config.admin_password = "s3cret pass"
    running, port = await start_master(master_config)
    try:
        client = Client(running, f"http://127.0.0.1:{port}", "", "")
        bad = await client.request(
            "POST", "/api/v0/get-token/", None, data={"username": "admin", "password": "nope"}
        )
        assert bad.status_code == 401
        good = await client.request(
            "POST",
            "/api/v0/get-token/",
            None,
            data={"username": "admin", "password": "s3cret pass"},
        )
        assert good.status_code == 200, good.text
        me = await client.request("GET", "/api/v0/users/me/", good.json()["token"])
        assert me.json()["username"] == "admin"
        user = await running.ctx.store.users.find_one({"username": "admin"})
        assert user and "s3cret" not in str(user)
    finally:
        await running.stop()


async def test_projects_create_list_get(master: MasterClient) -> None:
    options = await master.api("GET", "/api/v0/projects/ownership_options/")
    assert options.json() == ["admin"]
    project = await master.create_project("alpha")
    assert project["owner"]["username"] == "admin"
    assert project["yaml_path"] == "valohai.yaml"
    assert project["url"].startswith(master.url) and project["urls"]["display"]
    dup = await master.api("POST", "/api/v0/projects/", json={"name": "alpha"})
    assert dup.status_code == 409 and dup.json()["message"]
    await master.create_project("beta")
    listing = (await master.api("GET", "/api/v0/projects/", params={"limit": 1})).json()
    assert listing["count"] == 2 and len(listing["results"]) == 1 and listing["next"]
    got = await master.api("GET", f"/api/v0/projects/{project['id']}/")
    assert got.json()["name"] == "alpha"
    missing = await master.api("GET", "/api/v0/projects/p-nope/")
    assert missing.status_code == 404


async def test_environments_and_openapi(master: MasterClient) -> None:
    envs = (
        await master.api("GET", "/api/v0/environments/", params={"include": "unfinished_job_count"})
    ).json()["results"]
    assert [e["slug"] for e in envs] == ["local"]
    assert envs[0]["unfinished_job_count"] == 0 and envs[0]["per_user_queue_quota"] == 0
    spec = (await master.request("GET", "/api/v0/openapi.json", None)).json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v0/executions/{ref}/stop/" in spec["paths"]
    assert "/api/agent/claim" in spec["paths"]


@pytest.mark.parametrize("kind", ["garbage", "unsafe", "bad_yaml", "no_yaml"])
async def test_bad_packages_are_refused_and_nothing_stored(master: MasterClient, kind: str) -> None:
    import io
    import tarfile

    from mastertest import make_tarball

    project = await master.create_project()
    if kind == "garbage":
        data = b"this is not a tarball"
    elif kind == "unsafe":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            payload = b"- step: {name: x, image: y, command: z}\n"
            info = tarfile.TarInfo("valohai.yaml")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            evil = tarfile.TarInfo("../../evil.sh")
            evil.size = 2
            tar.addfile(evil, io.BytesIO(b"hi"))
        data = buf.getvalue()
    elif kind == "bad_yaml":
        data = make_tarball({"valohai.yaml": "- step:\n    name: [unclosed\n"})
    else:
        data = make_tarball({"train.py": "print(1)\n"})
    resp = await master.api(
        "POST",
        f"/api/v0/projects/{project['id']}/import-package/",
        files={"data": ("data.tgz", data, "application/gzip")},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"]
    assert await master.master.ctx.store.commits.count_documents({}) == 0
    root = master.master.ctx.artifacts.root  # type: ignore[attr-defined]
    import os

    assert not os.path.exists(os.path.join(root, "code")) or not os.listdir(
        os.path.join(root, "code")
    )


async def test_same_package_twice_is_stored_once(master: MasterClient) -> None:
    import os

    project = await master.create_project()
    first = await master.import_package(project["id"])
    second = await master.import_package(project["id"])
    assert first.status_code == second.status_code == 201
    assert first.json()["identifier"] == second.json()["identifier"]
    assert first.json()["adhoc"] is True
    identifier = first.json()["identifier"]
    root = master.master.ctx.artifacts.root  # type: ignore[attr-defined]
    assert os.listdir(os.path.join(root, "code")) == [identifier[1:] + ".tgz"]
    assert await master.master.ctx.store.commits.count_documents({}) == 1
    got = await master.api(
        "GET", f"/api/v0/commits/{identifier}/", params={"project": project["id"]}
    )
    assert got.status_code == 200 and got.json()["adhoc"]
    missing = await master.api("GET", "/api/v0/commits/~nope/", params={"project": project["id"]})
    assert missing.status_code == 404
    listing = await master.api("GET", f"/api/v0/projects/{project['id']}/commits/")
    assert listing.json()["count"] == 1
    listing = await master.api(
        "GET", "/api/v0/commits/", params={"project": project["id"], "adhoc": "false"}
    )
    assert listing.json()["count"] == 0
