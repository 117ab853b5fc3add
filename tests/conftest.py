"""Session-wide real services: an ``nx-27017`` MongoDB-wire server and a real ``redis-server``.

Each pytest(-xdist) worker starts its own pair once; each test gets a fresh database name and an
emptied Redis database, so tests never see each other's state. A service that cannot start fails
the test run; nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from jupyter_valohai.services import ManagedProcess, start_mongo, start_redis

# Agents the tests start run executions as local processes unless a test asks for Docker
# (tests/docker passes --runtime docker): the images the steps name cannot be pulled here.
os.environ.setdefault("VH_AGENT_RUNTIME", "local")


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    proc = start_mongo(str(tmp_path_factory.mktemp("mongo")))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    proc = start_redis(str(tmp_path_factory.mktemp("redis")))
    yield proc
    proc.stop()


@pytest.fixture
def mongo_url(mongo_server: ManagedProcess) -> str:
    return mongo_server.url


@pytest.fixture
def mongo_db_name() -> str:
    """A database of its own for each test."""
    return f"vh_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(redis_server: ManagedProcess) -> str:
    """The Redis URL, emptied before the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture
def master(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Any]:
    """A real master with one real local agent (child processes started through the CLI)."""
    from tests.e2e.stack import Stack

    s = Stack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url)
    try:
        s.start_master()
        s.start_agent()
        yield s
    finally:
        s.stop()
