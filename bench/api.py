"""API: requests/s of ``GET /api/v0/executions/{id}/`` (token auth, the execution, its describe)
against a bare Tornado handler that answers the same bytes, in the same run, with the same load
generator (8 keep-alive connections from a process of its own). A bare Tornado handler that also
reads the execution from the same nx-27017 shows what one database round trip costs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from jupyter_valohai.services import wait_for_port

from .common import Bench, free_port, main_for


def _load(port: int, path: str, seconds: float, headers: list[str] | None = None) -> dict:
    argv = [sys.executable, "-m", "bench.loadgen", str(port), path, "--seconds", str(seconds)]
    for h in headers or []:
        argv += ["--header", h]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(out.stdout)


def _bare(ctx: Bench, body_file: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_tornado", str(port), "--body", body_file, *extra]
    )
    ctx.cleanup(lambda: (proc.terminate(), proc.wait(10)))
    wait_for_port("127.0.0.1", port, 30, proc)
    return proc, port


def run(ctx: Bench) -> None:
    seconds = 3.0 if ctx.quick else 8.0
    stack = ctx.stack(agents=1)
    stack.wait_agents(1)
    project, commit = stack.project_with_steps()
    execution = stack.submit(project, commit, "noop")
    stack.wait_status(execution["id"], timeout=60)
    path = f"/api/v0/executions/{execution['id']}/"
    auth = f"Authorization: Token {stack.admin_token}"
    body = stack.api("GET", path).content
    body_file = os.path.join(ctx.tmp, "body.json")
    with open(body_file, "wb") as f:
        f.write(body)

    _, bare_port = _bare(ctx, body_file, [])
    mongo, _ = ctx.services()
    _, db_port = _bare(
        ctx, body_file, ["--mongo", mongo.url, "--db", stack.mongo_db, "--id", execution["id"]]
    )
    for s in stack.agents:  # idle agents long-poll; stop them so only the load runs
        s.terminate()
    time.sleep(0.5)

    ours = _load(stack.port, path, seconds, [auth])
    base = _load(bare_port, path, seconds)
    base_db = _load(db_port, path, seconds)
    if ours["errors"]:
        raise RuntimeError(f"{ours['errors']} requests failed")
    ratio = ours["rps"] / base["rps"]
    ctx.figure(
        "GET /api/v0/executions/{id}/ requests/s",
        ours["rps"],
        "req/s",
        target="within 20% of bare Tornado",
        met=ratio >= 0.8,
        baseline="bare Tornado handler, same bytes",
        baseline_value=base["rps"],
        ratio=ratio,
        ratio_target=">= 0.8",
    )
    ctx.figure(
        "bare Tornado + one find_one on the same nx-27017",
        base_db["rps"],
        "req/s",
        baseline="bare Tornado handler",
        baseline_value=base["rps"],
        ratio=base_db["rps"] / base["rps"],
    )
    ctx.figure("ours: latency p50 at 8 connections", ours["p50_ms"], "ms")
    ctx.note(f"{seconds:.0f} s of load per server, 8 keep-alive connections, {len(body)} B answers")


if __name__ == "__main__":
    main_for("api", run)
