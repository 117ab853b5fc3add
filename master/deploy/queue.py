"""The build queue: endpoint ids waiting for the inference builder, a Redis list.

Derived state like the execution queues: MongoDB's ``queued`` endpoints are the truth and
:meth:`BuildQueue.reconcile` puts back any that Redis lost.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from ..queue import PREFIX

BUILD_QUEUE = PREFIX + "builds"


class BuildQueue:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def push(self, endpoint_id: str) -> None:
        await self.redis.rpush(BUILD_QUEUE, endpoint_id)

    async def pop(self, timeout: float) -> str | None:
        """The next endpoint id, waiting up to ``timeout`` seconds (one connection per builder)."""
        item = await self.redis.blpop([BUILD_QUEUE], timeout=max(int(timeout), 1))
        if not item:
            return None
        value = item[1]
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
