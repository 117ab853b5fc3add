"""A per-process read cache of the documents every API request reads, kept correct by the writes.

Authenticating a token, checking a membership and describing an execution read the token, the
user, the project, the membership, the environment and the execution: on nx-27017 (one command
at a time, 1-3 ms each) those round trips were the whole cost of a GET (docs/performance.md).
Here they are read once per process and kept until something changes them:

- Every write through the :class:`~master.store.Store`'s collections passes a
  :class:`WatchedCollection`, which drops the entries the write may have changed from this
  process's cache as soon as the write returns (before the writer does anything else), and
  publishes the same invalidation on Redis (the notifier's ``cache`` topic) so every other
  master process drops them too.
- A read fills the cache only if no invalidation of its namespace happened while it was in
  flight (namespace epochs): a read racing a write never stores what the write replaced.
- The cache serves only while this process's pub/sub subscription is live; it is emptied when
  the subscription drops or comes back (invalidations may have been missed meanwhile).
- Entries expire after ``ttl`` seconds anyway (a safety net for writes from outside the master),
  and each namespace keeps at most ``size`` entries, least recently used out first.

Keys are document ids, a token's SHA-256 (never the token) and ``project user`` for memberships.
A collection may also feed *summaries*: values computed over many of its documents (the execution
lists' counts), dropped whole by every insert, delete or replace, and by every update that may
change one of the fields they are computed from (``Watch.summary_fields``).
Readers get shallow copies: a caller changing its document never changes the cache.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

log = logging.getLogger(__name__)

#: The notifier topic (``vh:notify:cache``) invalidations travel on between master processes.
TOPIC = "cache"

Loader = Callable[[], Awaitable[Any]]


class _Missing:
    pass


MISSING: Any = _Missing()


class ReadCache:
    """Namespaced LRU entries with a TTL, epochs against racing writes, Redis invalidation."""

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self.live = False  # the pub/sub subscription is up: see set_live
        self.origin = uuid.uuid4().hex  # this process's own messages come back: skip them
        self.publisher: Callable[[str], Awaitable[Any]] | None = None
        self._spaces: dict[str, OrderedDict[Any, tuple[float, Any, int]]] = {}
        self._epochs: dict[str, int] = {}
        self._serials = itertools.count(1)  # each entry's version: never reused in a process

    # --- reads -----------------------------------------------------------------------------------

    def _entry(self, namespace: str, key: Any) -> tuple[float, Any, int] | None:
        space = self._spaces.get(namespace)
        if space is None or not self.live:
            return None
        entry = space.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del space[key]
            return None
        space.move_to_end(key)
        return entry

    def get(self, namespace: str, key: Any) -> Any:
        """The cached value, or :data:`MISSING`."""
        entry = self._entry(namespace, key)
        return MISSING if entry is None else entry[1]

    def serial(self, namespace: str, key: Any) -> int | None:
        """The version of the entry cached for ``key`` (``None``: none is): a number no other
        entry of this process ever had, so it names this exact content."""
        entry = self._entry(namespace, key)
        return None if entry is None else entry[2]

    def version(self, namespace: str, key: Any, value: Any) -> int | None:
        """The entry's :meth:`serial` if it holds a value equal to ``value``, else ``None``."""
        entry = self._entry(namespace, key)
        return entry[2] if entry is not None and entry[1] == value else None

    def remember(self, namespace: str, key: Any, value: Any) -> None:
        """Keep a value derived from versioned entries, its key naming their versions (see
        :meth:`serial`): it needs no invalidation, a change makes new versions and a new key."""
        if self.ttl > 0 and self.live:
            self._put(namespace, key, value)

    def _put(self, namespace: str, key: Any, value: Any) -> None:
        space = self._spaces.setdefault(namespace, OrderedDict())
        space[key] = (time.monotonic() + self.ttl, value, next(self._serials))
        space.move_to_end(key)
        if len(space) > self.size:
            space.popitem(last=False)

    async def load(self, namespace: str, key: Any, loader: Loader, keep_none: bool = False) -> Any:
        """The cached value, else ``await loader()`` (kept unless a write came meanwhile).

        ``None`` (nothing found) is kept only with ``keep_none``: a namespace that keeps
        absences must be invalidated by the inserts that end them.
        """
        value = self.get(namespace, key)
        if value is not MISSING:
            return value
        epoch = self._epochs.setdefault(namespace, 0)
        value = await loader()
        if (
            self.ttl > 0
            and self.live
            and self._epochs[namespace] == epoch
            and (value is not None or keep_none)
        ):
            self._put(namespace, key, value)
        return value

    # --- invalidation ----------------------------------------------------------------------------

    def forget(self, namespace: str, keys: Iterable[Any] | None) -> None:
        """Drop ``keys`` (``None``: every entry) of a namespace in this process, at once."""
        self._epochs[namespace] = self._epochs.get(namespace, 0) + 1
        space = self._spaces.get(namespace)
        if space is None:
            return
        if keys is None:
            space.clear()
        else:
            for key in keys:
                space.pop(key, None)

    async def invalidate(
        self, namespace: str, keys: Iterable[Any] | None, drop: Iterable[str] = ()
    ) -> None:
        """Drop entries here and tell the other master processes to drop them too (and the
        namespaces ``drop`` whole, in the same message)."""
        keys = None if keys is None else list(keys)
        drop = list(drop)
        self.forget(namespace, keys)
        for whole in drop:
            self.forget(whole, None)
        if self.publisher is None:
            return
        message = json.dumps(
            {"origin": self.origin, "ns": namespace, "keys": keys, "drop": drop}, default=str
        )
        try:
            await self.publisher(message)
        except Exception as exc:  # the write stands; other processes rely on the TTL
            log.warning("could not publish a cache invalidation (%s): %s", namespace, exc)

    def received(self, data: Any) -> None:
        """An invalidation published by a master process (the notifier calls this)."""
        try:
            message = json.loads(data)
            namespace, keys = str(message["ns"]), message.get("keys")
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed cache invalidation: %r", data)
            return
        if message.get("origin") != self.origin:
            self.forget(namespace, keys if isinstance(keys, list) else None)
            drop = message.get("drop")
            for whole in drop if isinstance(drop, list) else []:
                self.forget(str(whole), None)

    def set_live(self, live: bool) -> None:
        """The subscription came up or went down: start empty either way."""
        self.live = live
        for namespace in list(self._epochs):
            self._epochs[namespace] += 1
        self._spaces.clear()


