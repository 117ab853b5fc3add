"""submit -> started on the local runtime: an agent long-polls its claim, so a submitted
execution starts as soon as the master has queued it (no polling interval in between)."""

from __future__ import annotations

import datetime
import time

from .common import Bench, main_for, pct


def _epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run(ctx: Bench) -> None:
    n = 20 if ctx.quick else 60
    stack = ctx.stack(agents=1)
    stack.wait_agents(1)
    project, commit = stack.project_with_steps()
    client, server = [], []
    for i in range(n + 3):
        sent = time.time()
        execution = stack.submit(project, commit, "noop")
        done = stack.wait_status(execution["id"], timeout=60)
        if done["status"] != "complete":
            raise RuntimeError(stack.explain(execution["id"]))
        if i < 3:  # warm-up
            continue
        started = _epoch(done["started_at"])
        client.append((started - sent) * 1000)
        server.append((started - _epoch(done["ctime"])) * 1000)
    ctx.figure(
        "submit -> started p50 (client sends POST -> master's started_at)",
        pct(client, 0.5),
        "ms",
        target="<= 150 ms",
        met=pct(client, 0.5) <= 150,
    )
    ctx.figure(
        "submit -> started p99",
        pct(client, 0.99),
        "ms",
        target="<= 500 ms",
        met=pct(client, 0.99) <= 500,
    )
    ctx.figure("queued -> started p50 (master's ctime -> started_at)", pct(server, 0.5), "ms")
    ctx.note(f"{n} no-op executions one after another, one agent, local runtime")


if __name__ == "__main__":
    main_for("loop", run)
