"""The build queue: endpoint ids waiting for the inference builder, a Redis list.

Derived state like the execution queues: MongoDB's ``queued`` endpoints are the truth and
:meth:`BuildQueue.reconcile` puts back any that Redis lost.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ..queue import PREFIX, Notifier

BUILD_QUEUE = PREFIX + "builds"
TOPIC = "builds"


class BuildQueue:
    """Builders wait on a notification (no blocked Redis connection each), then ``LPOP``."""

    def __init__(self, redis: aioredis.Redis, notifier: Notifier) -> None:
        self.redis = redis
        self.notifier = notifier

    async def push(self, endpoint_id: str) -> None:
        await self.redis.rpush(BUILD_QUEUE, endpoint_id)
        await self.notifier.publish(TOPIC)

    async def pop(self, timeout: float, stopping: asyncio.Event | None = None) -> str | None:
        """The next endpoint id, waiting up to ``timeout`` seconds (or until ``stopping``)."""
        value = await self.redis.lpop(BUILD_QUEUE)
        if value is None:
            fut = self.notifier.waiter(TOPIC)
            waits = [asyncio.ensure_future(self.notifier.wait(TOPIC, fut, timeout))]
            if stopping is not None:
                waits.append(asyncio.ensure_future(stopping.wait()))
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if stopping is not None and stopping.is_set():
                return None
            value = await self.redis.lpop(BUILD_QUEUE)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def depth(self) -> int:
        return int(await self.redis.llen(BUILD_QUEUE))

    async def reconcile(self, queued: list[str]) -> int:
        """Push the ``queued`` endpoint ids that are missing from the list; return how many."""
        present = {
            v.decode() if isinstance(v, bytes) else str(v)
            for v in await self.redis.lrange(BUILD_QUEUE, 0, -1)
        }
        missing = [e for e in queued if e not in present]
        for endpoint_id in missing:
            await self.push(endpoint_id)
        return len(missing)
