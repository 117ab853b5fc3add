"""Routes the panel needs beyond the basics: who we are, outputs into the root dir, the project's
pushed execution list, and which notebook an execution ran."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.serverext.outputs import output_path
from tests.e2e.stack import Stack

from .test_handlers import HELLO, sse_events


async def test_connection_says_who_we_are(api) -> None:
    status, body = await api("GET", "connection")
    assert status == 200, body
    assert body["user"] == {"username": "admin"}


async def wait_complete(jp_fetch, ref: str) -> None:
    response = await jp_fetch("valohai", "executions", ref, "events", request_timeout=120)
    assert sse_events(response.body.decode())[-1] == ("end", {"status": "complete"})


async def test_output_fetched_into_the_root_dir_and_notebook_path_kept(
    api, jp_fetch, jp_root_dir: Path
) -> None:
    (jp_root_dir / "work").mkdir()
    (jp_root_dir / "work" / "hello.py").write_text(HELLO)
    status, execution = await api("POST", "executions", body={"path": "work/hello.py"})
    assert status == 201, execution
    assert execution["runtime_config"]["jupyter_path"] == "work/hello.py"
    ref = execution["id"]
    await wait_complete(jp_fetch, ref)
    _, got = await api("GET", "executions", ref)
    assert got["runtime_config"] == {"jupyter_path": "work/hello.py"}

    _, outputs = await api("GET", "executions", ref, "outputs")
    datum = next(d for d in outputs["results"] if d["name"] == "result.txt")
    status, answer = await api("POST", "executions", ref, "outputs", datum["id"], "fetch")
    assert status == 200, answer
    expected = f"valohai-outputs/serverext/{execution['counter']}/result.txt"
    assert answer == {"path": expected}
    assert (jp_root_dir / expected).read_text() == "forty-two"
    assert not [p for p in (jp_root_dir / expected).parent.iterdir() if p.name.startswith(".")]

    # Again: the same file, replaced whole. What Lab's /files/ serves is that file.
    status, again = await api("POST", "executions", ref, "outputs", datum["id"], "fetch")
    assert (status, again) == (200, answer)
    served = await jp_fetch("files", *expected.split("/"))
    assert served.body == b"forty-two"

    status, missing = await api("POST", "executions", ref, "outputs", "d-nope", "fetch")
    assert status == 404 and "no output" in missing["message"], missing
    status, missing = await api("POST", "executions", "e-nope", "outputs", datum["id"], "fetch")
    assert status == 404, missing


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../b", "/etc/passwd", "C:/x", "a//b", "./a", ""]
)
def test_output_names_that_would_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        output_path({"counter": 3, "project": {"id": "p-1", "name": "demo"}}, name)


def test_output_path_keeps_folders_and_cleans_the_project_name() -> None:
    execution = {"counter": 7, "project": {"id": "p-1", "name": "my project/../x"}}
    assert (
        output_path(execution, "plots/a b.png") == "valohai-outputs/my-project-..-x/7/plots/a b.png"
    )
    assert output_path({"counter": 1, "project": {"id": "p-9", "name": ".."}}, "f").startswith(
        "valohai-outputs/p-9/1/"
    )


async def read_until(reader: asyncio.StreamReader, received: bytes, needle: bytes) -> bytes:
    while needle not in received:
        chunk = await asyncio.wait_for(reader.read(65536), 120)  # a guard, not a timing
        assert chunk, "the server closed the stream"
        received += chunk
    return received


async def test_project_events_push_executions_started_anywhere(
    api,
    jp_serverapp,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, Any],
    jp_root_dir: Path,
    master: Stack,
) -> None:
    status, project = await api("POST", "projects", body={"name": "pushed"})
    assert status == 201, project
    link = jp_serverapp.web_app.settings["valohai_link"]
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    path = f"{jp_base_url}valohai/projects/{project['id']}/executions/events"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n".encode()
    )
    await writer.drain()
    received = await read_until(reader, b"", b"\r\n\r\n")
    assert b"200 OK" in received.split(b"\r\n")[0], received
    assert b"text/event-stream" in received

    # An execution submitted elsewhere (not through this server) shows up, up to its end.
    (jp_root_dir / "hello.py").write_text(HELLO)
    status, execution = await api(
        "POST", "executions", body={"path": "hello.py", "project": "pushed"}
    )
    assert status == 201, execution
    received = await read_until(reader, received, b'"status": "complete"')
    writer.close()
    body = received.split(b"\r\n\r\n", 1)[1].decode()
    # Chunked transfer: each event is one chunk, so its lines come whole.
    seen = [
        (data["id"], data["status"])
        for data in (json.loads(m) for m in re.findall(r"^data: (\{.*\})\r?$", body, re.M))
    ]
    assert "event: execution" in body
    # The feed sends each execution's state as it is when read: a claim within milliseconds of
    # the submit may leave "queued" out, but the states come in order and end complete.
    assert {eid for eid, _ in seen} == {execution["id"]}, seen
    order = ["queued", "started", "complete"]
    statuses = [status for _, status in seen]
    assert statuses[0] in ("queued", "started"), seen
    assert statuses == sorted(statuses, key=order.index), seen
    assert statuses[-1] == "complete", seen
    assert master.admin_token not in body
    while link.active_streams:
        await asyncio.sleep(0.05)


async def test_project_events_of_an_unknown_project_are_a_json_404(api) -> None:
    status, body = await api("GET", "projects", "p-nope", "executions", "events")
    assert status == 404 and body["code"] == "not_found", body
