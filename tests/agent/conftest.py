"""Fixtures for the agent: a real HTTP peer (stdlib server) that records what the agent sends."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.runtimes.base import Job
from agent.runtimes.local import LocalRuntime

Answer = tuple[int, bytes, str]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Peer:
    """The other end of the agent's HTTP calls; routes answer by (method, path prefix)."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    routes: dict[tuple[str, str], Callable[[Request], Answer]] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def route(self, method: str, prefix: str, answer: Callable[[Request], Answer]) -> None:
        self.routes[(method, prefix)] = answer

    def json_route(self, method: str, prefix: str, body: Any, status: int = 200) -> None:
        self.route(
            method, prefix, lambda r: (status, json.dumps(body).encode(), "application/json")
        )

    def answer(self, req: Request) -> Answer:
        best = max(
            (k for k in self.routes if k[0] == req.method and req.path.startswith(k[1])),
            key=lambda k: len(k[1]),
            default=None,
        )
        if best is None:
            return 200, b"{}", "application/json"
        return self.routes[best](req)

    def wait_for(self, predicate: Callable[[list[Request]], bool], timeout: float = 10) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: predicate(self.requests), timeout), self.requests

    def posts(self, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(prefix)]


@pytest.fixture
def peer() -> Iterator[Peer]:
    state = Peer()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self.command, self.path, dict(self.headers), body, time.monotonic())
            status, data, ctype = state.answer(req)
            with state.arrived:  # recorded before the client sees the answer
                state.requests.append(req)
                state.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Lines:
    """Collects a job's output lines."""

    items: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, stream: str, line: str) -> None:
        with self.lock:
            self.items.append((stream, line))

    def text(self, stream: str) -> str:
        with self.lock:
            return "".join(line for s, line in self.items if s == stream)


def make_job(
    root: Any, commands: list[str], *, env: dict[str, str] | None = None, **spec: Any
) -> tuple[Job, Lines]:
    """A job whose directories live under ``root`` (a pytest tmp_path)."""
    import os

    for sub in ("repository", "inputs", "outputs", "config"):
        (root / sub).mkdir(exist_ok=True)
    lines = Lines()
    job = Job(
        spec={"id": "e-test", "attempt": 1, "kind": "command", "commands": commands, **spec},
        repository=str(root / "repository"),
        inputs=str(root / "inputs"),
        outputs=str(root / "outputs"),
        config=str(root / "config"),
        env=env if env is not None else dict(os.environ),
        emit=lines,
    )
    return job, lines


@pytest.fixture
def new_job(tmp_path: Any) -> Callable[..., tuple[Job, Lines]]:
    """``new_job(commands, **spec)``: a job whose directories live under ``tmp_path``."""
    return lambda commands, **kw: make_job(tmp_path, commands, **kw)


@pytest.fixture
def runtime() -> LocalRuntime:
    return LocalRuntime(stop_grace_seconds=1.0)
