"""Project feeds: which executions of a project changed, in order, for pushed execution lists.

Every status change (create, claim, stop, final status, requeue) and every cell change appends
the execution's id to the project's Redis stream ``vh:feed:<project id>`` (bounded) and notifies
the topic ``feed:<project id>``, so viewers connected to any master replica wake up. Viewers
resume after a stream id (``Last-Event-ID``); an id the stream no longer covers (trimmed, or
Redis restarted) means "start over with the current page".
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .logs import id_tuple
from .queue import PREFIX, Notifier, channel

#: Entries kept per project (approximately): enough for a viewer to resume after a reconnect.
MAX_FEED_ENTRIES = 1000


def feed_key(project_id: str) -> str:
    return f"{PREFIX}feed:{project_id}"


def feed_topic(project_id: str) -> str:
    return f"feed:{project_id}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ExecutionFeed:
    """Append to and read the per-project feeds of changed executions."""

    def __init__(self, redis: aioredis.Redis, notifier: Notifier) -> None:
        self.redis = redis
        self.notifier = notifier

    async def changed(self, project_id: str, execution_id: str) -> None:
        """Record that an execution of ``project_id`` changed; wake the project's viewers."""
        pipe = self.redis.pipeline(transaction=False)  # one round trip, entry then notification
        pipe.xadd(
            feed_key(project_id),
            {"execution": execution_id},
            maxlen=MAX_FEED_ENTRIES,
            approximate=True,
        )
        pipe.publish(channel(feed_topic(project_id)), "1")
        await pipe.execute()

    async def last_id(self, project_id: str) -> str:
        """The newest entry's id (``0-0`` for an empty feed): where a fresh viewer resumes."""
        entries = await self.redis.xrevrange(feed_key(project_id), count=1)
        return _text(entries[0][0]) if entries else "0-0"

    async def covers(self, project_id: str, after: str) -> bool:
        """Whether every entry after ``after`` is still in the feed (nothing was trimmed)."""
        try:
            bound = id_tuple(after)
        except ValueError:
            return False
        entries = await self.redis.xrange(feed_key(project_id), count=1)
        if not entries:
            return False
        return bound >= id_tuple(_text(entries[0][0]))

    async def read(self, project_id: str, after: str) -> list[tuple[str, str]]:
        """The entries after ``after`` as (entry id, execution id), one per execution (its last)."""
        entries = await self.redis.xrange(feed_key(project_id), min=f"({after}", max="+")
        latest: dict[str, str] = {}
        for entry_id, fields in entries or []:
            execution = fields.get(b"execution", fields.get("execution"))
            if execution is not None:
                latest.pop(_text(execution), None)  # keep the order of the last change
                latest[_text(execution)] = _text(entry_id)
        return [(entry_id, execution) for execution, entry_id in latest.items()]
