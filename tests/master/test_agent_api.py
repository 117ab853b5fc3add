"""The agent protocol: claim long poll, fencing, stop, outputs, logs archive, reaper, reconcile."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from typing import Any

import redis
from mastertest import MasterClient, start_master

from master.config import MasterConfig


async def submit_and_claim(master: MasterClient, **body: Any) -> dict[str, Any]:
    project, commit = await master.setup_commit()
    await master.submit(project["id"], commit["identifier"], **body)
    claim = await master.claim()
    assert claim.status_code == 200, claim.text
    return claim.json()  # type: ignore[no-any-return]


async def test_claim_waits_then_204_and_is_woken_by_submit(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    empty = await master.claim(wait=0.5)
    assert empty.status_code == 204
    waiting = asyncio.create_task(master.claim(wait=20))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    submitted_at = time.monotonic()
    execution = await master.submit(project["id"], commit["identifier"])
    claim = await asyncio.wait_for(waiting, 15)
    assert claim.status_code == 200 and claim.json()["id"] == execution["id"]
    assert time.monotonic() - submitted_at < 10  # woken by the notification, not the 20 s wait
    spec = claim.json()
    assert spec["attempt"] == 1 and spec["code_url"].startswith("/api/agent/executions/")
    code = await master.agent("GET", spec["code_url"])
    assert code.status_code == 200
    assert "~" + hashlib.sha256(code.content).hexdigest() == commit["identifier"]


async def test_input_urls_in_spec(master: MasterClient) -> None:
    spec = await submit_and_claim(master, inputs={"data": ["https://example.com/d/a.csv"]})
    assert spec["inputs"]["data"][0]["url"] == "https://example.com/d/a.csv"
    assert spec["inputs"]["data"][0]["name"] == "a.csv"


async def run_outputs(
    master: MasterClient, spec: dict[str, Any], files: dict[str, bytes]
) -> dict[str, Any]:
    eid, attempt = spec["id"], spec["attempt"]
    prep = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/outputs/prepare",
        json={"attempt": attempt, "files": [{"name": n, "size": len(b)} for n, b in files.items()]},
    )
    assert prep.status_code == 200, prep.text
    outputs = []
    for upload in prep.json()["uploads"]:
        body = files[upload["name"]]
        put = await master.agent("PUT", upload["url"], data=body)
        assert put.status_code == 201, put.text
        assert put.json()["sha256"] == hashlib.sha256(body).hexdigest()
        outputs.append(
            {
                "name": upload["name"],
                "size": len(body),
                "sha256": put.json()["sha256"],
                "metadata": {"k": 1},
            }
        )
    reg = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/outputs",
        json={"attempt": attempt, "outputs": outputs},
    )
    assert reg.status_code == 201, reg.text
    return reg.json()  # type: ignore[no-any-return]


async def test_outputs_upload_register_list_download(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    files = {"model.bin": bytes(range(256)) * 3000, "sub/metrics.json": b'{"a": 1}'}
    first = await run_outputs(master, spec, files)
    again = await run_outputs(master, spec, files)  # registering twice does not duplicate
    assert sorted(d["id"] for d in first["datums"]) == sorted(d["id"] for d in again["datums"])
    data = (
        await master.api("GET", "/api/v0/data/", params={"output_execution": spec["id"]})
    ).json()
    assert data["count"] == 2
    for datum in data["results"]:
        assert datum["output_execution"]["id"] == spec["id"] and datum["metadata"] == {"k": 1}
        body = await master.api("GET", f"/api/v0/data/{datum['id']}/download/")
        assert body.headers["Content-Disposition"].startswith("attachment")
        assert body.content == files[datum["name"]]
        assert datum["sha256"] == hashlib.sha256(files[datum["name"]]).hexdigest()
        agent_copy = await master.agent(
            "GET",
            f"/api/agent/data/{datum['id']}/download",
            params={"execution": spec["id"], "attempt": spec["attempt"]},
        )
        assert agent_copy.content == files[datum["name"]]
    bad = await master.agent(
        "POST",
        f"/api/agent/executions/{spec['id']}/outputs",
        json={"attempt": spec["attempt"], "outputs": [{"name": "never"}]},
    )
    assert bad.status_code == 400


async def test_events_live_then_archived_are_the_same(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    eid, attempt = spec["id"], spec["attempt"]
    events = [
        {"stream": "stdout", "message": f"line {i}", "time": "2026-01-01T00:00:00.000000"}
        for i in range(150)
    ]
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/events",
        json={
            "attempt": attempt,
            "events": events,
            "metadata": [
                {"time": "2026-01-01T00:00:01", "data": {"loss": 0.5}},
                {"time": "2026-01-01T00:00:02", "data": {"loss": 0.25}},
            ],
        },
    )
    assert resp.status_code == 200 and resp.json() == {"stop": False}
    live = (
        await master.api("GET", f"/api/v0/executions/{eid}/events/", params={"limit": 0})
    ).json()
    some = (
        await master.api("GET", f"/api/v0/executions/{eid}/events/", params={"limit": 10})
    ).json()
    assert some["truncated"] and len(some["events"]) == 10 and some["total"] == live["total"]
    done = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/status",
        json={"attempt": attempt, "status": "complete", "exit_code": 0},
    )
    assert done.json() == {"status": "complete"}
    ctx = master.master.ctx
    assert await ctx.redis.exists(f"vh:log:{eid}") == 0
    with ctx.artifacts.open(f"logs/{eid}.jsonl.gz") as fp:
        archived_lines = gzip.decompress(fp.read()).decode().splitlines()
    # + the two metadata events (hidden by default) and the "complete" status event
    assert len(archived_lines) == live["total"] + 2 + 1
    archived = (
        await master.api("GET", f"/api/v0/executions/{eid}/events/", params={"limit": 0})
    ).json()
    assert archived["events"][: live["total"]] == live["events"]
    assert "complete" in archived["events"][-1]["message"]
    execution = await master.execution(eid)
    assert execution["metadata"] == {"loss": 0.25} and execution["duration"] is not None
    meta = (await master.api("GET", f"/api/v0/executions/{eid}/metadata/")).json()
    assert [m["data"]["loss"] for m in meta] == [0.5, 0.25]
    every = (
        await master.api(
            "GET",
            f"/api/v0/executions/{eid}/events/",
            params={"limit": 0, "streams": "stdout,stderr,status,progress,metadata"},
        )
    ).json()
    assert every["total"] == len(archived_lines)
    assert [e for e in every["events"] if e["stream"] != "metadata"] == archived["events"]
    stream = await master.api("GET", f"/api/v0/executions/{eid}/events/stream/")
    sse = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: ")]
    assert [e["message"] for e in sse[:-1]] == [e["message"] for e in every["events"]]
    assert sse[-1] == {"status": "complete"}


async def test_event_stream_pushes_live_events(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    eid, attempt = spec["id"], spec["attempt"]
    reader = asyncio.create_task(master.api("GET", f"/api/v0/executions/{eid}/events/stream/"))
    await asyncio.sleep(0.3)
    for i in range(3):
        await master.agent(
            "POST",
            f"/api/agent/executions/{eid}/events",
            json={"attempt": attempt, "events": [{"stream": "stderr", "message": f"warn {i}"}]},
        )
    await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/status",
        json={"attempt": attempt, "status": "error", "exit_code": 1},
    )
    stream = await asyncio.wait_for(reader, 20)
    assert "warn 2" in stream.text and '"status": "error"' in stream.text


async def test_stop_started_via_heartbeat(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    eid, attempt = spec["id"], spec["attempt"]
    hb = await master.agent(
        "POST", f"/api/agent/executions/{eid}/heartbeat", json={"attempt": attempt}
    )
    assert hb.json()["stop"] is False
    stop = await master.api("POST", f"/api/v0/executions/{eid}/stop/")
    assert stop.status_code == 200
    assert (await master.execution(eid))["status"] == "stopping"
    hb = await master.agent(
        "POST", f"/api/agent/executions/{eid}/heartbeat", json={"attempt": attempt}
    )
    assert hb.json()["stop"] is True
    ev = await master.agent(
        "POST", f"/api/agent/executions/{eid}/events", json={"attempt": attempt, "events": []}
    )
    assert ev.json()["stop"] is True
    final = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/status",
        json={"attempt": attempt, "status": "stopped"},
    )
    assert final.status_code == 200
    assert (await master.execution(eid))["status"] == "stopped"


async def test_stale_attempt_is_fenced(master: MasterClient) -> None:
    spec = await submit_and_claim(master)
    eid, attempt = spec["id"], spec["attempt"]
    prep = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/outputs/prepare",
        json={"attempt": attempt, "files": [{"name": "x", "size": 1}]},
    )
    upload_url = prep.json()["uploads"][0]["url"]
    stale = attempt + 5
    calls = [
        ("POST", f"/api/agent/executions/{eid}/heartbeat", {"attempt": stale}),
        (
            "POST",
            f"/api/agent/executions/{eid}/events",
            {"attempt": stale, "events": [{"stream": "stdout", "message": "zombie"}]},
        ),
        (
            "POST",
            f"/api/agent/executions/{eid}/outputs/prepare",
            {"attempt": stale, "files": [{"name": "x", "size": 1}]},
        ),
        (
            "POST",
            f"/api/agent/executions/{eid}/outputs",
            {"attempt": stale, "outputs": [{"name": "x", "size": 1, "sha256": "0" * 64}]},
        ),
        ("POST", f"/api/agent/executions/{eid}/status", {"attempt": stale, "status": "complete"}),
    ]
    for method, path, body in calls:
        resp = await master.agent(method, path, json=body)
        assert resp.status_code == 409, (path, resp.text)
        assert resp.json()["code"] == "stale_attempt"
    code = await master.agent("GET", f"/api/agent/executions/{eid}/code?attempt={stale}")
    assert code.status_code == 409
    put = await master.agent("PUT", upload_url.replace(f"/{attempt}/", f"/{stale}/"), data=b"z")
    assert put.status_code == 409
    execution = await master.execution(eid)
    assert execution["status"] == "started" and execution["attempt"] == attempt
    events = (await master.api("GET", f"/api/v0/executions/{eid}/events/")).json()["events"]
    assert not any(e["message"] == "zombie" for e in events)
    assert await master.master.ctx.store.datums.count_documents({}) == 0


async def test_reaper_requeues_then_crashes(master: MasterClient) -> None:
    ctx = master.master.ctx
    ctx.config.lease_seconds = 0.5
    spec = await submit_and_claim(master)
    eid = spec["id"]
    execution = await wait_status(master, eid, {"queued", "crashed"})
    assert execution["status"] == "queued" and execution["attempt"] == 1
    stale = await master.agent(
        "POST", f"/api/agent/executions/{eid}/status", json={"attempt": 1, "status": "complete"}
    )
    assert stale.status_code == 409
    second = await master.claim(wait=5)
    assert second.status_code == 200 and second.json()["attempt"] == 2
    execution = await wait_status(master, eid, {"crashed", "queued"})
    assert execution["status"] == "crashed" and execution["attempt"] == 2
    # the reaper archives the logs right after the status change a reader may already see
    deadline = time.monotonic() + 20
    while await ctx.redis.exists(f"vh:log:{eid}") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await ctx.redis.exists(f"vh:log:{eid}") == 0  # logs archived
    events = (await master.api("GET", f"/api/v0/executions/{eid}/events/")).json()["events"]
    assert "crashed" in events[-1]["message"]


async def test_reaper_finishes_a_stopping_execution_whose_agent_vanished(
    master: MasterClient,
) -> None:
    master.master.ctx.config.lease_seconds = 0.5
    spec = await submit_and_claim(master)
    await master.api("POST", f"/api/v0/executions/{spec['id']}/stop/")
    execution = await wait_status(master, spec["id"], {"stopped", "queued", "crashed"})
    assert execution["status"] == "stopped"


async def wait_status(
    master: MasterClient, eid: str, statuses: set[str], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution = await master.execution(eid)
        if execution["status"] in statuses or time.monotonic() > deadline:
            return execution
        await asyncio.sleep(0.1)


async def test_restart_reconciles_queue_from_mongo(
    master: MasterClient, master_config: MasterConfig
) -> None:
    project, commit = await master.setup_commit()
    execution = await master.submit(project["id"], commit["identifier"])
    await master.master.stop()
    client = redis.Redis.from_url(master_config.redis_url)
    client.flushdb()
    client.close()
    restarted, port = await start_master(master_config)
    try:
        fresh = MasterClient(
            restarted, f"http://127.0.0.1:{port}", master.admin_token, master.agent_token
        )
        claim = await fresh.claim(wait=2)
        assert claim.status_code == 200 and claim.json()["id"] == execution["id"]
    finally:
        await restarted.stop()


async def test_spec_carries_the_environments_resource_requests(master: MasterClient) -> None:
    store = master.master.ctx.store
    env = await store.environments.find_one({})
    assert env is not None
    await store.environments.update_one(
        {"_id": env["_id"]}, {"$set": {"cpus": 2, "memory_mb": 512, "gpus": 1}}
    )
    spec = await submit_and_claim(master)
    assert spec["environment"] == {
        "id": env["_id"],
        "name": env.get("name", ""),
        "cpus": 2,
        "memory_mb": 512,
        "gpus": 1,
    }
