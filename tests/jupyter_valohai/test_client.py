"""The Python client against a real master and agent: answers, mapped errors, event streams."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jupyter_valohai.client import AsyncClient, Client, Event
from jupyter_valohai.client.calls import to_event
from jupyter_valohai.connection import Connection
from jupyter_valohai.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
)
from jupyter_valohai.services import free_port
from tests.e2e.stack import Stack, make_tarball

YAML = """\
- step:
    name: hello
    image: python:3.11
    command:
      - python hello.py
"""
HELLO = """\
import os
print("hello from the step")
with open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "result.txt"), "w") as f:
    f.write("forty-two")
"""


@contextmanager
def agent_stack(
    root: str, mongo_url: str, db: str, redis_url: str
) -> Iterator[tuple[Stack, Client]]:
    """A real master, one local agent, and a client with the admin token (other modules use it)."""
    s = Stack(root, mongo_url, db, redis_url)
    try:
        s.start_master()
        s.start_agent()
        with Client(s.url, s.admin_token) as c:
            yield s, c
    finally:
        s.stop()


@pytest.fixture
def stack(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Stack]:
    with agent_stack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url) as (s, _):
        yield s


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(stack.url, stack.admin_token) as c:
        yield c


def queue_hello(client: Client) -> dict:
    project = client.ensure_project("demo")
    commit = client.import_package(
        project["id"], make_tarball({"valohai.yaml": YAML, "hello.py": HELLO}), "valohai.yaml"
    )
    assert commit["identifier"].startswith("~")
    return client.create_execution(
        {"project": project["id"], "commit": commit["identifier"], "step": "hello"}
    )


def test_projects_and_environments(client: Client) -> None:
    assert client.me()["username"]
    created = client.create_project("alpha")
    assert client.ensure_project("alpha")["id"] == created["id"]
    assert client.get_project("alpha")["id"] == created["id"]
    assert client.get_project(created["id"])["name"] == "alpha"
    assert [p["name"] for p in client.projects()] == ["alpha"]
    assert client.environments()[0]["slug"]
    with pytest.raises(Conflict):
        client.create_project("alpha")


def test_errors_map_to_classes_with_hints(client: Client, stack: Stack) -> None:
    with pytest.raises(NotFound) as nf:
        client.get_execution("e-missing")
    assert nf.value.status == 404 and "e-missing" in nf.value.message
    project = client.ensure_project("demo")
    with pytest.raises(InvalidInput) as bad:
        client.create_execution({"project": project["id"], "commit": "~nope", "step": "x"})
    assert bad.value.status == 400 and bad.value.hint
    with pytest.raises(NotAuthenticated) as na:
        Client(stack.url, "not-the-token").me()
    assert na.value.hint and "not-the-token" not in str(na.value)


def test_master_down_is_one_line(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailable) as exc:
        Client(url, "secret-token").projects()
    assert str(exc.value).startswith(f"The master at {url} does not answer.")
    assert "\n" not in str(exc.value) and "secret-token" not in str(exc.value)
    assert exc.value.hint


def test_run_stream_outputs_download(client: Client, stack: Stack, tmp_path) -> None:
    execution = queue_hello(client)
    events = list(client.stream_events(execution["id"]))
    assert all(isinstance(e, Event) for e in events)
    assert events[-1].kind == "end" and events[-1].data["status"] == "complete", stack.explain(
        execution["id"]
    )
    messages = [e.data["message"] for e in events if e.kind == "log"]
    assert "hello from the step\n" in messages
    # Resuming after the first event skips it.
    resumed = list(client.stream_events(execution["id"], after=events[0].id))
    assert [e.data for e in resumed] == [e.data for e in events[1:]]

    ref = f"{execution['project']['id']}:latest"
    assert client.get_execution(ref)["id"] == execution["id"]
    assert client.list_executions(project="demo")[0]["id"] == execution["id"]
    assert client.list_executions(status="queued") == []
    logs = client.events(execution["id"])
    assert any(e["message"] == "hello from the step\n" for e in logs)
    assert len(client.events(execution["id"], limit=1)) == 1

    outputs = client.outputs(ref)
    assert [o["name"] for o in outputs] == ["result.txt"]
    path = client.download(outputs[0], str(tmp_path))
    assert Path(path).read_text() == "forty-two"
    assert "already finished" in client.stop_execution(execution["id"])


def test_async_client_same_api(stack: Stack, tmp_path) -> None:
    async def main() -> tuple[list[Event], list[dict], str]:
        async with AsyncClient.from_connection(Connection(stack.url, stack.admin_token)) as ac:
            project = await ac.ensure_project("demo")
            commit = await ac.import_package(
                project["id"],
                make_tarball({"valohai.yaml": YAML, "hello.py": HELLO}),
                "valohai.yaml",
            )
            execution = await ac.create_execution(
                {"project": project["id"], "commit": commit["identifier"], "step": "hello"}
            )
            events = [e async for e in ac.stream_events(execution["id"])]
            outputs = await ac.outputs(execution["id"])
            path = await ac.download(outputs[0], str(tmp_path / "out.txt"))
            with pytest.raises(NotFound):
                await ac.get_project("nope")
            return events, outputs, path

    events, _outputs, path = asyncio.run(main())
    assert events[-1] == Event("end", events[-1].id, {"status": "complete"})
    assert any(e.kind == "log" and e.data["message"] == "hello from the step\n" for e in events)
    assert Path(path).read_text() == "forty-two"


def test_async_master_down(tmp_path) -> None:
    async def main() -> None:
        async with AsyncClient(f"http://127.0.0.1:{free_port()}", "t") as ac:
            await ac.me()

    with pytest.raises(ServiceUnavailable, match="does not answer"):
        asyncio.run(main())


# Ticks until the test creates the release file (no timing: the test decides when it ends).
SLOW = """\
import os, sys, time
for i in range(3000):
    if os.path.exists(sys.argv[1]):
        break
    print("tick", i, flush=True)
    time.sleep(0.1)
