"""The project's pushed execution list, and the queue depth and workers of environments."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from mastertest import MasterClient

from master.feed import MAX_FEED_ENTRIES


@asynccontextmanager
async def feed(
    master: MasterClient, project_id: str, **headers: str
) -> AsyncIterator[AsyncIterator[tuple[str, dict[str, Any]]]]:
    """The project's execution stream as (event id, execution) pairs."""
    async with (
        httpx.AsyncClient(
            base_url=master.url,
            headers={"Authorization": f"Token {master.admin_token}", **headers},
            timeout=httpx.Timeout(60),
        ) as http,
        aconnect_sse(http, "GET", f"/api/v0/projects/{project_id}/executions/stream/") as src,
    ):
        assert src.response.status_code == 200, await src.response.aread()

        async def events() -> AsyncIterator[tuple[str, dict[str, Any]]]:
            async for sse in src.aiter_sse():
                assert sse.event == "execution"
                yield sse.id, json.loads(sse.data)

        yield events()


async def next_event(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> tuple[str, Any]:
    return await asyncio.wait_for(anext(events), 30)  # a guard against a hang, not a timing


async def until(
    events: AsyncIterator[tuple[str, dict[str, Any]]], execution_id: str, status: str
) -> tuple[str, dict[str, Any]]:
    while True:
        event_id, execution = await next_event(events)
        if execution["id"] == execution_id and execution["status"] == status:
            return event_id, execution


async def test_stream_sends_the_page_then_every_status_and_cell_change(
    master: MasterClient,
) -> None:
    project, commit = await master.setup_commit()
    first = await master.submit(project["id"], commit["identifier"], step="nb")
    async with feed(master, project["id"]) as events:
        _, page = await next_event(events)
        assert page["id"] == first["id"] and page["status"] == "queued"
        assert page["project"]["id"] == project["id"] and page["cells"] == []

        second = await master.submit(project["id"], commit["identifier"])
        _, item = await next_event(events)
        assert (item["id"], item["status"]) == (second["id"], "queued")

        claim = (await master.claim()).json()
        assert claim["id"] == first["id"]
        await until(events, first["id"], "started")

        cell = {"type": "cell", "state": "start", "index": 0, "total": 1, "position": 1}
        resp = await master.agent(
            "POST",
            f"/api/agent/executions/{first['id']}/events",
            json={
                "attempt": claim["attempt"],
                "events": [{"stream": "progress", "message": json.dumps(cell)}],
            },
        )
        assert resp.status_code == 200, resp.text
        _, item = await next_event(events)
        assert item["id"] == first["id"] and item["current_cell"] == 0
        assert item["cells"][0]["state"] == "running"

        stop = await master.api("POST", f"/api/v0/executions/{second['id']}/stop/")
        assert stop.status_code == 200
        await until(events, second["id"], "stopped")

        resp = await master.agent(
            "POST",
            f"/api/agent/executions/{first['id']}/status",
            json={"attempt": claim["attempt"], "status": "complete", "exit_code": 0},
        )
        assert resp.status_code == 200, resp.text
        _, done = await until(events, first["id"], "complete")
        assert done["exit_code"] == 0


async def test_resume_after_last_event_id_sends_only_the_changes(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    one = await master.submit(project["id"], commit["identifier"])
    two = await master.submit(project["id"], commit["identifier"])
    async with feed(master, project["id"]) as events:
        page = [await next_event(events), await next_event(events)]
    assert [e["id"] for _, e in page] == [one["id"], two["id"]]  # oldest first: newest last
    last_id = page[-1][0]

    await master.api("POST", f"/api/v0/executions/{one['id']}/stop/")
    three = await master.submit(project["id"], commit["identifier"])
    async with feed(master, project["id"], **{"Last-Event-ID": last_id}) as events:
        got = [await next_event(events), await next_event(events)]
    assert [(e["id"], e["status"]) for _, e in got] == [
        (one["id"], "stopped"),
        (three["id"], "queued"),
    ]

    # An id the feed does not reach back to: the page again (newest last).
    async with feed(master, project["id"], **{"Last-Event-ID": "garbage"}) as events:
        got = [await next_event(events) for _ in range(3)]
    assert [e["id"] for _, e in got] == [one["id"], two["id"], three["id"]]
    assert MAX_FEED_ENTRIES >= 100


async def test_stream_of_an_unknown_project_is_a_json_404(master: MasterClient) -> None:
    resp = await master.api("GET", "/api/v0/projects/p-nope/executions/stream/")
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found"


async def test_openapi_lists_the_project_stream(master: MasterClient) -> None:
    spec = (await master.request("GET", "/api/v0/openapi.json", None)).json()
    assert "/api/v0/projects/{id}/executions/stream/" in spec["paths"]


async def test_environments_show_queue_depth_and_workers(master: MasterClient) -> None:
    async def local() -> dict[str, Any]:
        envs = (await master.api("GET", "/api/v0/environments/")).json()["results"]
        return next(e for e in envs if e["slug"] == "local")

    env = await local()
    assert (env["queue_depth"], env["workers"]) == (0, 0)
    project, commit = await master.setup_commit()
    for _ in range(2):
        await master.submit(project["id"], commit["identifier"])
    assert (await local())["queue_depth"] == 2

    claim = (await master.claim()).json()  # worker w1
    env = await local()
    assert (env["queue_depth"], env["workers"]) == (1, 1)
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{claim['id']}/heartbeat",
        json={"attempt": claim["attempt"]},
    )
    assert resp.status_code == 200
    resp = await master.agent(
        "POST", "/api/agent/claim", json={"worker": {"id": "w2", "name": "w2"}, "wait": 0}
    )
    assert resp.status_code == 200
    env = await local()
    assert (env["queue_depth"], env["workers"]) == (0, 2)
