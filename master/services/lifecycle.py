"""Status changes of executions: every one is a compare-and-set, logged as a status event and
announced on the project's feed (:mod:`master.feed`).

Terminal statuses also move the execution's log events from Redis to the artifact store.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import PyMongoError

from jupyter_valohai.models import QUEUED, TERMINAL_STATUSES, isoformat, utcnow

from ..context import Context
from ..store import Doc, as_dt
from .secrets import Masker

log = logging.getLogger(__name__)


def counter_key(project_id: str) -> str:
    """The project's counter document: execution numbers and the in-flight gauge."""
    return f"executions:{project_id}"


def history_entry(status: str, attempt: int | None) -> str:
    """One entry of an execution's status history, pushed in the same CAS as the change:
    ``"<status> <attempt or -> <time>"`` (a string: nx-27017 mangles pushed sub-documents)."""
    return f"{status} {'-' if attempt is None else attempt} {isoformat(utcnow())}"


class Lifecycle:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def enqueue(self, execution: Doc, notify: bool = True) -> None:
        """Put a ``queued`` execution on its environment's Redis queue (idempotent)."""
        ctime = as_dt(execution.get("queued_at")) or as_dt(execution["ctime"]) or utcnow()
        await self.ctx.queues.push(
            execution["environment"],
            execution["_id"],
            int(execution.get("priority") or 0),
            ctime.timestamp(),
            notify=notify,
        )

    async def transition(
        self,
        execution_id: str,
        from_statuses: str | list[str],
        attempt: int | None,
        to_status: str,
        message: str,
        sets: dict[str, Any] | None = None,
        unsets: list[str] | None = None,
        match: dict[str, Any] | None = None,
    ) -> Doc | None:
        """CAS the execution from one of ``from_statuses`` (at ``attempt``, matching ``match``)
        to ``to_status``.

        Returns the updated execution, or ``None`` if it was not in that state any more.
        """
        now = utcnow()
        update: dict[str, Any] = {"$set": {"status": to_status, "mtime": now, **(sets or {})}}
        if to_status in TERMINAL_STATUSES:
            update["$set"]["ended_at"] = now
        if to_status == QUEUED:
            update["$set"]["queued_at"] = now
        if unsets:
            update["$unset"] = {key: "" for key in unsets}
        update["$push"] = {"history": history_entry(to_status, attempt)}
        update["$inc"] = {"log_events": 1}  # the status event below, counted in the same write
        doc = await self.ctx.store.cas_execution(
            execution_id, from_statuses, attempt, update, match
        )
        if doc is None:
            return None
        if to_status in TERMINAL_STATUSES:
            await self.release(doc)
        await self.ctx.logs.status(
            execution_id, message, before=int(doc.get("log_events") or 1) - 1
        )
        await self.ctx.feed.changed(doc["project"], execution_id)
        if to_status in TERMINAL_STATUSES:
            await self.finish(doc)
        return doc

    async def release(self, execution: Doc) -> None:
        """One unfinished execution fewer in its project's in-flight gauge (never below 0; a
        missing gauge stays missing). A failure only leaves the gauge high: the next submit
        near the limit counts exactly and sets it right."""
        try:
            await self.ctx.store.counters.update_one(
                {"_id": counter_key(execution["project"]), "in_flight": {"$gt": 0}},
                {"$inc": {"in_flight": -1}},
            )
        except PyMongoError as exc:
            log.warning("in-flight gauge of %s not lowered: %s", execution["project"], exc)

    async def finish(self, execution: Doc) -> None:
        """Archive a finished execution's logs (safe to repeat)."""
        carry = self.ctx.secrets.open_carry(execution) if execution.get("mask_carry") else {}
        if carry:  # output held back in case it began a secret: it ends here, masked
            await self.ctx.store.executions.update_one(
                {"_id": execution["_id"]}, {"$unset": {"mask_carry": ""}}
            )
            await self.ctx.logs.append(execution["_id"], Masker.flush(carry))
        try:
            written = execution.get("log_events")
            await self.ctx.logs.archive(
                execution["_id"], int(written) if isinstance(written, int) else None
            )
        except Exception:  # the reaper's sweep retries executions whose logs are not archived
            log.exception("could not archive the logs of %s", execution["_id"])
            return
        await self.ctx.store.executions.update_one(
            {"_id": execution["_id"]}, {"$set": {"logs_archived": True}}
        )
