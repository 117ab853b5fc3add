"""The execution lists' counts are kept in the read cache (``counts``) and never served stale:
every write that may change a count drops them, in this master at once and in the others over
Redis; writes that cannot (log event counts, leases) keep them.

The two-master test gives the cache an hour of TTL, so only an invalidation explains a change.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mastertest import MasterClient

from master.cache import MISSING, ReadCache, updated_fields


async def count(master: MasterClient, project: str, **params: Any) -> int:
    """The list's count, asked with a page of one (a full page: the count is asked, not seen)."""
    resp = await master.api(
        "GET", "/api/v0/executions/", params={"project": project, "limit": 1, **params}
    )
    assert resp.status_code == 200, resp.text
    return int(resp.json()["count"])


def counts_cached(master: MasterClient) -> int:
    space = master.master.ctx.store.cache._spaces.get("counts") or {}
    return len(space)


async def test_counts_follow_every_write_at_once(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    pid = project["id"]
    ids = [(await master.submit(pid, commit["identifier"]))["id"] for _ in range(3)]
    assert await count(master, pid) == 3
    assert await count(master, pid, status="queued,started") == 3
    assert counts_cached(master) >= 2  # (queued) and (started) of the filter, and the total
    store = master.master.ctx.store

    # Writes that cannot change a count keep them.
    await store.count_log_events(ids[0], 5)
    await store.executions.update_one({"_id": ids[0]}, {"$set": {"lease_expires": 1.0}})
    assert counts_cached(master) >= 2

    # A new execution, a status change, a deletion flag: counted at once.
    await master.submit(pid, commit["identifier"])
    assert await count(master, pid) == 4
    assert (await master.api("POST", f"/api/v0/executions/{ids[1]}/stop/")).status_code == 200
    assert await count(master, pid, status="queued") == 3
    assert await count(master, pid, status="stopped") == 1
    await store.executions.update_one({"_id": ids[2]}, {"$set": {"deleted": True}})
    assert await count(master, pid) == 3
    assert await count(master, pid, deleted="true") == 1
    await store.executions.update_one(
        {"_id": ids[0]}, {"$set": {"notes": "x"}, "$unset": {"status": ""}}
    )
    assert await count(master, pid, status="queued") == 1
    await store.executions.delete_one({"_id": ids[0]})
    assert await count(master, pid) == 2


async def test_counts_follow_writes_in_another_master(
    master_pair: tuple[MasterClient, MasterClient],
) -> None:
    a, b = master_pair
    project, commit = await a.setup_commit()
    pid = project["id"]
    first = await a.submit(pid, commit["identifier"])
    await a.submit(pid, commit["identifier"])
    assert await count(b, pid) == 2 and await count(b, pid, status="queued") == 2
    assert counts_cached(b)

    async def b_counts(expected: int, **params: Any) -> None:
        deadline = asyncio.get_running_loop().time() + 10
        while await count(b, pid, **params) != expected:
            assert asyncio.get_running_loop().time() < deadline, f"b kept a stale count {params}"
            await asyncio.sleep(0.01)

    await a.submit(pid, commit["identifier"])
    await b_counts(3)
    assert (await a.api("POST", f"/api/v0/executions/{first['id']}/stop/")).status_code == 200
    await b_counts(2, status="queued")


async def test_summaries_drop_whole_and_travel_in_the_message() -> None:
    cache, other = ReadCache(ttl=60), ReadCache(ttl=60)
    sent: list[str] = []

    async def publish(message: str) -> None:
        sent.append(message)

    cache.publisher = publish
    for c in (cache, other):
        c.set_live(True)

        async def three() -> int:
            return 3

        await c.load("counts", "k", three)
        assert c.get("counts", "k") == 3
    await cache.invalidate("executions", ["e-1"], ["counts"])
    assert cache.get("counts", "k") is MISSING
    other.received(sent[-1])
    assert other.get("counts", "k") is MISSING
    # updates name the fields they may change; anything else may change any
    assert updated_fields({"$set": {"status": "x", "a.b": 1}, "$inc": {"n": 1}}) == {
        "status",
        "a",
        "n",
    }
    assert updated_fields({"$rename": {"a": "b"}}) is None
    assert updated_fields([{"$set": {"a": 1}}]) is None
    assert updated_fields({"status": "replaced"}) is None
