"""The extension's routes against a real master and agent, through a real Jupyter server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
from tornado.httpclient import HTTPClientError

from tests.e2e.stack import Stack

HELLO = """\
import json, os
print("hello from the extension")
print(json.dumps({"loss": 0.25}))
with open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "result.txt"), "w") as f:
    f.write("forty-two")
"""
SLEEPER = """\
import time
print("sleeping", flush=True)
time.sleep(600)
"""


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each server-sent event in ``text`` (comments skipped)."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_connection_hides_the_token(api, master: Stack) -> None:
    status, body = await api("GET", "connection")
    assert status == 200, body
    assert body["state"] == "ready"
    assert body["url"] == master.url
    assert body["default_project"] == "serverext"
    assert master.admin_token not in json.dumps(body)


async def test_script_execution_through_the_routes(
    api, jp_fetch, jp_root_dir: Path, master: Stack
) -> None:
    (jp_root_dir / "work").mkdir()
    (jp_root_dir / "work" / "hello.py").write_text(HELLO)
    status, execution = await api("POST", "executions", body={"path": "work/hello.py"})
    assert status == 201, execution
    ref = execution["id"]
    assert execution["project"]["name"] == "serverext"

    # The event stream, relayed as SSE until the master's `end`.
    response = await jp_fetch("valohai", "executions", ref, "events", request_timeout=90)
    assert response.headers["Content-Type"] == "text/event-stream"
    assert master.admin_token not in response.body.decode()
    events = sse_events(response.body.decode())
    assert events[-1] == ("end", {"status": "complete"}), events
    messages = [data.get("message", "") for kind, data in events if kind == "log"]
    assert any("hello from the extension" in m for m in messages), messages

    status, got = await api("GET", "executions", ref)
    assert status == 200 and got["status"] == "complete"
    status, listed = await api("GET", "executions", params={"project": "serverext"})
    assert status == 200 and ref in [e["id"] for e in listed["results"]]
    status, outputs = await api("GET", "executions", ref, "outputs")
    assert status == 200 and "result.txt" in [d["name"] for d in outputs["results"]]

    # Resuming after the last event gives only what came after it: the end.
    last_id = [b for b in response.body.decode().split("\n\n") if b.startswith("id: ")][-2]
    after = last_id.splitlines()[0][4:]
    resumed = await jp_fetch(
        "valohai", "executions", ref, "events", headers={"Last-Event-ID": after}
    )
    assert sse_events(resumed.body.decode()) == [("end", {"status": "complete"})]


async def test_events_stream_live_and_stop(api, jp_fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "sleeper.py").write_text(SLEEPER)
    status, execution = await api("POST", "executions", body={"path": "sleeper.py"})
    assert status == 201, execution
    ref = execution["id"]
    chunks: list[bytes] = []
    stream = asyncio.ensure_future(
        jp_fetch(
            "valohai",
            "executions",
            ref,
            "events",
            streaming_callback=chunks.append,
            request_timeout=120,
        )
    )
    # The script prints, then sleeps: its line arrives while the execution still runs.
    while b"sleeping" not in b"".join(chunks):
        assert not stream.done(), b"".join(chunks)
        await asyncio.sleep(0.1)
    status, got = await api("GET", "executions", ref)
    assert got["status"] == "started"
    status, stopped = await api("POST", "executions", ref, "stop")
    assert status == 200, stopped
    assert isinstance(stopped["message"], str)
    await stream
    events = sse_events(b"".join(chunks).decode())
    assert events[-1] == ("end", {"status": "stopped"}), events


async def test_relay_stops_when_the_browser_goes_away(
    api, jp_serverapp, jp_http_port: int, jp_base_url: str, jp_auth_header, jp_root_dir: Path
) -> None:
    (jp_root_dir / "sleeper.py").write_text(SLEEPER)
    _, execution = await api("POST", "executions", body={"path": "sleeper.py"})
    link = jp_serverapp.web_app.settings["valohai_link"]
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    path = f"{jp_base_url}valohai/executions/{execution['id']}/events"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n".encode()
    )
    await writer.drain()
    received = b""
    while b"event: log" not in received:
        received += await reader.read(4096)
        assert received, "the server closed the stream"
    assert link.active_streams == 1
    writer.close()
    while link.active_streams:
        await asyncio.sleep(0.05)
    await api("POST", "executions", execution["id"], "stop")


async def test_bad_input_is_a_clear_4xx_and_creates_nothing(
    api, jp_fetch, jp_root_dir: Path
) -> None:
    (jp_root_dir / "hello.py").write_text(HELLO)
    _, before = await api("GET", "executions")
    cases = [
        ({"path": "../outside.py"}, 403, "permission_denied"),
        ({"path": "/../../etc/passwd"}, 403, "permission_denied"),
        ({"path": "missing.py"}, 400, "invalid"),
        ({"path": "hello.py", "environment": "no-such-env"}, 400, "invalid"),
        ({"path": "hello.py", "project": "no-such-project"}, 404, "not_found"),
        ({"path": "hello.py", "parameters": ["x"]}, 400, "invalid"),
        ({"path": "hello.py", "colour": "red"}, 400, "invalid"),
        ({"path": 7}, 400, "invalid"),
    ]
    for body, code, kind in cases:
        status, error = await api("POST", "executions", body=body)
        assert (status, error["code"]) == (code, kind), (body, error)
        assert error["message"] and "Traceback" not in error["message"]
    for raw in (b"{not json", b"[1, 2]"):
        response = await jp_fetch(
            "valohai", "executions", method="POST", body=raw, raise_error=False
        )
        assert response.code == 400
        assert json.loads(response.body)["code"] == "invalid"
    status, error = await api("GET", "executions", "e-nope")
    assert (status, error["code"]) == (404, "not_found")
    assert error["hint"]
    _, after = await api("GET", "executions")
    assert after["results"] == before["results"]


async def test_notebook_parameters(api, jp_root_dir: Path) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("epochs = 10\nrate = 0.5\nname = 'x'\nverbose = True")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(epochs)")]
    (jp_root_dir / "sub").mkdir()
    nbformat.write(nb, jp_root_dir / "sub" / "train.ipynb")
    status, body = await api("GET", "notebook-parameters", params={"path": "sub/train.ipynb"})
    assert status == 200, body
    assert body["parameters"] == [
        {"name": "epochs", "type": "integer", "default": 10},
        {"name": "rate", "type": "float", "default": 0.5},
        {"name": "name", "type": "string", "default": "x"},
        {"name": "verbose", "type": "flag", "default": True},
    ]
    status, error = await api("GET", "notebook-parameters", params={"path": "sub/none.ipynb"})
    assert (status, error["code"]) == (404, "not_found")
    status, error = await api("GET", "notebook-parameters", params={"path": "../x.ipynb"})
    assert status == 403


async def test_projects_and_environments(api) -> None:
    status, project = await api("POST", "projects", body={"name": "made-here"})
    assert status == 201, project
    status, listed = await api("GET", "projects")
    assert "made-here" in [p["name"] for p in listed["results"]]
    status, error = await api("POST", "projects", body={"name": "made-here"})
    assert (status, error["code"]) == (409, "conflict")
    status, error = await api("POST", "projects", body={})
    assert status == 400
    status, envs = await api("GET", "environments")
    assert status == 200 and envs["results"]


async def test_requests_without_jupyter_auth_are_refused(jp_fetch) -> None:
    for method, parts in [
        ("GET", ("connection",)),
        ("GET", ("executions",)),
        ("POST", ("executions",)),
        ("GET", ("executions", "e-x", "events")),
    ]:
        response = await jp_fetch(
            "valohai",
            *parts,
            method=method,
            headers={"Authorization": ""},
            body=b"{}" if method == "POST" else None,
            raise_error=False,
        )
        assert response.code == 403, (method, parts, response.body)
        assert json.loads(response.body)["code"] == "forbidden"


async def test_cookie_login_needs_xsrf_for_a_post(
    http_server_client, jp_serverapp, jp_base_url: str, jp_root_dir: Path
) -> None:
    """A browser session (login cookie) may read, but may POST only with the XSRF token."""
    (jp_root_dir / "hello.py").write_text(HELLO)
    base = jp_base_url.rstrip("/")
    page = await http_server_client.fetch(f"{base}/login")
    xsrf = _cookie(page.headers.get_list("Set-Cookie"), "_xsrf")
    token = jp_serverapp.identity_provider.token
    try:
        await http_server_client.fetch(
            f"{base}/login",
            method="POST",
            follow_redirects=False,
            headers={"Cookie": f"_xsrf={xsrf}"},
            body=f"_xsrf={xsrf}&password={token}",
        )
    except HTTPClientError as exc:  # 302 to the app: logged in
        assert exc.code == 302, exc
        login = exc.response
    assert login is not None
    session = _cookie(login.headers.get_list("Set-Cookie"), "username-")
    cookies = f"{session}; _xsrf={xsrf}"

    got = await http_server_client.fetch(f"{base}/valohai/connection", headers={"Cookie": cookies})
    assert got.code == 200
    body = json.dumps({"path": "hello.py"})
    refused = await http_server_client.fetch(
        f"{base}/valohai/executions",
        method="POST",
        body=body,
        headers={"Cookie": cookies},
        raise_error=False,
    )
    assert refused.code == 403, refused.body
    assert "_xsrf" in json.loads(refused.body)["message"]
    accepted = await http_server_client.fetch(
        f"{base}/valohai/executions",
        method="POST",
        body=body,
        headers={"Cookie": cookies, "X-XSRFToken": xsrf},
        raise_error=False,
    )
    assert accepted.code == 201, accepted.body
    execution = json.loads(accepted.body)
    await http_server_client.fetch(
        f"{base}/valohai/executions/{execution['id']}/stop",
        method="POST",
        body=b"",
        headers={"Cookie": cookies, "X-XSRFToken": xsrf},
        raise_error=False,
    )


def _cookie(set_cookies: list[str], prefix: str) -> str:
    """``name=value`` of the first Set-Cookie whose name starts with ``prefix``."""
    for header in set_cookies:
        pair = header.split(";", 1)[0]
        if pair.startswith(prefix):
            return pair.split("=", 1)[1] if prefix == "_xsrf" else pair
    raise AssertionError(f"no {prefix} cookie in {set_cookies}")
