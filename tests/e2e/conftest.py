from __future__ import annotations

from collections.abc import Iterator

import pytest

from .stack import Stack


@pytest.fixture
def stack(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Stack]:
    """A running master (no agents yet) on the session's real nx-27017 and Redis."""
    s = Stack(
        root=str(tmp_path / "stack"),
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
    )
    s.start_master()
    try:
        yield s
    finally:
        s.stop()