print("released", flush=True)
"""


def test_stream_survives_a_master_restart(client: Client, stack: Stack, tmp_path) -> None:
    release = tmp_path / "release"
    project = client.ensure_project("demo")
    yaml = YAML.replace("python hello.py", f"python slow.py {release}")
    commit = client.import_package(
        project["id"], make_tarball({"valohai.yaml": yaml, "slow.py": SLOW}), "valohai.yaml"
    )
    execution = client.create_execution(
        {"project": project["id"], "commit": commit["identifier"], "step": "hello"}
    )
    events: list[Event] = []
    restarted = False
    for event in client.stream_events(execution["id"]):
        events.append(event)
        if event.data.get("message") == "tick 1\n":
            assert stack.master is not None
            stack.master.terminate()
            stack.master.wait(10)
            stack.start_master()  # same port, same Mongo and Redis
            restarted = True
        elif restarted and event.data.get("stream") == "stdout":
            release.touch()  # an event from after the restart came through: let the run end
    assert events[-1].kind == "end" and events[-1].data["status"] == "complete", stack.explain(
        execution["id"]
    )
    # The stream gave exactly what the master stored, each once, in order, across the restart.
    # (Not asserted: that the master stored every tick. The agent gives a batch up after a few
    # seconds of a master away, and a loaded machine restarts a master slower than that.)
    ticks = [e.data["message"] for e in events if e.data.get("stream") == "stdout"]
    stored = [e["message"] for e in client.events(execution["id"]) if e["stream"] == "stdout"]
    assert ticks == stored, stack.explain(execution["id"])
    assert ticks[:2] == ["tick 0\n", "tick 1\n"] and ticks[-1] == "released\n"
    ids = [e.id for e in events if e.kind != "end"]
    assert len(ids) == len(set(ids)), "\n".join(f"{e.id} {e.kind} {e.data}" for e in events)


def test_not_a_master(tmp_path) -> None:
    """A real HTTP server that is no master: one line that says so."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}", "t") as c:
            with pytest.raises(NotFound) as exc:
                c.me()
            assert "answered 404" in exc.value.message
            assert "jupyter-valohai master" in (exc.value.hint or "")
    finally:
        server.shutdown()
        server.server_close()


def test_progress_and_metadata_events_are_decoded() -> None:
    cell = {"type": "cell", "state": "start", "index": 2, "total": 3, "position": 2}
    progress = to_event(
        "progress",
        json.dumps({"stream": "progress", "message": json.dumps(cell), "time": "t"}),
        "5-0",
    )
    assert progress == Event(
        "progress",
        "5-0",
        {"stream": "progress", "message": json.dumps(cell), "time": "t", "data": cell},
    )
    given = {"stream": "metadata", "message": '{"loss": 1}', "time": "t", "data": {"loss": 1}}
    assert to_event("metadata", json.dumps(given), "6-0") == Event("metadata", "6-0", given)
    assert to_event("end", '{"status": "complete"}', None) == Event(
        "end", None, {"status": "complete"}
    )
    assert to_event("log", "not json", "1-0") is None
    assert to_event("message", "", "1-0") is None  # a keepalive
    assert to_event("", '{"stream": "stdout", "message": "x", "time": "t"}', "2-0").kind == "log"
