"""Acceptance 1: the `local` provider scales a group from 0 to its max of real agent processes for a
burst of executions, and back to 0 after the idle timeout, interrupting none of them."""

from __future__ import annotations

import os
import threading

import pytest

from tests.e2e.stack import Stack

from .conftest import commit, create_group, environment, wait_for

pytestmark = pytest.mark.slow

BURST = 20
MAX_SIZE = 4


def agent_pids(stack: Stack, slug: str) -> list[int]:
    """The agent processes the master's local provider runs for ``slug`` (its pid files)."""
    root = os.path.join(stack.root, "master", "workers", slug)
    pids = []
    for name in os.listdir(root) if os.path.isdir(root) else []:
        path = os.path.join(root, name, "pid")
        if os.path.exists(path):
            with open(path) as f:
                pids.append(int(f.read()))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie until the master reaps it: not an agent any more
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.timeout(300)
def test_burst_scales_up_to_max_and_back_to_zero(stack: Stack) -> None:
    create_group(
        stack,
        slug="burst",
        provider="local",
        min_size=0,
        max_size=MAX_SIZE,
        idle_timeout=2,
        settings={"runtime": "local"},
    )
    project_id, identifier = commit(stack)
    assert environment(stack, "burst")["scaling"].get("size", 0) == 0

    # Watch the group while the burst runs: its size, and the agent processes really running.
    sizes: list[int] = []
    processes: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            sizes.append(int(environment(stack, "burst")["scaling"].get("size") or 0))
            processes.update(p for p in agent_pids(stack, "burst") if alive(p))
            stop.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ids = [
            stack.submit(project_id, identifier, "quick", environment="burst")["id"]
            for _ in range(BURST)
        ]
        last = stack.api("GET", f"/api/v0/executions/{ids[-1]}/").json()
        if last["status"] == "queued":  # it has to wait: it says why
            assert "'burst'" in last["waiting_reason"], last["waiting_reason"]
        finals = [stack.wait_status(i, timeout=240) for i in ids]
    finally:
        stop.set()
        watcher.join(10)

    # Every execution completed on its first attempt: none was interrupted by a scale-down.
    assert [f["status"] for f in finals] == ["complete"] * BURST, [
        (f["counter"], f["status"], f["status_message"]) for f in finals
    ]
    assert all(f["attempt"] == 1 for f in finals), [f["attempt"] for f in finals]
    assert max(sizes) == MAX_SIZE, sizes
    assert len(processes) == MAX_SIZE, processes  # real agent processes, no more than max

    # Back to 0 after the idle timeout: drained, stopped, processes gone.
    wait_for(
        "the group to return to 0",
        lambda: (
            environment(stack, "burst")["scaling"]["size"] == 0
            and not any(alive(p) for p in agent_pids(stack, "burst"))
        ),
        stack,
        timeout=120,
    )
    assert not any(alive(p) for p in processes)
    listed = stack.api("GET", "/api/v0/workers/", params={"environment": "burst"}).json()
    assert listed["count"] == 0, listed

    decisions = stack.api("GET", "/api/v0/environments/burst/decisions/").json()["results"]
    actions = [d["action"] for d in reversed(decisions)]
    assert "scale_up" in actions and "drain" in actions and "terminate" in actions, decisions
    assert actions.count("terminate") == MAX_SIZE, decisions
    assert "error" not in actions, decisions
    ups = [d["details"] for d in reversed(decisions) if d["action"] == "scale_up"]
    assert ups[0]["size"] == 0 and ups[-1]["target"] == MAX_SIZE, ups
