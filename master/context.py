"""The shared state every service works with: config, Mongo store, Redis queues, logs, artifacts,
project feeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from jupyter_valohai.stores import ArtifactStore

from .config import MasterConfig
from .feed import ExecutionFeed
from .logs import LogService
from .queue import ExecutionQueues, Notifier
from .store import Store

if TYPE_CHECKING:
    from .services.secrets import SecretService


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
    secrets: SecretService = None  # type: ignore[assignment]  # set by create_master
