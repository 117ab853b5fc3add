"""Store.page: exactly the page and count of a plain find().sort().skip().limit(), asked by index.

Queries with ``$in`` lists (several statuses, projects or counters) become one find per value,
merged; a deep page crossing statuses must hold the same documents, in the same order, as the
reference computed here from every document.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from master.store import Store, sort_value

STATUSES = ["queued", "started", "complete", "error", "stopped"]
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    return all(
        doc.get(k) in v["$in"] if isinstance(v, dict) else doc.get(k) == v for k, v in query.items()
    )


def reference(
    docs: list[dict[str, Any]], query: dict[str, Any], key: str, direction: int
) -> list[dict[str, Any]]:
    found = [d for d in docs if matches(d, query)]
    # Counters are unique per project and ctimes unique here, so the order is total.
    return sorted(found, key=lambda d: sort_value(d[key]), reverse=direction < 0)


@pytest.fixture
async def store(mongo_url: str, mongo_db_name: str) -> Any:
    store = Store(mongo_url, mongo_db_name)
    await store.setup()
    yield store
    await store.close()


async def test_page_matches_a_plain_sorted_find(store: Store) -> None:
    rng = random.Random(7)
    docs = [
        {
            "_id": f"e-{n:03d}",
            "project": "p-1" if n % 5 else "p-2",
            "counter": n,
            "status": rng.choice(STATUSES),
            "deleted": n % 11 == 0,
            "ctime": BASE + dt.timedelta(seconds=n * 7 % 173),  # not the counter's order
        }
        for n in range(1, 174)
    ]
    await store.executions.insert_many([dict(d) for d in docs])
    queries: list[dict[str, Any]] = [
        {"project": "p-1", "deleted": False},
        {"project": "p-1", "deleted": False, "status": "error"},
        {"project": "p-1", "deleted": False, "status": {"$in": ["queued", "started"]}},
        {"project": "p-1", "deleted": False, "status": {"$in": STATUSES[1:]}},
        {"project": {"$in": ["p-1", "p-2"]}, "deleted": False, "status": {"$in": ["error"]}},
        {"project": "p-1", "counter": {"$in": [3, 4, 6, 9, 150, 999]}},
        {"project": "p-1", "status": {"$in": ["started", "nothing"]}},
        {"project": "nope", "deleted": False},
    ]
    for query in queries:
        for key, direction in (("counter", -1), ("counter", 1), ("ctime", -1)):
            expected = reference(docs, query, key, direction)
            for offset, limit in ((0, 1), (0, 7), (5, 10), (20, 25), (len(expected) - 3, 10)):
                offset = max(offset, 0)
                page, count = await store.page(
                    store.executions, query, key, direction, offset, limit
                )
                want = [d["_id"] for d in expected[offset : offset + limit]]
                assert [d["_id"] for d in page] == want, (query, key, direction, offset, limit)
                assert count == len(expected), (query, offset, limit)
            for offset in (0, 4):  # limit 0: no limit, as pymongo's
                page, count = await store.page(store.executions, query, key, direction, offset, 0)
                assert [d["_id"] for d in page] == [d["_id"] for d in expected[offset:]], query
                assert count == len(expected)
            # Past the end: no documents, and still the full count.
            page, count = await store.page(
                store.executions, query, key, direction, len(expected) + 5, 10
            )
            assert page == [] and count == len(expected)


async def test_deep_page_crossing_statuses(store: Store) -> None:
    """Statuses alternate in runs, so every page of a two-status filter mixes both."""
    docs = [
        {
            "_id": f"e-{n:03d}",
            "project": "p-1",
            "counter": n,
            "status": "queued" if (n // 3) % 2 else "error",
            "deleted": False,
            "ctime": BASE + dt.timedelta(seconds=n),
        }
        for n in range(1, 121)
    ]
    docs += [
        dict(d, _id=f"x-{d['_id']}", status="complete", counter=d["counter"] + 1000)
        for d in docs[:30]
    ]
    await store.executions.insert_many([dict(d) for d in docs])
    query = {"project": "p-1", "deleted": False, "status": {"$in": ["error", "queued"]}}
    expected = reference(docs, query, "counter", -1)
    assert len(expected) == 120
    seen: list[str] = []
    for offset in range(0, 130, 9):  # every page, as a client following `next` reads them
        page, count = await store.page(store.executions, query, "counter", -1, offset, 9)
        assert count == 120
        assert [d["_id"] for d in page] == [d["_id"] for d in expected[offset : offset + 9]]
        assert {d["status"] for d in page} <= {"error", "queued"}
        if 0 < offset < 110:
            assert {d["status"] for d in page} == {"error", "queued"}
        seen += [d["_id"] for d in page]
    assert seen == [d["_id"] for d in expected]


def test_split_and_sort_value() -> None:
    query = {"a": {"$in": [1, 2, 2]}, "b": {"$in": ["x", "y"]}, "c": 3}
    assert Store.split(query) == [
        {"a": 1, "b": "x", "c": 3},
        {"a": 1, "b": "y", "c": 3},
        {"a": 2, "b": "x", "c": 3},
        {"a": 2, "b": "y", "c": 3},
    ]
    assert Store.split(query, max_split=3) == [query]
    assert Store.split({"a": {"$in": [{"x": 1}]}}) == [{"a": {"$in": [{"x": 1}]}}]
    stamp = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    assert sort_value(stamp) == sort_value("2026-01-01T12:00:00+00:00")
    assert sort_value(None) < sort_value(-5) < sort_value(stamp)
