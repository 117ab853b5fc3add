"""A local HTTP(S) server that records every request and answers like a cloud's compute API.

No emulator of the Azure, GCE or OpenStack compute APIs runs here, so the providers' official SDKs
are pointed at this server instead. It keeps each request (method, path, query, JSON body, headers)
for the test to assert on, and hands it to a :class:`FakeApi` that answers in the shapes the cloud
documents (see tests/providers/fake_*.py), keeping just enough state for a group to scale up and
down.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # the decoded JSON body, the text of any other body, or None
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Recorded, "re.Match[str]"], Reply]


class FakeApi:
    """Routes of one fake API: ``(method, path regex, handler)``; the first full match answers."""

    base_url = ""  # set by the server when it starts: answers refer back to it

    def routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def not_found(self, request: Recorded) -> Reply:
        return Reply(404, {"error": {"code": "NotFound", "message": f"no route {request.path}"}})


class RecordingServer:
    """Serve a :class:`FakeApi` on 127.0.0.1 (a free port) in a thread; TLS when given a cert."""

    def __init__(self, api: FakeApi, *, cert: tuple[str, str] | None = None) -> None:
        self.api = api
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._routes = [(m, re.compile(p), h) for m, p, h in api.routes()]
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        scheme = "http"
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        api.base_url = self.url
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Return the recorded requests with this method and whose path fully matches ``path``."""
        with self._lock:
            recorded = list(self.requests)
        return [
            r
            for r in recorded
            if (method is None or r.method == method)
            and (path is None or re.fullmatch(path, r.path))
        ]

    def dispatch(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                try:
                    return handler(request, match)
                except Exception as exc:  # a bug in a fake: show it to the SDK, and in the test
                    return Reply(500, {"error": {"code": "FakeBug", "message": repr(exc)}})
        return self.api.not_found(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test asserts on server.requests

            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body: Any = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode("utf-8", "replace")
                request = Recorded(
                    method=self.command,
                    path=urllib.parse.unquote(parts.path),
                    query=dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
                    body=body,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                reply = server.dispatch(request)
                if reply.body is None:
                    data = b""
                elif isinstance(reply.body, bytes):
                    data = reply.body
                else:
                    data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        return _Handler
