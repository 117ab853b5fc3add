"""Worker binary storage: the agent release is served to its group's workers only, and an agent
older than the release is told to upgrade when it checks in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_valohai import __version__
from tests.e2e.stack import Stack

from .conftest import SCALER_INTERVAL, create_group

pytestmark = pytest.mark.slow


@pytest.fixture
def release_stack(tmp_path, agent_wheel, mongo_url, mongo_db_name, redis_url) -> Iterator[Stack]:
    s = Stack(
        root=str(tmp_path / "stack"),
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        master_args=[f"--scaler-interval={SCALER_INTERVAL}", f"--agent-wheel={agent_wheel}"],
    )
    s.start_master()
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.timeout(600)  # the first test of a session may build the wheel
def test_release_files_and_upgrade_answers(release_stack: Stack, agent_wheel: str) -> None:
    stack = release_stack
    token = create_group(stack, slug="pool", provider="static")["token"]
    (wheel,) = Path(agent_wheel).glob("*.whl")
    url = f"/api/agent/releases/{__version__}/{wheel.name}"
    got = stack.api("GET", url, token=token)
    assert got.status_code == 200 and got.content == wheel.read_bytes()
    assert stack.api("GET", url, token="nonsense").status_code == 401
    assert (
        stack.api("GET", f"/api/agent/releases/{__version__}/x.whl", token=token).status_code == 404
    )
    assert (
        stack.api("GET", f"/api/agent/releases/0.0.1/{wheel.name}", token=token).status_code == 404
    )

    def check_in(version: str) -> dict:
        worker = {"id": f"w-{version}", "name": "w", "version": version}
        resp = stack.api("POST", "/api/agent/worker", token=token, json={"worker": worker})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    old = check_in("0.0.1")
    assert old["drain"] is False
    assert old["upgrade"]["version"] == __version__ and old["upgrade"]["url"] == url
    assert len(old["upgrade"]["sha256"]) == 64
    assert check_in(__version__)["upgrade"] is None
    resp = stack.api("POST", "/api/agent/worker", token=token, json={"worker": "me"})
    assert resp.status_code == 400 and resp.json().get("hint"), resp.text
