"""GET /api/v0/executions/: filters over several statuses and deep pages, as clients page them.

valohai-cli pages with ``offset``/``limit`` and follows ``next``; every page must hold exactly the
executions a plain sorted list would, with the full count, whichever statuses a page mixes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from mastertest import MasterClient

# Statuses by counter (1-based): runs of two, so pages of a multi-status filter mix them.
PATTERN = ["queued", "queued", "error", "error", "started", "complete", "complete", "error"]


async def follow(master: MasterClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a list, following ``next``; checks counts and ``previous`` on the way."""
    pages = []
    url: str | None = "/api/v0/executions/"
    kw: dict[str, Any] = {"params": params}
    while url:
        resp = await master.api("GET", url, **kw)
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
        url, kw = pages[-1]["next"], {}
    for n, page in enumerate(pages):
        assert page["count"] == pages[0]["count"]
        if n == 0:
            assert page["previous"] is None
        else:
            prev = parse_qs(urlparse(page["previous"]).query)
            assert int(prev["offset"][0]) == max(0, int(params.get("offset", 0)) + (n - 1) * 3)
    return pages


async def test_multi_status_filters_and_deep_pages(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    ids = []
    for _ in range(2 * len(PATTERN)):
        ids.append((await master.submit(project["id"], commit["identifier"]))["id"])
    store = master.master.ctx.store
    status_of = {}
    for counter, execution_id in enumerate(ids, 1):
        status_of[counter] = PATTERN[(counter - 1) % len(PATTERN)]
        await store.executions.update_one(
            {"_id": execution_id}, {"$set": {"status": status_of[counter]}}
        )

    def expected(*statuses: str) -> list[int]:
        return sorted((c for c, s in status_of.items() if s in statuses), reverse=True)

    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"status": "queued,started"}, expected("queued", "started")),
        ({"status": ["error", "complete"]}, expected("error", "complete")),
        ({"status": "incomplete"}, expected("queued", "started")),
        ({"status": "error,queued,complete,started"}, expected(*PATTERN)),
        ({}, expected(*PATTERN)),
    ]
    for extra, want in cases:
        params = {"project": project["id"], "limit": 3, **extra}
        pages = await follow(master, params)
        got = [e["counter"] for page in pages for e in page["results"]]
        assert got == want, extra
        assert pages[0]["count"] == len(want)
        assert all(len(p["results"]) == 3 for p in pages[:-1])
        for page in pages:  # each page mixes what the order gives, never another status
            assert [e["status"] for e in page["results"]] == [
                status_of[e["counter"]] for e in page["results"]
            ]
        # A deep page crossing statuses, asked directly (not reached through `next`).
        offset = len(want) - 4
        deep = (
            await master.api("GET", "/api/v0/executions/", params={**params, "offset": offset})
        ).json()
        assert [e["counter"] for e in deep["results"]] == want[offset : offset + 3]
        assert deep["count"] == len(want) and deep["next"] and deep["previous"]
        past = (
            await master.api("GET", "/api/v0/executions/", params={**params, "offset": 999})
        ).json()
        assert past["results"] == [] and past["count"] == len(want) and past["next"] is None

    ascending = await follow(
        master,
        {"project": project["id"], "limit": 3, "status": "error,queued", "ordering": "counter"},
    )
    got = [e["counter"] for page in ascending for e in page["results"]]
    assert got == sorted(expected("error", "queued"))

    # Queued executions in a list say why they wait, the same as when asked one by one.
    listed = (
        await master.api(
            "GET", "/api/v0/executions/", params={"project": project["id"], "status": "queued"}
        )
    ).json()
    assert listed["count"] == len(expected("queued"))
    for item in listed["results"]:
        alone = await master.execution(item["id"])
        assert item["waiting_reason"] and item["waiting_reason"] == alone["waiting_reason"]
    others = (
        await master.api(
            "GET", "/api/v0/executions/", params={"project": project["id"], "status": "error"}
        )
    ).json()
    assert others["results"] and all("waiting_reason" not in e for e in others["results"])


async def test_counter_filters(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    for _ in range(5):
        await master.submit(project["id"], commit["identifier"])
    params = {"project": project["id"]}
    one = (await master.api("GET", "/api/v0/executions/", params={**params, "counter": "4"})).json()
    assert [e["counter"] for e in one["results"]] == [4] and one["count"] == 1
    some = (
        await master.api(
            "GET", "/api/v0/executions/", params={**params, "counter": "5,2,9", "limit": 1}
        )
    ).json()
    assert [e["counter"] for e in some["results"]] == [5] and some["count"] == 2
    assert some["next"]
    none = (
        await master.api("GET", "/api/v0/executions/", params={**params, "counter": "9"})
    ).json()
    assert none == {"count": 0, "next": None, "previous": None, "results": []}
    bad = await master.api("GET", "/api/v0/executions/", params={**params, "counter": "x"})
    assert bad.status_code == 400 and "counter" in bad.json()["message"].lower()
