"""Dispatch with few database round trips (docs/performance.md): what the claim and the final
status no longer read, and the guarantees that must hold all the same (event counts and gaps,
drains, the environment the claim reports)."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from mastertest import MasterClient, serving
from pymongo import monitoring
from test_agent_api import run_outputs, submit_and_claim

from master.config import MasterConfig


class _Commands(monitoring.CommandListener):
    """Counts the MongoDB commands of this process while a test asks it to (inert otherwise).

    Registered when this module is imported (collection time), so every client the tests' masters
    create afterwards reports to it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: collections.Counter[str] | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self.lock:
            if self.active is not None:
                name = event.command_name
                target = event.command.get(name)
                self.active[f"{name}:{target if isinstance(target, str) else ''}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = _Commands()
monitoring.register(COMMANDS)


@contextmanager
def counting() -> Iterator[collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()
    with COMMANDS.lock:
        COMMANDS.active = counts
    try:
        yield counts
    finally:
        with COMMANDS.lock:
            COMMANDS.active = None


@pytest.fixture
async def quiet_master(master_config: MasterConfig) -> AsyncIterator[MasterClient]:
    """A master without background passes (reaper, scaler): every command is a request's."""
    config = dataclasses.replace(master_config, reaper_interval=3600, scaler_interval=0)
    async with serving(config) as client:
        yield client


async def finish(master: MasterClient, spec: dict[str, Any], status: str = "complete") -> None:
    done = await master.agent(
        "POST",
        f"/api/agent/executions/{spec['id']}/status",
        json={"attempt": spec["attempt"], "status": status, "exit_code": 0},
    )
    assert done.status_code == 200, done.text


def archived_lines(master: MasterClient, execution_id: str) -> list[str]:
    with master.master.ctx.artifacts.open(f"logs/{execution_id}.jsonl.gz") as fp:
        return gzip.decompress(fp.read()).decode().splitlines()


async def test_a_no_op_execution_costs_few_database_commands(quiet_master: MasterClient) -> None:
    master = quiet_master
    project, commit = await master.setup_commit()
    for _ in range(2):  # warm-up: indexes and first-use setup; then one measured
        await master.submit(project["id"], commit["identifier"])
        claim = await master.claim()
        assert claim.status_code == 200, claim.text
        await finish(master, claim.json())
    with counting() as counts:
        await master.submit(project["id"], commit["identifier"])
        claim = await master.claim()
        assert claim.status_code == 200, claim.text
        await finish(master, claim.json())
    executions = {k: v for k, v in counts.items() if k.endswith(":executions")}
    # Exactly: insert; the claim's and the final status's compare-and-sets; the archive flag.
    # No in-flight count (the gauge on the counter document answers), no read before the final
    # status's compare-and-set (no outputs: it is the fence), no status event paying a count of
    # its own, no first event a read for its masker.
    assert executions == {
        "insert:executions": 1,
        "findAndModify:executions": 2,
        "update:executions": 1,
    }, counts
    # The counter and the in-flight gauge in one write; the gauge lowered at the end.
    assert counts["findAndModify:counters"] == 1 and counts["update:counters"] == 1, counts
    # The claim's check-in is one write that answers the drain flag (no read of it after); the
    # final status frees the worker. (One read of the workers: the submit's waiting reason.)
    assert counts["findAndModify:workers"] == 1 and counts["find:workers"] == 1, counts
    assert counts["update:workers"] == 2, counts  # busy at the claim, idle at the end
    # No dataset versions looked for (no outputs), no consumptions (no inputs), the default
    # environment read without an upsert, the claim's environment taken from its authentication.
    assert counts["find:datums"] == 0 and counts["insert:datum_consumptions"] == 0, counts
    assert counts["update:environments"] == 0, counts
    # The submit's answer describes with the project, group and user the submit read already.
    assert counts["find:environments"] <= 3, counts  # the submit's; two agent authentications
    assert sum(counts.values()) <= 11, counts  # commits and workers reads are not cached


async def test_status_events_are_counted_in_the_status_change(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    code = await master.agent("GET", spec["code_url"])
    assert hashlib.sha256(code.content).hexdigest() == spec["code_sha256"]
    await finish(master, spec)
    store = master.master.ctx.store
    doc = await store.executions.find_one({"_id": spec["id"]})
    assert doc is not None and not doc["has_outputs"] and doc["logs_archived"]
    lines = archived_lines(master, spec["id"])
    # created, queued, started, complete: each counted once, none reported lost
    assert doc["log_events"] == len(lines) == 4
    assert not any("were lost" in line for line in lines)


async def test_a_lost_live_log_is_still_reported(master: MasterClient) -> None:
    """The count that a status change carries in its compare-and-set still tells a live log
    Redis lost (restarted) from one that never had events."""
    spec = await submit_and_claim(master)
    await master.master.ctx.redis.delete(f"vh:log:{spec['id']}")
    await finish(master, spec)
    lines = archived_lines(master, spec["id"])
    assert any("3 earlier log events of this execution were lost" in line for line in lines)
    assert "Execution complete" in lines[-1]


async def test_outputs_mark_the_execution_and_still_make_versions(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    await run_outputs(master, spec, {"a.txt": b"hello"})
    doc = await master.master.ctx.store.executions.find_one({"_id": spec["id"]})
    assert doc is not None and doc["has_outputs"]  # True (nx-27017 answers 1)
    await finish(master, spec)
    datums = await master.api("GET", "/api/v0/data/", params={"output_execution": spec["id"]})
    assert [d["name"] for d in datums.json()["results"]] == ["a.txt"]


async def test_a_final_status_is_fenced_without_a_read(master: MasterClient) -> None:
    """The final status of an execution without outputs is one compare-and-set: a stale attempt,
    another group's agent and a finished execution are refused all the same."""
    spec = await submit_and_claim(master)
    url = f"/api/agent/executions/{spec['id']}/status"
    body = {"attempt": spec["attempt"] + 1, "status": "complete", "exit_code": 0}
    stale = await master.agent("POST", url, json=body)
    assert stale.status_code == 409, stale.text
    other = await master.api(
        "POST", "/api/v0/environments/", json={"slug": "other-group", "name": "Other"}
    )
    assert other.status_code == 201, other.text
    foreign = await master.agent(
        "POST", url, json={**body, "attempt": spec["attempt"]}, token=other.json()["token"]
    )
    assert foreign.status_code == 404, foreign.text
    await finish(master, spec)
    again = await master.agent("POST", url, json={**body, "attempt": spec["attempt"]})
    assert again.status_code == 409, again.text
    doc = await master.master.ctx.store.executions.find_one({"_id": spec["id"]})
    assert doc is not None and doc["status"] == "complete"


async def test_the_claim_reports_the_environment_as_it_is_at_claim_time(
    master: MasterClient,
) -> None:
    """Decided: what the claim answers about the worker group (its resource requests) is the
    group at claim time, read by the agent's authentication, not a copy made at submit."""
    store = master.master.ctx.store
    env = await store.environments.find_one({})
    assert env is not None
    project, commit = await master.setup_commit()
    await master.submit(project["id"], commit["identifier"])
    await store.environments.update_one({"_id": env["_id"]}, {"$set": {"memory_mb": 768}})
    claim = await master.claim()
    assert claim.status_code == 200, claim.text
    assert claim.json()["environment"]["memory_mb"] == 768


async def test_a_drained_worker_claims_nothing_though_work_waits(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    worker = {"id": "w1", "name": "w1"}
    checked = await master.agent("POST", "/api/agent/worker", json={"worker": worker})
    assert checked.status_code == 200 and checked.json()["drain"] is False
    execution = await master.submit(project["id"], commit["identifier"])
    drained = await master.api("POST", f"/api/v0/workers/{checked.json()['id']}/drain/")
    assert drained.status_code == 200, drained.text
    assert (await master.claim(wait=0)).status_code == 204
    assert (await master.agent("POST", "/api/agent/worker", json={"worker": worker})).json()[
        "drain"
    ] is True
    undrained = await master.api(
        "POST", f"/api/v0/workers/{checked.json()['id']}/drain/", json={"drain": False}
    )
    assert undrained.status_code == 200, undrained.text
    claim = await master.claim()
    assert claim.status_code == 200 and claim.json()["id"] == execution["id"]


async def test_a_claim_after_a_lost_final_status_frees_the_worker(master: MasterClient) -> None:
    """An agent that claims again ran nothing meanwhile: a worker still marked busy (its final
    status never arrived) is idle again after its next claim."""
    spec = await submit_and_claim(master)
    workers = master.master.ctx.store.db["workers"]
    busy = await workers.find_one({"agent_id": "w1"})
    assert busy is not None and busy["execution"] == spec["id"]
    assert (await master.claim(wait=0)).status_code == 204
    idle = await workers.find_one({"agent_id": "w1"})
    assert idle is not None and idle["execution"] is None
    assert idle["idle_since"] >= busy["last_seen"]


@pytest.fixture
async def limited(master_config: MasterConfig) -> AsyncIterator[MasterClient]:
    config = dataclasses.replace(master_config, max_in_flight_per_project=3)
    async with serving(config) as client:
        yield client


async def test_the_in_flight_gauge_keeps_the_limit_and_mends_itself(limited: MasterClient) -> None:
    project, commit = await limited.setup_commit()
    counters = limited.master.ctx.store.counters
    key = f"executions:{project['id']}"

    async def submit() -> int:
        resp = await limited.api(
            "POST",
            "/api/v0/executions/",
            json={"project": project["id"], "commit": commit["identifier"], "step": "train"},
        )
        return resp.status_code

    assert [await submit() for _ in range(4)] == [201, 201, 201, 429]
    gauge = await counters.find_one({"_id": key})
    assert gauge is not None and gauge["in_flight"] == 3 and gauge["value"] == 3  # none burned
    claim = await limited.claim()
    await finish(limited, claim.json())
    gauge = await counters.find_one({"_id": key})
    assert gauge is not None and gauge["in_flight"] == 2
    assert await submit() == 201
    assert await submit() == 429
    # A gauge left high (a master died between a finish and its release) is counted right at
    # the next submit near the limit; one lowered by a stop is too.
    stop = await limited.api("POST", f"/api/v0/executions/{project['id']}:2/stop/")
    assert stop.status_code == 200, stop.text
    await counters.update_one({"_id": key}, {"$set": {"in_flight": 3}})
    assert await submit() == 201
    gauge = await counters.find_one({"_id": key})
    assert gauge is not None and gauge["in_flight"] == 3 and gauge["value"] == 5
    # A project older than the gauge (no in_flight yet) counts exactly once and starts it.
    await counters.update_one({"_id": key}, {"$unset": {"in_flight": ""}})
    assert await submit() == 429
    assert (await counters.find_one({"_id": key})).get("in_flight") is None
