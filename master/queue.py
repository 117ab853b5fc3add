"""Per-environment execution queues (and the agents seen lately) in Redis, and the one pub/sub
listener that wakes waiters.

A queue is a sorted set of execution ids (score: priority, then submit time; ``ZPOPMIN`` takes the
head). Everything here is derived state: :meth:`ExecutionQueues.reconcile` rebuilds it from MongoDB.
Waiting agents hold an asyncio future, not a Redis connection: one ``PSUBSCRIBE`` per master process
turns notifications into ``set_result`` on those futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

import redis.asyncio as aioredis

from .cache import TOPIC as CACHE_TOPIC
from .cache import ReadCache

log = logging.getLogger(__name__)

PREFIX = "vh:"
NOTIFY_PATTERN = PREFIX + "notify:*"


def channel(topic: str) -> str:
    """The pub/sub channel of a notification topic (see :class:`Notifier`)."""
    return f"{PREFIX}notify:{topic}"


def queue_key(environment_id: str) -> str:
    return f"{PREFIX}queue:{environment_id}"


def workers_key(environment_id: str) -> str:
    return f"{PREFIX}workers:{environment_id}"


#: An agent counts as a worker of its group for this long after its last claim or heartbeat.
WORKER_SEEN_SECONDS = 60.0


def score(priority: int, ctime: float) -> float:
    """Higher priority first, then oldest first (ZPOPMIN takes the lowest score)."""
    return -float(priority) * 1e11 + ctime


class Notifier:
    """One pub/sub subscription per process, fanning notifications out to in-process waiters."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._cache: ReadCache | None = None

    def watch_cache(self, cache: ReadCache) -> None:
        """Carry ``cache``'s invalidations: publish them on the ``cache`` topic, hand the ones
        received to it, and let it serve only while the subscription is live."""
        self._cache = cache

        async def publish(message: str) -> None:
            await self.publish(CACHE_TOPIC, message)

        cache.publisher = publish

    def _live(self, live: bool) -> None:
        if self._cache is not None:
            self._cache.set_live(live)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="vh-notifier")
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(NOTIFY_PATTERN)
                self._live(True)
                self._ready.set()
                # Wake everyone after a (re)subscribe: they may have missed a notification.
                self._wake_all()
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    topic = channel[len(PREFIX + "notify:") :]
                    if topic == CACHE_TOPIC and self._cache is not None:
                        self._cache.received(message["data"])
                    self._wake(topic)
            except asyncio.CancelledError:
                self._live(False)
                await pubsub.aclose()
                raise
            except Exception as exc:  # Redis restarted: resubscribe after a pause
                self._live(False)
                log.warning("pub/sub listener lost Redis (%s); resubscribing", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1)

    def _wake(self, topic: str) -> None:
        for fut in self._waiters.pop(topic, ()):
            if not fut.done():
                fut.set_result(None)

    def _wake_all(self) -> None:
        for topic in list(self._waiters):
            self._wake(topic)

    def waiter(self, topic: str) -> asyncio.Future[None]:
        """Return a future resolved by the next notification on ``topic``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[topic].add(fut)
        return fut

    def discard(self, topic: str, fut: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(topic)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                self._waiters.pop(topic, None)

    async def wait(self, topic: str, fut: asyncio.Future[None], timeout: float) -> bool:
        """Wait for ``fut`` (from :meth:`waiter`) up to ``timeout`` seconds; tell if it fired."""
        try:
            await asyncio.wait_for(asyncio.shield(fut), max(timeout, 0))
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.discard(topic, fut)

    async def publish(self, topic: str, data: str = "1") -> None:
        await self.redis.publish(channel(topic), data)


class ExecutionQueues:
    """The Redis side of the execution queues (push, pop, remove, length)."""

    def __init__(self, redis: aioredis.Redis, notifier: Notifier) -> None:
        self.redis = redis
        self.notifier = notifier

    async def push(
        self,
        environment_id: str,
        execution_id: str,
        priority: int = 0,
        ctime: float | None = None,
        notify: bool = True,
    ) -> bool:
        """Add an execution (no-op if it is there already); tell whether it was added."""
        # One round trip: the entry and its notification in a pipeline (in this order).
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(
            queue_key(environment_id),
            {execution_id: score(priority, ctime if ctime is not None else time.time())},
            nx=True,
        )
        if notify:
            pipe.publish(channel(f"queue:{environment_id}"), "1")
        added = (await pipe.execute())[0]
        return bool(added)

    async def pop(self, environment_id: str) -> str | None:
        popped = await self.redis.zpopmin(queue_key(environment_id), 1)
        if not popped:
            return None
        member = popped[0][0]
        return member.decode() if isinstance(member, bytes) else str(member)

    async def remove(self, environment_id: str, execution_id: str) -> None:
        await self.redis.zrem(queue_key(environment_id), execution_id)

    async def length(self, environment_id: str) -> int:
        return int(await self.redis.zcard(queue_key(environment_id)))

    async def seen(self, environment_id: str, worker: dict | None) -> None:
        """Note that an agent of ``environment_id`` claimed or heartbeated just now."""
        worker = worker or {}
        name = str(worker.get("id") or worker.get("name") or "agent")
        await self.redis.zadd(workers_key(environment_id), {name: time.time()})

    async def workers(self, environment_id: str, within: float = WORKER_SEEN_SECONDS) -> int:
        """How many distinct agents were seen in the last ``within`` seconds (older ones go)."""
        key = workers_key(environment_id)
        await self.redis.zremrangebyscore(key, "-inf", time.time() - within)
        return int(await self.redis.zcard(key))