@dataclass(frozen=True)
class Watch:
    """How writes to one collection invalidate one namespace: the key is made of ``fields``
    (read from the write's filter, or from inserted documents when ``inserts`` matter)."""

    namespace: str
    fields: tuple[str, ...]
    inserts: bool = False  # the namespace keeps absences, or derives from inserted documents
    summaries: tuple[str, ...] = ()  # namespaces computed over many documents (counts)
    summary_fields: tuple[str, ...] = ()  # the fields they are computed from


def updated_fields(update: Any) -> set[str] | None:
    """The top-level fields an update document may change; ``None``: any (a pipeline, a
    replacement or an operator that moves fields)."""
    if not isinstance(update, dict) or not update:
        return None
    fields: set[str] = set()
    for op, spec in update.items():
        if not op.startswith("$") or op == "$rename" or not isinstance(spec, dict):
            return None
        fields.update(str(path).split(".", 1)[0] for path in spec)
    return fields


def _scalars(value: Any) -> list[Any] | None:
    """The values a filter condition pins (``v``, ``{"$eq": v}``, ``{"$in": [...]}``), or
    ``None`` when it pins none."""
    if isinstance(value, dict):
        if list(value) == ["$eq"]:
            return _scalars(value["$eq"])
        if list(value) == ["$in"] and isinstance(value["$in"], list):
            found = [_scalars(v) for v in value["$in"]]
            return None if any(f is None for f in found) else [v for f in found for v in f or []]
        return None
    if isinstance(value, list):
        return None
    return [value]


def cache_key(fields: tuple[str, ...], doc: Any) -> list[Any] | None:
    """The cache keys a filter or document names for ``fields``; ``None``: it names none."""
    if not isinstance(doc, dict):
        return None
    parts = []
    for field in fields:
        values = _scalars(doc[field]) if field in doc else None
        if values is None:
            return None
        parts.append([str(v) for v in values])
    return [" ".join(combo) for combo in itertools.product(*parts)]


