"""Dispatch: no-op executions (``command: true``) per second from the first submit to the last
``complete``, every state change durable in MongoDB, on the local runtime.

Submitters post from a thread pool as fast as the master takes them; several agents claim in
parallel. The rate is executions / (last ``ended_at`` - first submit), read back from the API.
"""

from __future__ import annotations

import datetime
import time
from concurrent.futures import ThreadPoolExecutor

from .common import Bench, main_for


def _epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run(ctx: Bench) -> None:
    count = 100 if ctx.quick else 400
    agents = 4
    stack = ctx.stack(agents=agents, agent_args=["--LocalRuntime.warm_notebook_runners=0"])
    stack.wait_agents(agents)
    project, commit = stack.project_with_steps()
    # warm-up: one execution through every path
    stack.wait_status(stack.submit(project, commit, "noop")["id"], timeout=60)

    start = time.time()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: stack.submit(project, commit, "noop")["id"], range(count)))
    submitted = time.time() - start
    deadline = time.monotonic() + 600
    ended: list[float] = []
    while time.monotonic() < deadline:
        page = stack.api(
            "GET",
            "/api/v0/executions/",
            params={"project": project, "limit": 1000, "ordering": "-counter"},
        ).json()
        mine = [e for e in page["results"] if e["id"] in set(ids)]
        done = [e for e in mine if e["status"] in ("complete", "error", "crashed", "stopped")]
        if len(done) == count:
            bad = [e for e in done if e["status"] != "complete"]
            if bad:
                raise RuntimeError(f"{len(bad)} executions did not complete: {bad[0]}")
            ended = [_epoch(e["ended_at"]) for e in done]
            break
        time.sleep(0.5)
    else:
        raise RuntimeError("the executions did not all finish in 600 s")
    elapsed = max(ended) - start
    rate = count / elapsed
    ctx.figure(
        "no-op executions/s, submit -> complete",
        rate,
        "exec/s",
        target=">= 400/s",
        met=rate >= 400,
    )
    ctx.figure("submit rate alone (POST /api/v0/executions/)", count / submitted, "exec/s")
    ctx.note(f"{count} executions, {agents} agents, 8 submitting threads; {elapsed:.1f} s in all")


if __name__ == "__main__":
    main_for("dispatch", run)
