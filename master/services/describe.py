"""The JSON shapes of executions and datums, as valohai-cli 0.37 reads them."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from typing import Any

from redis.exceptions import RedisError

from jupyter_valohai.models import (
    INCOMPLETE_STATUSES,
    QUEUED,
    TERMINAL_STATUSES,
    isoformat,
    utcnow,
)

from ..cache import MISSING
from ..context import Context
from ..scaling.reasons import queue_positions, waiting_reason
from ..scaling.workers import WorkerRegistry
from ..store import Doc, as_dt
from .common import seconds_between
from .progress import describe_cells

#: The read cache's namespace of described executions (JSON bytes), keyed by versions.
DESCRIBED = "described-executions"

_encoder = json.JSONEncoder(default=str)


def encode_json(data: Any) -> bytes:
    """``data`` as the API's JSON (what ``json.dumps(data, default=str)`` writes), UTF-8."""
    return _encoder.encode(data).encode("utf-8")


@functools.lru_cache(maxsize=4096)
def _when(value: Any) -> dt.datetime | None:
    return as_dt(value)


@functools.lru_cache(maxsize=4096)
def _stamp(value: Any) -> str | None:
    return isoformat(as_dt(value))


def when(value: Any) -> dt.datetime | None:
    """A stored timestamp as an aware datetime (memoized: a GET formats the same few again and
    again, and parsing them was a tenth of its time)."""
    return _when(value) if isinstance(value, str | dt.datetime) else as_dt(value)


def stamp(value: Any) -> str | None:
    """A stored timestamp in the API's format (memoized, see :func:`when`)."""
    return _stamp(value) if isinstance(value, str | dt.datetime) else isoformat(as_dt(value))


