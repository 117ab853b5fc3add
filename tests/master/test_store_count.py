"""Store.count and Store.indexed: the same answers as a plain count, by index-friendly queries."""

from __future__ import annotations

import itertools

from master.store import Store


async def test_count_matches_count_documents(mongo_url: str, mongo_db_name: str) -> None:
    store = Store(mongo_url, mongo_db_name)
    await store.setup()
    try:
        statuses = ["queued", "started", "complete", "error"]
        docs = [
            {
                "_id": f"e-{n}",
                "project": f"p-{n % 3}",
                "counter": n,
                "status": statuses[n % 4],
                "deleted": n % 7 == 0,
                "creator": f"u-{n % 2}",
            }
            for n in range(120)
        ]
        await store.executions.insert_many(docs)
        queries = [
            {},
            {"project": "p-1"},
            {"project": "p-1", "deleted": False},
            {"project": "p-2", "deleted": False, "status": {"$in": ["queued", "error"]}},
            {"project": {"$in": ["p-0", "p-2"]}, "status": {"$in": ["complete"]}},
            {"project": "p-0", "counter": {"$in": [3, 6, 9, 12, 99]}},
            {"creator": "u-1", "deleted": True},
            {"project": "nope"},
        ]
        for query in queries:
            expected = sum(
                1
                for d in docs
                if all(
                    d[k] in v["$in"] if isinstance(v, dict) else d[k] == v for k, v in query.items()
                )
            )
            assert await store.count(store.executions, query) == expected, query
            found = [d async for d in store.executions.find(store.indexed(query))]
            assert len(found) == expected, query
        # Too many combinations to split: one count command with the $in lists, same answer.
        many = {"counter": {"$in": list(range(0, 120, 2))}, "status": {"$in": statuses}}
        assert await store.count(store.executions, many, max_split=8) == 60
        assert await store.count(store.executions, many) == 60
        assert list(itertools.islice(store.indexed({"a": 1, "$or": []}).items(), 2)) == [
            ("a", {"$eq": 1}),
            ("$or", []),
        ]
    finally:
        await store.close()
