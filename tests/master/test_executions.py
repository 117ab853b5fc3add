"""Creating, listing, describing and stopping executions through the v0 API."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from mastertest import MasterClient

from master.queue import queue_key


async def test_create_execution_shape(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    execution = await master.submit(
        project["id"],
        commit["identifier"],
        parameters={"epochs": 5},
        title="first",
        tags=["a"],
        environment_variables={"FOO": "bar"},
        inputs={"data": ["https://example.com/a.csv"]},
    )
    assert execution["counter"] == 1 and execution["status"] == "queued"
    assert execution["parameters"] == {"epochs": 5, "lr": 0.1}
    assert execution["inputs"] == [{"name": "data", "urls": ["https://example.com/a.csv"]}]
    assert execution["project"]["id"] == project["id"]
    assert execution["commit"]["identifier"] == commit["identifier"]
    assert execution["environment"]["slug"] == "local"
    assert execution["url"] == f"{master.url}/api/v0/executions/{execution['id']}/"
    assert execution["urls"]["stop"].endswith("/stop/") and execution["urls"]["display"]
    assert execution["creator"]["username"] == "admin" and execution["attempt"] == 0
    by_counter = await master.api("GET", f"/api/v0/executions/{project['id']}:1/")
    assert by_counter.json()["id"] == execution["id"]
    latest = await master.api(
        "GET", f"/api/v0/executions/{project['id']}:latest/", params={"exclude": "metadata,events"}
    )
    assert latest.json()["id"] == execution["id"] and "metadata" not in latest.json()
    second = await master.submit(project["id"], commit["identifier"], environment="local")
    assert second["counter"] == 2
    env_id = execution["environment"]["id"]
    third = await master.submit(project["id"], commit["identifier"], environment=env_id)
    assert third["counter"] == 3
    events = (await master.api("GET", f"/api/v0/executions/{execution['id']}/events/")).json()
    assert [e["stream"] for e in events["events"]] == ["status", "status"]
    assert "queued" in events["events"][-1]["message"]


async def test_notebook_step_spec(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    await master.submit(project["id"], commit["identifier"], step="nb")
    spec = (await master.claim()).json()
    assert spec["kind"] == "notebook" and spec["notebook"] == "notebooks/train.ipynb"


BAD: list[tuple[str, Any, int]] = [
    ("unknown project", {"project": "p-nope"}, 400),
    ("unknown commit", {"commit": "~abc"}, 400),
    ("unknown step", {"step": "nope"}, 400),
    ("wrong parameter type", {"parameters": {"epochs": "many"}}, 400),
    ("unknown parameter", {"parameters": {"nope": 1}}, 400),
    ("unknown environment", {"environment": "gpu-xl"}, 400),
    ("parameters not an object", {"parameters": [1]}, 400),
    ("unknown datum", {"inputs": {"data": ["datum://d-nope"]}}, 400),
    ("missing step", {"step": None}, 400),
]


@pytest.mark.parametrize(("label", "override", "status"), BAD, ids=[b[0] for b in BAD])
async def test_bad_requests_store_nothing(
    master: MasterClient, label: str, override: Any, status: int
) -> None:
    project, commit = await master.setup_commit()
    body = {"project": project["id"], "commit": commit["identifier"], "step": "train"}
    body.update(override)
    resp = await master.api("POST", "/api/v0/executions/", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["message"]
    await assert_nothing_stored(master)


async def test_malformed_json_stores_nothing(master: MasterClient) -> None:
    await master.setup_commit()
    for raw in (b"{", b"[1, 2]", b'"text"'):
        resp = await master.api(
            "POST", "/api/v0/executions/", data=raw, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 400, resp.text
    await assert_nothing_stored(master)


async def assert_nothing_stored(master: MasterClient) -> None:
    ctx = master.master.ctx
    assert await ctx.store.executions.count_documents({}) == 0
    assert await ctx.store.counters.count_documents({}) == 0
    assert await ctx.redis.keys("vh:log:*") == []
    assert await ctx.redis.keys("vh:queue:*") == []


async def test_list_filters_and_pagination(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    for _ in range(3):
        await master.submit(project["id"], commit["identifier"])
    await master.claim()
    params: dict[str, Any] = {"project": project["id"], "ordering": "-counter", "limit": 2}
    page = (await master.api("GET", "/api/v0/executions/", params=params)).json()
    assert page["count"] == 3 and [e["counter"] for e in page["results"]] == [3, 2]
    assert page["next"]
    started = (await master.api("GET", "/api/v0/executions/", params={"status": "started"})).json()
    assert [e["counter"] for e in started["results"]] == [1]
    incomplete = (
        await master.api("GET", "/api/v0/executions/", params={"status": "incomplete"})
    ).json()
    assert incomplete["count"] == 3
    some = (
        await master.api(
            "GET", "/api/v0/executions/", params={"counter": ["1", "3"], "project": project["id"]}
        )
    ).json()
    assert sorted(e["counter"] for e in some["results"]) == [1, 3]
    deleted = (await master.api("GET", "/api/v0/executions/", params={"deleted": "true"})).json()
    assert deleted["count"] == 0
    bad = await master.api("GET", "/api/v0/executions/", params={"status": "weird"})
    assert bad.status_code == 400


async def test_stop_queued(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    execution = await master.submit(project["id"], commit["identifier"])
    resp = await master.api("POST", execution["urls"]["stop"])
    assert resp.status_code == 200 and "stopped" in resp.text
    assert (await master.execution(execution["id"]))["status"] == "stopped"
    ctx = master.master.ctx
    assert await ctx.redis.zcard(queue_key(execution["environment"]["id"])) == 0
    assert (await master.claim()).status_code == 204
    again = await master.api("POST", execution["urls"]["stop"])
    assert again.status_code == 200 and "already finished" in again.text


def test_redis_module_is_real(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    client.close()
