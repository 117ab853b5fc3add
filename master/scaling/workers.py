"""The workers registry: every agent that checked in, its state and its current execution.

A worker document is written when its agent checks in (``POST /api/agent/worker``), claims,
heartbeats and reports a final status. Its state is derived: ``gone`` when it has not been seen for
:data:`SEEN_SECONDS`, ``draining`` when an administrator or the scaler asked it to stop taking
work, ``busy`` while it runs an execution, else ``idle``. A draining worker gets no more
executions: :meth:`WorkerRegistry.may_claim` is checked by every claim attempt.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pymongo import ReturnDocument

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.models import STARTED, STOPPING, isoformat

from ..context import Context
from ..store import Doc, as_dt

COLLECTION = "workers"
#: A worker not seen for this long is gone (agents check in at least every claim long poll).
SEEN_SECONDS = 60.0
RUNNING = [STARTED, STOPPING]
_CLEAN = re.compile(r"[^A-Za-z0-9._-]+")

IDLE, BUSY, DRAINING, GONE = "idle", "busy", "draining", "gone"


def agent_id(worker: dict[str, Any] | None) -> str:
    worker = worker or {}
    return _CLEAN.sub("-", str(worker.get("id") or worker.get("name") or "agent"))[:100]


def worker_key(env_id: str, worker: dict[str, Any] | None) -> str:
    return f"{env_id}~{agent_id(worker)}"


def state_of(doc: Doc, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if doc.get("stopped") or float(doc.get("last_seen") or 0) < now - SEEN_SECONDS:
        return GONE
    if doc.get("drain"):
        return DRAINING
    return BUSY if doc.get("execution") else IDLE


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


class WorkerRegistry:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.docs = ctx.store.db[COLLECTION]

    async def setup(self) -> None:
        await self.docs.create_index("environment")

    # --- what agents tell ----------------------------------------------------------------------

    async def check_in(self, env: Doc, worker: Any, idle: bool = True) -> Doc:
        """Record that ``worker`` of ``env`` is alive (and, with ``idle``, runs nothing)."""
        if not isinstance(worker, dict):
            raise InvalidInput(
                "'worker' must be an object {id, name, version}.",
                hint="See docs/agent-protocol.md.",
            )
        key = worker_key(env["_id"], worker)
        now = time.time()
        sets: Doc = {
            "environment": env["_id"],
            "agent_id": agent_id(worker),
            "name": str(worker.get("name") or agent_id(worker))[:200],
            "version": str(worker.get("version") or "")[:50],
            "instance_id": str(worker.get("instance_id") or "")[:200],
            "gpus": _int(worker.get("gpus")),
            "last_seen": now,
            "stopped": False,
        }
        # One round trip for a known worker: the update answers with the document (its drain
        # flag included). A new one is inserted by an upsert of its own: nx-27017's
        # findAndModify ignores $setOnInsert, which the drain and idle fields must get.
        found: Doc | None = await self.docs.find_one_and_update(
            {"_id": key}, {"$set": sets}, return_document=ReturnDocument.AFTER
        )
        if found is None:
            await self.docs.update_one(
                {"_id": key},
                {
                    "$set": sets,
                    "$setOnInsert": {"first_seen": now, "idle_since": now, "drain": False},
                },
                upsert=True,
            )
            found = await self.docs.find_one({"_id": key})
        doc: Doc = found or {"_id": key, **sets}
        if idle and doc.get("execution") is not None:
            # A claiming agent runs nothing: whatever it ran has ended (without its final status).
            await self.docs.update_one(
                {"_id": key, "execution": {"$ne": None}},
                {"$set": {"execution": None, "idle_since": now}},
            )
            doc = {**doc, "execution": None, "idle_since": now}
        return doc

    async def may_claim(self, env: Doc, worker: Any) -> bool:
        doc = await self.docs.find_one({"_id": worker_key(env["_id"], worker)}, {"drain": 1})
        return not (doc and doc.get("drain"))

    async def started(self, env_id: str, worker: Any, execution_id: str) -> None:
        await self.docs.update_one(
            {"_id": worker_key(env_id, worker)},
            {"$set": {"execution": execution_id, "last_seen": time.time()}},
        )

    async def heartbeat(self, env_id: str, worker: Any, execution_id: str) -> None:
        await self.started(env_id, worker, execution_id)

    async def finished(self, env_id: str, worker: Any, execution_id: str) -> None:
        now = time.time()
        await self.docs.update_one(
            {"_id": worker_key(env_id, worker), "execution": execution_id},
            {"$set": {"execution": None, "idle_since": now, "last_seen": now}},
        )

    # --- what administrators and the scaler do -------------------------------------------------

    async def get(self, key: str) -> Doc:
        doc = await self.docs.find_one({"_id": key})
        if not doc:
            raise NotFound(f"No worker {key!r}.", hint="See GET /api/v0/workers/.")
        return doc  # type: ignore[no-any-return]

    async def drain(self, key: str, reason: str) -> Doc:
        """Ask a worker to finish what it runs and claim nothing more."""
        doc = await self.get(key)
        await self.docs.update_one(
            {"_id": key}, {"$set": {"drain": True, "drain_reason": reason, "drain_at": time.time()}}
        )
        # Wake its long poll: the claim sees the drain and answers "nothing" at once.
        await self.ctx.notifier.publish(f"queue:{doc['environment']}")
        return await self.get(key)

    async def undrain(self, key: str) -> Doc:
        await self.get(key)
        await self.docs.update_one(
            {"_id": key}, {"$set": {"drain": False, "drain_reason": "", "idle_since": time.time()}}
        )
        return await self.get(key)

    async def drain_if_idle(self, key: str, reason: str) -> bool:
        """Drain a worker only if it runs nothing now (the scaler's scale-in)."""
        done = await self.docs.find_one_and_update(
            {"_id": key, "execution": None, "drain": {"$ne": True}},
            {"$set": {"drain": True, "drain_reason": reason, "drain_at": time.time()}},
        )
        if done:
            await self.ctx.notifier.publish(f"queue:{done['environment']}")
        return done is not None

    async def mark_stopped(self, key: str) -> None:
        await self.docs.update_one({"_id": key}, {"$set": {"stopped": True}})

    async def running_execution(self, doc: Doc) -> str | None:
        """The execution this worker runs according to the executions themselves."""
        found = await self.ctx.store.executions.find_one(
            {
                "environment": doc["environment"],
                "worker.id": doc.get("agent_id"),
                "status": {"$in": RUNNING},
            },
            {"_id": 1},
        )
        return found["_id"] if found else None

    async def list(self, env_id: str | None = None, include_gone: bool = False) -> list[Doc]:
        query: Doc = {"environment": env_id} if env_id else {}
        if not include_gone:
            query["last_seen"] = {"$gte": time.time() - SEEN_SECONDS}
            query["stopped"] = {"$ne": True}
        return [d async for d in self.docs.find(query).sort("first_seen", 1)]

    async def forget_gone(self, older_than: float = 24 * 3600) -> None:
        await self.docs.delete_many({"last_seen": {"$lt": time.time() - older_than}})

    @staticmethod
    def describe(doc: Doc, env: Doc | None = None) -> dict[str, Any]:
        now = time.time()
        state = state_of(doc, now)
        idle_since = float(doc.get("idle_since") or 0)
        return {
            "id": doc["_id"],
            "name": doc.get("name", ""),
            "environment": {
                "id": doc["environment"],
                "slug": (env or {}).get("slug", ""),
                "name": (env or {}).get("name", ""),
            },
            "state": state,
            "execution": doc.get("execution") if state in (BUSY, DRAINING) else None,
            "version": doc.get("version", ""),
            "instance_id": doc.get("instance_id", ""),
            "gpus": doc.get("gpus", 0),
            "drain": bool(doc.get("drain")),
            "drain_reason": doc.get("drain_reason", ""),
            "first_seen": isoformat(as_dt(doc.get("first_seen"))),
            "last_seen": isoformat(as_dt(doc.get("last_seen"))),
            "idle_seconds": round(now - idle_since, 1) if state == IDLE and idle_since else None,
        }
