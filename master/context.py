"""The shared state every service works with: config, Mongo store, Redis queues, logs, artifacts,
project feeds."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from jupyter_valohai.stores import ArtifactStore

from .config import MasterConfig
from .feed import ExecutionFeed
from .logs import LogService
from .queue import ExecutionQueues, Notifier
from .store import Store


@dataclass
class Context:
    config: MasterConfig
    store: Store
    redis: aioredis.Redis
    notifier: Notifier
    queues: ExecutionQueues
    logs: LogService
    artifacts: ArtifactStore
    feed: ExecutionFeed
