"""MongoDB persistence: collections, indexes, counters and compare-and-set status changes.

MongoDB is the only source of truth. Nothing here uses transactions or change streams, so the
master works against a standalone server (``nx-27017`` in the embedded default).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import logging
import math
import uuid
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from jupyter_valohai.errors import ServiceUnavailable

from .cache import MISSING, ReadCache, Watch, WatchedCollection

log = logging.getLogger(__name__)

Doc = dict[str, Any]


def as_dt(value: Any) -> dt.datetime | None:
    """Read back a stored timestamp as an aware UTC datetime.

    nx-27017 0.8 returns datetimes written by ``$set``/``$setOnInsert`` as ISO strings; a real
    mongod returns datetimes. Both come out the same here. Lease deadlines, which are queried
    with ``$lt``, are therefore stored as epoch seconds instead (see ``lease_expires``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    else:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


#: How writes to each watched collection invalidate the read cache (see master/cache.py).
WATCHES = {
    "users": Watch("users", ("_id",)),
    "tokens": Watch("tokens", ("hash",)),
    "projects": Watch("projects", ("_id",)),
    "environments": Watch("environments", ("_id",)),
    # the execution lists' counts are computed from these fields (Store.page)
    "executions": Watch(
        "executions",
        ("_id",),
        summaries=("counts",),
        summary_fields=(
            "project",
            "deleted",
            "status",
            "counter",
            "creator",
            "step",
            "environment",
        ),
    ),
    # a metadata entry changes its execution's merged metadata; a membership's absence is kept
    "metadata": Watch("metadata", ("execution",), inserts=True),
    "memberships": Watch("memberships", ("project", "user"), inserts=True),
}


def sort_value(value: Any) -> tuple[int, Any]:
    """A key that orders values as MongoDB sorts them (null first, numbers, then timestamps,
    whether stored as datetimes or ISO strings: see :func:`as_dt`), for merging sorted finds."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    if isinstance(value, dt.datetime | str):
        try:
            stamp = as_dt(value)
        except ValueError:
            return (3, str(value))
        return (2, stamp.timestamp() if stamp else 0)
    return (4, str(value))


def new_id(prefix: str) -> str:
    """Return a new document id such as ``e-3f2a...`` (the prefix tells the kind apart)."""
    return f"{prefix}-{uuid.uuid4().hex}"


class Store:
    """The master's collections; every method is a coroutine on ``AsyncMongoClient``."""

    def __init__(self, url: str, db_name: str, cache_seconds: float = 5.0) -> None:
        self.client: AsyncMongoClient = AsyncMongoClient(
            url, tz_aware=True, serverSelectionTimeoutMS=10_000
        )
        self.db: AsyncDatabase = self.client[db_name]
        # The hot path's documents, read through the cache (master/cache.py): their collections
        # invalidate it on every write.
        self.cache = ReadCache(ttl=cache_seconds)
        self.users: AsyncCollection = self._watched("users")
        self.tokens: AsyncCollection = self._watched("tokens")
        self.projects: AsyncCollection = self._watched("projects")
        self.commits: AsyncCollection = self.db["commits"]
        self.environments: AsyncCollection = self._watched("environments")
        self.executions: AsyncCollection = self._watched("executions")
        self.counters: AsyncCollection = self.db["counters"]
        self.datums: AsyncCollection = self.db["datums"]
        self.uploads: AsyncCollection = self.db["uploads"]
        self.metadata: AsyncCollection = self._watched("metadata")
        self.memberships: AsyncCollection = self._watched("memberships")

    def _watched(self, name: str) -> AsyncCollection:
        return WatchedCollection(self.db, name, self.cache, WATCHES[name])

    async def by_id(self, collection: str, doc_id: Any) -> Doc | None:
        """A document of a watched collection by ``_id``, from the cache when it holds it (a
        copy: callers may change it)."""
        if collection not in WATCHES:  # only a watched collection's writes invalidate
            raise ValueError(f"{collection!r} is not read through the cache")
        if not isinstance(doc_id, str) or not doc_id:
            return None
        doc = self.cache.get(collection, doc_id)  # a hit costs no coroutine
        if doc is MISSING:
            coll: AsyncCollection = getattr(self, collection)
            doc = await self.cache.load(collection, doc_id, lambda: coll.find_one({"_id": doc_id}))
        return dict(doc) if doc is not None else None

    async def token(self, token_hash: str) -> Doc | None:
        """The token record with this hash (a user's or a worker group's), cached by hash."""
        doc = self.cache.get("tokens", token_hash)
        if doc is MISSING:
            doc = await self.cache.load(
                "tokens", token_hash, lambda: self.tokens.find_one({"hash": token_hash})
            )
        return dict(doc) if doc is not None else None

    async def setup(self) -> None:
        """Create the indexes (idempotent); raise :class:`ServiceUnavailable` if Mongo is down."""
        try:
            await self.users.create_index([("username", ASCENDING)], unique=True)
            await self.tokens.create_index([("hash", ASCENDING)], unique=True)
            await self.projects.create_index(
                [("owner", ASCENDING), ("name", ASCENDING)], unique=True
            )
            await self.commits.create_index(
                [("project", ASCENDING), ("identifier", ASCENDING)], unique=True
            )
            await self.environments.create_index([("slug", ASCENDING)], unique=True)
            await self.executions.create_index(
                [("project", ASCENDING), ("counter", ASCENDING)], unique=True
            )
            await self.executions.create_index([("status", ASCENDING)])
            await self.executions.create_index([("ctime", DESCENDING)])
            # Lists and filters (docs/performance.md): every field the execution list matches on
            # has an index of its own, and the usual filters compound ones ending with the list's
            # order, so a page (even a deep one) and a count walk index entries only.
            for field in ("project", "deleted", "creator"):
                await self.executions.create_index([(field, ASCENDING)])
            for fields in (("project", "deleted"), ("project", "deleted", "status")):
                await self.executions.create_index(
                    [*((f, ASCENDING) for f in fields), ("counter", DESCENDING)]
                )
            await self.executions.create_index(  # in-flight limits, the scaler's queue counts
                [("project", ASCENDING), ("status", ASCENDING)]
            )
            await self.executions.create_index([("environment", ASCENDING), ("status", ASCENDING)])
            for field in ("lease_expires", "logs_archived"):  # the reaper's sweeps
                await self.executions.create_index([("status", ASCENDING), (field, ASCENDING)])
            await self.datums.create_index(
                [("output_execution", ASCENDING), ("name", ASCENDING)], unique=True
            )
            await self.uploads.create_index(
                [("execution", ASCENDING), ("attempt", ASCENDING), ("name", ASCENDING)],
                unique=True,
            )
            await self.metadata.create_index([("execution", ASCENDING)])
        except PyMongoError as exc:
            raise ServiceUnavailable(f"MongoDB is not answering: {exc}") from exc

    async def close(self) -> None:
        await self.client.close()

    async def next_counter(self, name: str) -> int:
        """Return the next value of a named counter (1, 2, ...), atomically."""
        doc = await self.counters.find_one_and_update(
            {"_id": name},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upsert=True always returns the document
        return int(doc["value"])

    @staticmethod
    def indexed(query: Doc) -> Doc:
        """``query`` with its top-level equalities spelled ``{"$eq": value}``.

        The same match on any MongoDB; nx-27017 turns an implicit equality into "equal, or an
        array holding it", which no index answers, and ``$eq`` into a plain indexed equality.
        """
        return {
            k: v if k.startswith("$") or isinstance(v, dict | list) else {"$eq": v}
            for k, v in query.items()
        }

    @staticmethod
    def split(query: Doc, max_split: int = 64) -> list[Doc]:
        """``query`` as disjoint queries whose union it is: each ``$in`` of scalars split into
        its values (at most ``max_split`` parts; more, and ``query`` stays one part)."""
        splits = [
            (k, list(dict.fromkeys(v["$in"])))
            for k, v in query.items()
            if isinstance(v, dict)
            and list(v) == ["$in"]
            and isinstance(v["$in"], list)
            and all(isinstance(x, str | int) for x in v["$in"])
        ]
        if math.prod(len(values) for _, values in splits) > max_split:
            splits = []
        return [
            {**query, **{key: value for (key, _), value in zip(splits, combo, strict=True)}}
            for combo in itertools.product(*(values for _, values in splits))
        ]

    async def count(self, collection: AsyncCollection, query: Doc, max_split: int = 64) -> int:
        """Count the documents matching ``query``, by indexes where they can answer.

        Runs the ``count`` command (``count_documents`` is an aggregation, which nx-27017 runs
        over every document) on the :meth:`indexed` query, each ``$in`` of scalars split into a
        sum of ``$eq`` counts (an ``$in`` makes nx-27017 scan): the same count on any MongoDB.
        """
        total = 0
        for part in self.split(query, max_split):
            total += await self._count(collection, part)
        return total

    async def _count(self, collection: AsyncCollection, query: Doc, cached: bool = False) -> int:
        async def ask() -> int:
            answer = await self.db.command({"count": collection.name, "query": self.indexed(query)})
            return int(answer.get("n", 0))

        watch = WATCHES.get(collection.name)
        if (
            cached
            and watch
            and "counts" in watch.summaries
            and set(query) <= set(watch.summary_fields)
        ):  # kept until a write may change it (master/cache.py): no stale count
            key = json.dumps([collection.name, query], sort_keys=True, default=str)
            return int(await self.cache.load("counts", key, ask))
        return await ask()

    async def page(
        self,
        collection: AsyncCollection,
        query: Doc,
        key: str,
        direction: int,
        offset: int,
        limit: int,
        max_split: int = 64,
    ) -> tuple[list[Doc], int]:
        """Documents ``offset .. offset + limit`` of ``query`` sorted by ``key``, and the count.

        The same answer as ``find(query).sort(key, direction).skip(offset).limit(limit)`` plus
        a count, asked so that indexes answer (docs/performance.md): an ``$in`` of scalars,
        which nx-27017 answers by scanning, becomes one indexed find per value (:meth:`split`),
        each sorted and cut at ``offset + limit``, merged here. The count is asked only when
        the page does not tell it: a page ending short of ``limit`` ends the list; and kept in
        the read cache (``counts``), which every write that may change one drops.
        ``limit`` 0 is no limit, as pymongo's.
        """
        parts = self.split(query, max_split)
        if len(parts) == 1:
            cursor = collection.find(self.indexed(parts[0])).sort(key, direction)
            docs = [d async for d in cursor.skip(offset).limit(limit)]
            if (limit <= 0 or len(docs) < limit) and (docs or offset == 0):
                return docs, offset + len(docs)  # the list ends on this page
            return docs, await self._count(collection, parts[0], cached=True)
        window = offset + limit if limit > 0 else 0  # 0: no limit, as pymongo's
        found: list[list[Doc]] = []
        total = 0
        for part in parts:
            cursor = collection.find(self.indexed(part)).sort(key, direction).limit(window)
            docs = [d async for d in cursor]
            found.append(docs)
            complete = window == 0 or len(docs) < window
            total += len(docs) if complete else await self._count(collection, part, True)
        merged = heapq.merge(*found, key=lambda d: sort_value(d.get(key)), reverse=direction < 0)
        return list(itertools.islice(merged, offset, window or None)), total

    async def count_log_events(self, execution_id: str, n: int) -> int:
        """Add ``n`` to an execution's count of log events; return the count before."""
        doc = await self.executions.find_one_and_update(
            {"_id": execution_id},
            {"$inc": {"log_events": n}},
            projection={"log_events": 1},
            return_document=ReturnDocument.BEFORE,
        )
        return int((doc or {}).get("log_events") or 0)

    async def cas_execution(
        self,
        execution_id: str,
        statuses: str | list[str],
        attempt: int | None,
        update: Doc,
        match: Doc | None = None,
    ) -> Doc | None:
        """Apply ``update`` only if the execution is in one of ``statuses`` (and at ``attempt``,
        and matches ``match``).

        Returns the updated document, or ``None`` when someone else changed it first.
        """
        query: Doc = {**(match or {}), "_id": execution_id}
        query["status"] = statuses if isinstance(statuses, str) else {"$in": list(statuses)}
        if attempt is not None:
            query["attempt"] = attempt
        result: Doc | None = await self.executions.find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )
        return result