class WatchedCollection(AsyncCollection):  # type: ignore[type-arg]
    """A collection whose writes invalidate the :class:`ReadCache` (here and, by Redis, in every
    other master process) as soon as they return, failed or not (a failed write may have
    been applied)."""

    def __init__(self, database: Any, name: str, cache: ReadCache, watch: Watch) -> None:
        super().__init__(database, name)
        self._cache = cache
        self._watch = watch

    async def _written(self, docs: Iterable[Any], update: Any = None) -> None:
        """Invalidate what writing ``docs`` (filters or documents) may have changed; an
        ``update`` document drops the summaries only if it may change their fields."""
        keys: list[Any] | None = []
        for doc in docs:
            found = cache_key(self._watch.fields, doc)
            if found is None:
                keys = None
                break
            keys.extend(found)  # type: ignore[union-attr]
        drop = self._watch.summaries
        if drop and update is not None:
            fields = updated_fields(update)
            if fields is not None and not fields & set(self._watch.summary_fields):
                drop = ()
        await self._cache.invalidate(self._watch.namespace, keys, drop)

    async def _filtered(
        self, method: Callable[..., Awaitable[Any]], query: Any, *a: Any, **kw: Any
    ) -> Any:
        try:
            return await method(query, *a, **kw)
        finally:
            await self._written([query])

    async def _updated(
        self, method: Callable[..., Awaitable[Any]], query: Any, *a: Any, **kw: Any
    ) -> Any:
        # an upsert may insert: the summaries go whatever the update changes
        update = None if kw.get("upsert") else a[0] if a else kw.get("update")
        try:
            return await method(query, *a, **kw)
        finally:
            await self._written([query], update)

    async def update_one(self, filter: Any, *a: Any, **kw: Any) -> Any:
        return await self._updated(super().update_one, filter, *a, **kw)

    async def update_many(self, filter: Any, *a: Any, **kw: Any) -> Any:
        return await self._updated(super().update_many, filter, *a, **kw)

    async def delete_one(self, filter: Any, *a: Any, **kw: Any) -> Any:
        return await self._filtered(super().delete_one, filter, *a, **kw)

    async def delete_many(self, filter: Any, *a: Any, **kw: Any) -> Any:
        return await self._filtered(super().delete_many, filter, *a, **kw)

    async def find_one_and_update(self, filter: Any, *a: Any, **kw: Any) -> Any:
        return await self._updated(super().find_one_and_update, filter, *a, **kw)

    async def find_one_and_delete(self, filter: Any, *a: Any, **kw: Any) -> Any:
        return await self._filtered(super().find_one_and_delete, filter, *a, **kw)

    async def find_one_and_replace(self, filter: Any, replacement: Any, *a: Any, **kw: Any) -> Any:
        try:
            return await super().find_one_and_replace(filter, replacement, *a, **kw)
        finally:
            await self._written([filter, replacement])

    async def replace_one(self, filter: Any, replacement: Any, *a: Any, **kw: Any) -> Any:
        try:
            return await super().replace_one(filter, replacement, *a, **kw)
        finally:
            await self._written([filter, replacement])

    async def insert_one(self, document: Any, *a: Any, **kw: Any) -> Any:
        try:
            return await super().insert_one(document, *a, **kw)
        finally:
            if self._watch.inserts:
                await self._written([document])
            elif self._watch.summaries:
                await self._cache.invalidate(self._watch.namespace, [], self._watch.summaries)

    async def insert_many(self, documents: Any, *a: Any, **kw: Any) -> Any:
        documents = list(documents)
        try:
            return await super().insert_many(documents, *a, **kw)
        finally:
            if self._watch.inserts:
                await self._written(documents)
            elif self._watch.summaries:
                await self._cache.invalidate(self._watch.namespace, [], self._watch.summaries)

    async def bulk_write(self, *a: Any, **kw: Any) -> Any:
        try:
            return await super().bulk_write(*a, **kw)
        finally:
            await self._cache.invalidate(self._watch.namespace, None, self._watch.summaries)

    async def drop(self, *a: Any, **kw: Any) -> None:
        try:
            await super().drop(*a, **kw)
        finally:
            await self._cache.invalidate(self._watch.namespace, None, self._watch.summaries)
