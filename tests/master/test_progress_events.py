"""Progress and metadata streams: cells on the execution, the events filter, server-sent events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mastertest import MasterClient

T0 = "2026-11-29T04:00:00.000000Z"


async def claim_notebook(master: MasterClient) -> tuple[str, int]:
    project, commit = await master.setup_commit()
    await master.submit(project["id"], commit["identifier"], step="nb")
    claim = await master.claim()
    assert claim.status_code == 200, claim.text
    return claim.json()["id"], claim.json()["attempt"]


def cell(state: str, index: int, position: int, **extra: Any) -> dict[str, Any]:
    event = {
        "type": "cell",
        "state": state,
        "index": index,
        "total": 3,
        "position": position,
        "source": f"print({index})",
        "time": f"2026-11-29T04:00:0{index}.000000Z",
        **extra,
    }
    return {"stream": "progress", "message": json.dumps(event), "time": event["time"]}


def out(message: str, at: str = T0) -> dict[str, Any]:
    return {"stream": "stdout", "message": message, "time": at}


async def post(
    master: MasterClient, eid: str, attempt: int, events: list, metadata: list | None = None
) -> Any:
    return await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/events",
        json={"attempt": attempt, "events": events, "metadata": metadata or []},
    )


async def test_cells_and_current_cell_follow_progress_events(master: MasterClient) -> None:
    eid, attempt = await claim_notebook(master)
    described = await master.execution(eid)
    assert described["cells"] == [] and described["current_cell"] is None

    resp = await post(master, eid, attempt, [cell("start", 1, 1), out("one\n")])
    assert resp.status_code == 200, resp.text
    described = await master.execution(eid)
    assert described["current_cell"] == 1
    assert described["cells"] == [
        {
            "index": 1,
            "position": 1,
            "source": "print(1)",
            "state": "running",
            "started_at": "2026-11-29T04:00:01.000000",
            "duration": None,
        }
    ]

    # An end in a later batch; a whole cell (start and end) and a start in one batch.
    await post(
        master,
        eid,
        attempt,
        [
            cell("end", 1, 1, duration=0.5, status="ok"),
            cell("start", 2, 2),
            cell("end", 2, 2, duration=1.25, status="error"),
            cell("start", 4, 3),
        ],
    )
    described = await master.execution(eid)
    assert described["current_cell"] == 4
    states = [(c["index"], c["position"], c["state"], c["duration"]) for c in described["cells"]]
    assert states == [(1, 1, "ok", 0.5), (2, 2, "error", 1.25), (4, 3, "running", None)]
    assert described["cells"][0]["started_at"] == "2026-11-29T04:00:01.000000"

    await post(master, eid, attempt, [cell("end", 4, 3, duration=2, status="ok")])
    described = await master.execution(eid)
    assert described["current_cell"] is None
    assert [c["state"] for c in described["cells"]] == ["ok", "error", "ok"]


async def test_a_cell_running_when_the_execution_ends_is_an_error(master: MasterClient) -> None:
    eid, attempt = await claim_notebook(master)
    await post(master, eid, attempt, [cell("start", 1, 1)])
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/status",
        json={"attempt": attempt, "status": "stopped", "exit_code": -15},
    )
    assert resp.status_code == 200, resp.text
    described = await master.execution(eid)
    assert described["current_cell"] is None
    assert [c["state"] for c in described["cells"]] == ["error"]


async def test_unknown_streams_and_bad_progress_are_refused(master: MasterClient) -> None:
    eid, attempt = await claim_notebook(master)
    for events in (
        [{"stream": "metadata", "message": "{}"}],
        [{"stream": "bogus", "message": "x"}],
        [{"stream": "progress", "message": "not json"}],
        [{"stream": "progress", "message": json.dumps({"type": "cell", "state": "start"})}],
        [cell("end", 1, 1)],  # an end needs a status
    ):
        resp = await post(master, eid, attempt, [out("kept?\n"), *events])
        assert resp.status_code == 400, (events, resp.text)
        assert resp.json()["message"]
    resp = await post(master, eid, attempt, [{"stream": "status", "message": "agent note"}])
    assert resp.status_code == 200, resp.text
    events = (await master.api("GET", f"/api/v0/executions/{eid}/events/")).json()["events"]
    assert "kept?\n" not in [e["message"] for e in events]  # a refused batch adds nothing
    assert events[-1] == {"stream": "status", "message": "agent note", "time": events[-1]["time"]}


async def test_events_api_hides_progress_and_metadata_unless_asked(master: MasterClient) -> None:
    eid, attempt = await claim_notebook(master)
    at = "2026-11-29T04:00:01.500000"
    resp = await post(
        master,
        eid,
        attempt,
        [
            cell("start", 1, 1),
            out('{"loss": 0.5}\n', at),
            out("after\n"),
            cell("end", 1, 1, duration=1, status="ok"),
        ],
        [{"time": at, "data": {"loss": 0.5}}],
    )
    assert resp.status_code == 200, resp.text
    path = f"/api/v0/executions/{eid}/events/"

    default = (await master.api("GET", path, params={"limit": 0})).json()
    assert {e["stream"] for e in default["events"]} == {"status", "stdout"}
    assert default["total"] == len(default["events"])

    everything = await master.api(
        "GET", path, params={"limit": 0, "streams": "stdout,stderr,status,progress,metadata"}
    )
    events = [e for e in everything.json()["events"] if e["stream"] != "status"]
    assert [e["stream"] for e in events] == ["progress", "stdout", "metadata", "stdout", "progress"]
    assert json.loads(events[2]["message"]) == {"loss": 0.5} and events[2]["time"] == at
    assert json.loads(events[4]["message"])["status"] == "ok"

    only = (await master.api("GET", path, params={"limit": 0, "streams": "progress"})).json()
    assert [json.loads(e["message"])["state"] for e in only["events"]] == ["start", "end"]

    bad = await master.api("GET", path, params={"streams": "stdout,nope"})
    assert bad.status_code == 400 and "nope" in bad.json()["message"]
    assert bad.json()["hint"]


def parse_sse(text: str) -> list[dict[str, Any]]:
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            fields["data"] = json.loads(fields["data"])
            messages.append(fields)
    return messages


async def test_event_stream_carries_progress_and_metadata(master: MasterClient) -> None:
    eid, attempt = await claim_notebook(master)
    reader = asyncio.create_task(master.api("GET", f"/api/v0/executions/{eid}/events/stream/"))
    await asyncio.sleep(0.3)
    at = "2026-11-29T04:00:01.500000"
    await post(
        master,
        eid,
        attempt,
        [cell("start", 1, 1), out('{"acc": 1}\n', at)],
        [{"time": at, "data": {"acc": 1}}],
    )
    await post(master, eid, attempt, [cell("end", 1, 1, duration=0.25, status="ok")])
    await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/status",
        json={"attempt": attempt, "status": "complete", "exit_code": 0},
    )
    stream = await asyncio.wait_for(reader, 20)
    messages = parse_sse(stream.text)
    kinds = [m["event"] for m in messages if m["event"] != "log" or m["data"]["stream"] == "stdout"]
    assert kinds == ["progress", "log", "metadata", "progress", "end"]
    progress = [m for m in messages if m["event"] == "progress"]
    assert progress[0]["data"]["stream"] == "progress"
    assert progress[0]["data"]["data"]["state"] == "start"
    assert progress[1]["data"]["data"] == json.loads(progress[1]["data"]["message"])
    assert progress[1]["data"]["data"]["duration"] == 0.25
    metadata = next(m for m in messages if m["event"] == "metadata")
    assert metadata["data"]["data"] == {"acc": 1} and metadata["id"]
    assert messages[-1]["data"] == {"status": "complete"}

    # Resuming after the first progress event starts right after it.
    again = await master.api(
        "GET",
        f"/api/v0/executions/{eid}/events/stream/",
        headers={"Last-Event-ID": progress[0]["id"]},
    )
    resumed = parse_sse(again.text)
    assert resumed[0]["event"] == "log" and resumed[0]["data"]["message"] == '{"acc": 1}\n'
    assert [m["event"] for m in resumed].count("progress") == 1
