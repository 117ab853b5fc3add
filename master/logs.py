"""Execution log events: live in a Redis stream, archived to the artifact store when finished.

Readers never need to know which: :meth:`LogService.read` takes Redis while the execution is live
and ``logs/<execution id>.jsonl.gz`` afterwards. Each batch appended publishes a notification so
pushed viewers (server-sent events) wake up, whichever master replica they are connected to.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from jupyter_valohai.errors import NotFound
from jupyter_valohai.models import isoformat, utcnow
from jupyter_valohai.stores import ArtifactStore

from .queue import PREFIX, Notifier, channel

log = logging.getLogger(__name__)

Event = dict[str, Any]

#: Control characters (CR, LF, ANSI escapes...) that must not reach a one-line field verbatim.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def neutralize(text: str) -> str:
    """Return ``text`` as one inert line: control characters become ``\\xNN`` escapes, so a
    value cannot forge a second log line or send terminal escape sequences."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


class InertArgs(logging.Filter):
    """Escapes control characters in a log record's arguments (values from requests, agents and
    users), so they cannot forge log lines or send terminal escapes; the format stays ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(neutralize(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: neutralize(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_inert_logs(*loggers: logging.Logger) -> None:
    """Put :class:`InertArgs` on every handler the master's records can reach."""
    handlers = [h for lg in (logging.getLogger(), *loggers) for h in lg.handlers]
    for handler in [*handlers, logging.lastResort]:
        if handler is not None and not any(isinstance(f, InertArgs) for f in handler.filters):
            handler.addFilter(InertArgs())


class Masking(Protocol):
    def mask(self, text: str) -> str: ...


def stream_key(execution_id: str) -> str:
    return f"{PREFIX}log:{execution_id}"


def archive_key(execution_id: str) -> str:
    return f"logs/{execution_id}.jsonl.gz"


def event_topic(execution_id: str) -> str:
    return f"events:{execution_id}"


