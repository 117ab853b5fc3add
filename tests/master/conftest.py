"""Reusable fixtures: a real master started in-process on a free port.

``master_config`` builds the :class:`~master.config.MasterConfig` (real nx-27017 and redis-server
from the session fixtures, a fresh database, a ``file://`` store in tmp_path, short leases);
``master`` starts :func:`master.server.create_master` and serves it with Tornado's HTTP server,
yielding a :class:`mastertest.MasterClient` (``.url``, ``.api()``, ``.agent()``, ``.master``...).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mastertest import MasterClient, start_master

from jupyter_valohai.models import new_token
from master.config import MasterConfig


@pytest.fixture
def master_config(
    tmp_path: Any, mongo_url: str, mongo_db_name: str, redis_url: str
) -> MasterConfig:
    return MasterConfig(
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        data_dir=str(tmp_path / "master"),
        store_url="file://" + str(tmp_path / "artifacts"),
        lease_seconds=10,
        heartbeat_seconds=1,
        max_attempts=2,
        reaper_interval=0.2,
        admin_token=new_token(),
        agent_token=new_token(),
    )


@pytest.fixture
async def master(master_config: MasterConfig) -> AsyncIterator[MasterClient]:
    """A started master serving on a free port; stopped after the test."""
    running, port = await start_master(master_config)
    try:
        yield MasterClient(
            running,
            f"http://127.0.0.1:{port}",
            master_config.admin_token,
            master_config.agent_token,
        )
    finally:
        await running.stop()
