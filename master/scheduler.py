"""Background loops: the reaper (lapsed leases) and the queue reconciler (Mongo -> Redis)."""

from __future__ import annotations

import asyncio
import logging
import time

from jupyter_valohai.models import (
    CRASHED,
    QUEUED,
    STARTED,
    STOPPED,
    STOPPING,
    TERMINAL_STATUSES,
    utcnow,
)

from .context import Context
from .services.lifecycle import Lifecycle
from .store import Doc, as_dt

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, ctx: Context, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle

    async def reap(self) -> int:
        """Handle every running execution whose lease lapsed; return how many changed."""
        changed = 0
        # One indexed query per status (Store.indexed): an $in over statuses makes nx-27017 scan
        # every execution, seconds at 100,000 of them, on every sweep.
        store, now = self.ctx.store, time.time()
        for status in (STARTED, STOPPING):
            cursor = store.executions.find(
                store.indexed({"status": status, "lease_expires": {"$lt": now}})
            )
            for doc in [d async for d in cursor]:
                if await self._reap_one(doc):
                    changed += 1
        # Terminal executions whose logs could not be archived earlier get another try.
        for status in sorted(TERMINAL_STATUSES):
            query = store.indexed({"status": status, "logs_archived": False})
            for doc in [d async for d in store.executions.find(query)]:
                await self.lifecycle.finish(doc)
        return changed

    async def _reap_one(self, doc: Doc) -> bool:
        attempt = doc.get("attempt", 0)
        unsets = ["lease_expires"]
        if doc["status"] == STOPPING:
            return (
                await self.lifecycle.transition(
                    doc["_id"],
                    STOPPING,
                    attempt,
                    STOPPED,
                    f"Execution stopped (the agent of attempt {attempt} stopped answering)",
                    unsets=unsets,
                )
                is not None
            )
        if attempt < self.ctx.config.max_attempts:
            requeued = await self.lifecycle.transition(
                doc["_id"],
                STARTED,
                attempt,
                QUEUED,
                f"Lease of attempt {attempt} lapsed; execution queued again",
                unsets=unsets,
            )
            if requeued:
                await self.lifecycle.enqueue(requeued)
            return requeued is not None
        return (
            await self.lifecycle.transition(
                doc["_id"],
                STARTED,
                attempt,
                CRASHED,
                f"Execution crashed: the lease of attempt {attempt} lapsed and no retries are left",
                unsets=unsets,
            )
            is not None
        )

    async def reconcile(self) -> int:
        """Add every ``queued`` execution to its Redis queue (no-op for those already there).

        An environment whose queue holds as many executions as MongoDB has queued in it is
        skipped: reading every queued execution held nx-27017 (one command at a time) for ~0.5 s
        per 2,000 of them on every pass, and every request waited behind it. A queue that lost
        entries (Redis restarted, a master died between insert and push) differs in length; one
        that also holds a stale entry (a popped one is dropped by its claim) differs as soon as
        that entry is claimed.
        """
        added = 0
        environments: set[str] = set()
        store = self.ctx.store
        async for env in store.environments.find({}, {"_id": 1}):
            env_id = env["_id"]
            queued = {"environment": env_id, "status": QUEUED}
            if await store.count(store.executions, queued) == await self.ctx.queues.length(env_id):
                continue
            fields = {"environment": 1, "priority": 1, "queued_at": 1, "ctime": 1}
            async for doc in store.executions.find(store.indexed(queued), fields):
                if await self.ctx.queues.push(
                    doc["environment"],
                    doc["_id"],
                    int(doc.get("priority") or 0),
                    (as_dt(doc.get("queued_at")) or as_dt(doc["ctime"]) or utcnow()).timestamp(),
                    notify=False,
                ):
                    added += 1
                environments.add(doc["environment"])
        for env_id in environments:
            await self.ctx.notifier.publish(f"queue:{env_id}")
        if added:
            log.info("reconcile: re-added %d queued execution(s) to Redis", added)
        return added

    async def run_reaper(self) -> None:
        while True:
            try:
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reaper pass failed")
            await asyncio.sleep(self.ctx.config.reaper_interval)

    async def run_reconciler(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.config.reconcile_interval)
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue reconcile failed")