def id_tuple(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def _decode(entry_id: Any, fields: dict[Any, Any]) -> Event:
    def text(v: Any) -> str:
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

    data = {text(k): text(v) for k, v in fields.items()}
    return {
        "id": text(entry_id),
        "stream": data.get("stream", "stdout"),
        "message": data.get("message", ""),
        "time": data.get("time", ""),
    }


class LogService:
    """Append, read, push and archive the log events of executions."""

    def __init__(
        self,
        redis: aioredis.Redis,
        notifier: Notifier,
        artifacts: ArtifactStore,
        max_events: int = 100_000,
    ) -> None:
        self.redis = redis
        self.notifier = notifier
        self.artifacts = artifacts
        self.max_events = max_events
        self._reads: dict[tuple[str, str | None], asyncio.Future[list[Event]]] = {}
        #: Returns the masker of an execution's secrets (set by ``create_master``).
        self.masker_for: Callable[[str], Awaitable[Masking]] | None = None
        #: Adds ``n`` to the execution's durable event count and returns the count before
        #: (set by ``create_master``); a stream missing although events were written before
        #: means Redis lost them, and the log then says so.
        self.count_events: Callable[[str, int], Awaitable[int]] | None = None

    async def _masked(self, execution_id: str, events: list[Event]) -> list[Event]:
        if self.masker_for is None:
            return events
        masker = await self.masker_for(execution_id)
        return [{**e, "message": masker.mask(str(e.get("message") or ""))} for e in events]

    async def append(
        self,
        execution_id: str,
        events: list[Event],
        counted: bool = False,
        before: int | None = None,
    ) -> None:
        """Add events (``stream``, ``message``, ``time``) and notify live viewers.

        ``counted``: the execution's event count already includes these (set at its creation).
        ``before``: the caller counted them in its own update of the execution (a status change
        does, in its compare-and-set) and this was the count before them.
        """
        if not events:
            return
        events = await self._masked(execution_id, events)
        key = stream_key(execution_id)
        if before is None and self.count_events is not None and not counted:
            before = await self.count_events(execution_id, len(events))
        if before and not await self.redis.exists(key):
            gap = (
                f"{before} earlier log events of this execution were lost (the live log "
                "store restarted); the log has a gap here"
            )
            events = [{"stream": "status", "message": gap}, *events]
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                key,
                {
                    "stream": str(event.get("stream") or "stdout"),
                    "message": str(event.get("message") or ""),
                    "time": str(event.get("time") or isoformat(utcnow())),
                },
                maxlen=self.max_events,
                approximate=True,
            )
        pipe.publish(channel(event_topic(execution_id)), "1")  # after the events, same trip
        await pipe.execute()

    async def status(
        self, execution_id: str, message: str, counted: bool = False, before: int | None = None
    ) -> None:
        """Record a status event such as "Execution queued" (one line, control characters
        escaped: messages carry values from agents and users)."""
        event = {"stream": "status", "message": neutralize(message)}
        await self.append(execution_id, [event], counted, before)

    async def live(self, execution_id: str, after: str | None = None) -> list[Event]:
        """Return the events still in Redis, those after event id ``after`` if given.

        Reads are shared: viewers of one execution wake on the same notification and ask for
        the same events, so one ``XRANGE`` (decoded once) answers every caller that asks for
        the same range while it is in flight. Callers must not change the events they get.
        """
        key = (execution_id, after)
        pending = self._reads.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._xrange(execution_id, after))
            self._reads[key] = pending
            pending.add_done_callback(lambda _: self._reads.pop(key, None))
        return list(await asyncio.shield(pending))

    async def _xrange(self, execution_id: str, after: str | None) -> list[Event]:
        start = "-" if after is None else f"({after}"
        entries = await self.redis.xrange(stream_key(execution_id), min=start, max="+")
        return [_decode(i, f or {}) for i, f in entries or []]

    async def archived(self, execution_id: str) -> list[Event] | None:
        """Return the archived events, or ``None`` if there is no archive (yet)."""

        def load() -> list[Event] | None:
            try:
                fp = self.artifacts.open(archive_key(execution_id))
            except NotFound:
                return None
            with fp, gzip.open(fp, "rt", encoding="utf-8") as lines:
                return [json.loads(line) for line in lines if line.strip()]

        return await asyncio.to_thread(load)

    async def read(
        self, execution_id: str, archived: bool, after: str | None = None
    ) -> list[Event]:
        """Return every event: the archive if the execution's logs were archived, else Redis."""
        if not archived:
            events = await self.live(execution_id, after)
            if events or await self.redis.exists(stream_key(execution_id)):
                return events
        events_or_none = await self.archived(execution_id)
        if events_or_none is None:
            return [] if archived else await self.live(execution_id, after)
        if after is not None:
            bound = id_tuple(after)
            return [e for e in events_or_none if id_tuple(e["id"]) > bound]
        return events_or_none

    async def archive(self, execution_id: str, written: int | None = None) -> int:
        """Move the live events to ``logs/<id>.jsonl.gz`` and delete the Redis stream.

        ``written``: the execution's durable event count if the caller has it at hand.
        """
        events = await self.live(execution_id)
        existing = await self.archived(execution_id)
        if existing:
            seen = {e["id"] for e in existing}
            events = existing + [e for e in events if e["id"] not in seen]
        elif written is not None or self.count_events is not None:
            if written is None and self.count_events is not None:
                written = await self.count_events(execution_id, 0)
            # Redis lost events (restarted) since the last append
            if written is not None and written > len(events):
                gap = (
                    f"{written - len(events)} log events of this execution were lost (the live "
                    "log store restarted); the log has a gap here"
                )
                at = events[0]["id"] if events else "0-0"
                events = [{"id": at, "stream": "status", "message": gap, "time": ""}, *events]
        events = await self._masked(execution_id, events)  # the archive is masked too

        def write() -> None:
            buf = io.BytesIO()
            with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
                for event in events:
                    gz.write((json.dumps(event) + "\n").encode("utf-8"))
            buf.seek(0)
            self.artifacts.put(archive_key(execution_id), buf)

        await asyncio.to_thread(write)
        await self.redis.delete(stream_key(execution_id))
        await self.notifier.publish(event_topic(execution_id))
        return len(events)
