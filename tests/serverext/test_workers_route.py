"""The panel's view of a worker group (issue 6): its workers with state and current execution,
through the extension's route, on a real master and agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.stack import Stack

from .test_handlers import SLEEPER


async def workers_of(api, environment: str) -> list[dict]:
    status, body = await api("GET", "environments", environment, "workers")
    assert status == 200, body
    return list(body["results"])


async def test_workers_with_state_and_current_execution(
    api, jp_root_dir: Path, master: Stack
) -> None:
    (jp_root_dir / "sleeper.py").write_text(SLEEPER)
    status, execution = await api("POST", "executions", body={"path": "sleeper.py", "title": "nap"})
    assert status == 201, execution
    environment = execution["environment"]["id"]
    master.wait_status(execution["id"], {"started"}, timeout=120)
    for _ in range(200):  # the worker reports its execution with its next heartbeat
        (worker,) = await workers_of(api, environment)
        if worker["state"] == "busy":
            break
        await asyncio.sleep(0.2)
    assert worker["state"] == "busy", worker
    assert worker["name"] == "agent-0"
    assert worker["execution"] == execution["id"]
    current = worker["current_execution"]
    assert current["id"] == execution["id"]
    assert current["counter"] == execution["counter"]
    assert current["title"] == "nap"
    assert current["status"] == "started"
    assert current["project"]["name"] == "serverext"
    # By slug too, as the environment picker may name it.
    slug = execution["environment"]["slug"]
    assert [w["id"] for w in await workers_of(api, slug)] == [worker["id"]]

    status, _ = await api("POST", "executions", execution["id"], "stop")
    assert status == 200
    master.wait_status(execution["id"], timeout=120)
    for _ in range(200):
        (worker,) = await workers_of(api, environment)
        if worker["state"] == "idle":
            break
        await asyncio.sleep(0.2)
    assert (worker["state"], worker["current_execution"]) == ("idle", None), worker


async def test_workers_of_an_unknown_environment_are_a_json_404(api) -> None:
    status, body = await api("GET", "environments", "env-nope", "workers")
    assert status == 404 and body["code"] == "not_found" and body["message"], body
