"""100,000 executions stored (nx-27017, the embedded default): list and filter through the API.

The documents are written straight into the master's database in the shape the execution service
writes them (one project; statuses, steps and creation times spread out), so the benchmark
measures reading, not 100,000 submits. Each query runs 60 times (after 5 unmeasured); p99 shown.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid

from pymongo import MongoClient

from .common import Bench, main_for, pct

STATUSES = ["complete"] * 80 + ["error"] * 12 + ["stopped"] * 4 + ["crashed"] * 2 + ["queued"] * 2


def _docs(project: str, env: str, user: str, start: int, count: int) -> list[dict]:
    rng = random.Random(start)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    out = []
    for counter in range(start, start + count):
        ctime = base + dt.timedelta(seconds=counter * 30)
        status = rng.choice(STATUSES)
        out.append(
            {
                "_id": f"e-{uuid.uuid4().hex}",
                "project": project,
                "counter": counter,
                "status": status,
                "attempt": 1,
                "step": rng.choice(["train", "evaluate", "notebook"]),
                "title": "",
                "commit": "c" * 40,
                "code_key": "code/x.tgz",
                "environment": env,
                "parameters": {"lr": rng.random()},
                "inputs": {},
                "resolved_inputs": {},
                "consumed_datums": [],
                "environment_variables": {},
                "image": "python:3.11",
                "tags": [],
                "priority": 0,
                "time_limit": 0,
                "kind": "command",
                "notebook": None,
                "commands": ["python train.py"],
                "creator": user,
                "ctime": ctime,
                "queued_at": ctime,
                "started_at": ctime,
                "ended_at": None if status == "queued" else ctime + dt.timedelta(seconds=60),
                "deleted": False,
                "logs_archived": True,
                "has_metadata": False,
                "runtime_config": {},
            }
        )
    return out


def run(ctx: Bench) -> None:
    total = 100_000
    stack = ctx.stack(agents=0)
    project, commit = stack.project_with_steps()
    one = stack.submit(project, commit, "noop")  # queued forever (no agent): real env and creator
    mongo, _ = ctx.services()
    db = MongoClient(mongo.url, tz_aware=True)[stack.mongo_db]
    ref = db.executions.find_one({"_id": one["id"]})
    assert ref is not None
    start = time.perf_counter()
    batch = 5000
    for first in range(2, total + 1, batch):
        db.executions.insert_many(
            _docs(project, ref["environment"], ref["creator"], first, min(batch, total + 1 - first))
        )
    ctx.note(f"{total:,} executions inserted in {time.perf_counter() - start:.0f} s (insert_many)")
    count = db.executions.count_documents({"project": project})
    if count < total:
        raise RuntimeError(f"only {count} executions stored")

    queries = {
        "list newest 50 (?project, ordering -counter)": {"project": project, "limit": 50},
        "filter status=error, 50": {"project": project, "status": "error", "limit": 50},
        "filter status=queued,started (incomplete)": {
            "project": project,
            "status": "queued,started",
            "limit": 50,
        },
        "page 100 of the list (offset 5000)": {"project": project, "limit": 50, "offset": 5000},
        "by counter (?counter=54321)": {"project": project, "counter": "54321"},
    }
    reps = 20 if ctx.quick else 60
    for label, params in queries.items():
        times = []
        for i in range(reps + 5):
            t0 = time.perf_counter()
            resp = stack.api("GET", "/api/v0/executions/", params=params)
            took = (time.perf_counter() - t0) * 1000
            if resp.status_code != 200:
                raise RuntimeError(f"{label}: {resp.status_code} {resp.text[:300]}")
            if i >= 5:
                times.append(took)
        p99 = pct(times, 0.99)
        ctx.figure(f"{label}: p99", p99, "ms", target="< 50 ms", met=p99 < 50)
    times = []
    for i in range(reps + 5):
        t0 = time.perf_counter()
        resp = stack.api("GET", f"/api/v0/executions/{project}:{54321 + i}/")
        if resp.status_code != 200:
            raise RuntimeError(f"get by counter: {resp.status_code}")
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    ctx.figure(
        "get one by project:counter: p99",
        pct(times, 0.99),
        "ms",
        target="< 50 ms",
        met=pct(times, 0.99) < 50,
    )


if __name__ == "__main__":
    main_for("store", run)