class Describer:
    """Turns documents into API objects; caches the projects, users and environments it looks up."""

    def __init__(self, ctx: Context, base: str) -> None:
        self.ctx = ctx
        self.base = base
        self._cache: dict[tuple[str, str], Doc] = {}
        self._workers: dict[str, list[Doc]] = {}  # environment id -> its live workers
        self._positions: dict[str, int | None] = {}  # queued execution id -> place in its queue
        self._metadata: dict[str, dict[str, Any]] = {}  # execution id -> merged metadata shown

    def know(self, collection: str, doc: Doc) -> None:
        """Describe with ``doc`` (of ``collection``), which the caller has just read."""
        self._cache[(collection, doc["_id"])] = doc

    async def _lookup(self, collection: str, doc_id: str) -> Doc:
        key = (collection, doc_id)
        if key not in self._cache:
            found = await self.ctx.store.by_id(collection, doc_id)  # the process's read cache
            self._cache[key] = found or {"_id": doc_id}
        return self._cache[key]

    async def merged_metadata(self, execution_id: str) -> dict[str, Any]:
        """The execution's metadata entries merged in order (cached; a new entry invalidates)."""

        async def load() -> dict[str, Any]:
            merged: dict[str, Any] = {}
            for entry in await self.metadata_entries(execution_id):
                if isinstance(entry["data"], dict):
                    merged.update(entry["data"])
            return merged

        merged = dict(await self.ctx.store.cache.load("metadata", execution_id, load))
        self._metadata[execution_id] = merged
        return merged

    async def metadata_entries(self, execution_id: str) -> list[dict[str, Any]]:
        cursor = self.ctx.store.metadata.find({"execution": execution_id}).sort("_id", 1)
        return [
            {
                "time": isoformat(as_dt(m.get("time"))),
                "data": m.get("data", {}),
                "metadata": m.get("data", {}),
            }
            async for m in cursor
        ]

    async def executions(self, docs: list[Doc], exclude: set[str] | None = None) -> list[Doc]:
        """Describe a list's page: the queue places of its queued executions in one round trip
        (not one per execution)."""
        queued = [(d["environment"], d["_id"]) for d in docs if d["status"] == QUEUED]
        with contextlib.suppress(RedisError):  # if not, each execution's own lookup says why
            self._positions.update(await queue_positions(self.ctx, queued))
        return [await self.execution(d, exclude) for d in docs]

    # --- one execution as JSON bytes, kept per version of what it is made of --------------------

    def _versions(self, doc: Doc, exclude: set[str], used: bool) -> tuple[Any, ...] | None:
        """The key of an execution's described bytes: the versions (master/cache.py serials) of
        the execution, its project, environment, creator and merged metadata, the link base and
        ``exclude``. With ``used``, the versions of the documents this Describer just described
        it from (each still cached and equal); else of those cached now. ``None``: some are not
        cached, or the description changes by itself (``duration`` and ``waiting_reason`` of an
        unfinished execution)."""
        if doc.get("status") not in TERMINAL_STATUSES:
            return None
        cache = self.ctx.store.cache
        eid = doc["_id"]
        parts: list[Any] = [cache.version("executions", eid, doc)]
        for collection, field in (
            ("projects", "project"),
            ("environments", "environment"),
            ("users", "creator"),
        ):
            ref = str(doc.get(field))
            if used:
                parts.append(cache.version(collection, ref, self._cache.get((collection, ref))))
            else:
                parts.append(cache.serial(collection, ref))
        if "metadata" not in exclude and doc.get("has_metadata", True):
            if used:
                parts.append(cache.version("metadata", eid, self._metadata.get(eid)))
            else:
                parts.append(cache.serial("metadata", eid))
        if None in parts:
            return None
        return (eid, self.base, tuple(sorted(exclude)), *parts)

    async def execution_json(self, doc: Doc, exclude: set[str] | None = None) -> bytes:
        """:meth:`execution` as the UTF-8 JSON an API answer carries; a finished execution's
        bytes are kept for as long as nothing they are made of changes (any write to one of
        those documents gives it a new version, hence a new key)."""
        exclude = exclude or set()
        cache = self.ctx.store.cache
        key = self._versions(doc, exclude, used=False)
        if key is not None and (body := cache.get(DESCRIBED, key)) is not MISSING:
            return body  # type: ignore[no-any-return]
        body = encode_json(await self.execution(doc, exclude))
        key = self._versions(doc, exclude, used=True)
        if key is not None:
            cache.remember(DESCRIBED, key, body)
        return body

    async def execution(self, doc: Doc, exclude: set[str] | None = None) -> dict[str, Any]:
        exclude = exclude or set()
        project = await self._lookup("projects", doc["project"])
        env = await self._lookup("environments", doc["environment"])
        creator = await self._lookup("users", doc["creator"])
        url = f"{self.base}/api/v0/executions/{doc['_id']}/"
        end = when(doc.get("ended_at")) or (
            utcnow() if doc["status"] in INCOMPLETE_STATUSES else None
        )
        out: dict[str, Any] = {
            "id": doc["_id"],
            "counter": doc["counter"],
            "status": doc["status"],
            "step": doc["step"],
            "title": doc.get("title", ""),
            "project": {
                "id": project["_id"],
                "name": project.get("name", ""),
                "owner": project.get("owner"),
                "url": f"{self.base}/api/v0/projects/{project['_id']}/",
            },
            "commit": {
                "identifier": doc["commit"],
                "ref": doc["commit"],
                "adhoc": str(doc["commit"]).startswith("~"),
                "url": f"{self.base}/api/v0/commits/{doc['commit']}/?project={doc['project']}",
            },
            "environment": {
                "id": env["_id"],
                "name": env.get("name", ""),
                "slug": env.get("slug", ""),
            },
            "parameters": doc.get("parameters", {}),
            "inputs": [{"name": n, "urls": u} for n, u in doc.get("inputs", {}).items()],
            "image": doc.get("image", ""),
            "tags": doc.get("tags", []),
            "kind": doc.get("kind", "command"),
            "notebook": doc.get("notebook"),
            "command": "\n".join(doc.get("commands", [])),
            "environment_variables": doc.get("environment_variables", {}),
            "runtime_config": doc.get("runtime_config") or {},
            "priority": doc.get("priority", 0),
            "time_limit": doc.get("time_limit", 0),
            "ctime": stamp(doc["ctime"]),
            "queued_at": stamp(doc.get("queued_at")),
            "started_at": stamp(doc.get("started_at")),
            "ended_at": stamp(doc.get("ended_at")),
            "duration": seconds_between(when(doc.get("started_at")), end),
            "attempt": doc.get("attempt", 0),
            "creator": {"id": creator["_id"], "username": creator.get("username", "")},
            "exit_code": doc.get("exit_code"),
            "status_message": doc.get("message", ""),
            "deleted": bool(doc.get("deleted")),
            "url": url,
            "urls": {
                "display": f"{self.base}/p/{doc['project']}/executions/{doc['counter']}/",
                "stop": f"{url}stop/",
                "events": f"{url}events/",
            },
        }
        out["cells"], out["current_cell"] = describe_cells(doc)
        if doc["status"] == QUEUED:  # why it has not started (docs/worker-groups.md)
            try:
                if env["_id"] not in self._workers:
                    self._workers[env["_id"]] = await WorkerRegistry(self.ctx).list(env["_id"])
                out["waiting_reason"] = await waiting_reason(
                    self.ctx, env, doc, self._workers[env["_id"]], self._positions
                )
            except RedisError:  # derived state away (Redis restarting): the answer stands
                out["waiting_reason"] = "The queue is being rebuilt; it will start shortly."
        if "metadata" not in exclude and not doc.get("has_metadata", True):
            out["metadata"] = {}  # none was ever sent: no lookup (a list is not N+1 queries)
        elif "metadata" not in exclude:
            out["metadata"] = await self.merged_metadata(doc["_id"])
        for key in exclude:
            out.pop(key, None)
        return out

    async def datum(self, doc: Doc) -> dict[str, Any]:
        execution = await self._lookup("executions", doc["output_execution"])
        url = f"{self.base}/api/v0/data/{doc['_id']}/"
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "size": doc["size"],
            "sha256": doc["sha256"],
            "checksums": {"sha256": doc["sha256"]},
            "uri": doc["uri"],
            "metadata": doc.get("metadata") or {},
            "ctime": stamp(doc["ctime"]),
            "project": execution.get("project"),
            "output_execution": {"id": execution["_id"], "counter": execution.get("counter")},
            "url": url,
            "download_url": f"{url}download/",
        }
