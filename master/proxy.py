"""The master's HTTP server: Tornado's, with proxy headers applied only to requests carrying one.

Behind a reverse proxy the master takes the client's address and scheme from ``X-Forwarded-For``
/ ``X-Real-Ip`` and ``X-Scheme`` / ``X-Forwarded-Proto`` (Tornado's ``xheaders``), so links and
secure cookies say ``https``. Tornado's own adapter validates an address on every request, with
``getaddrinfo``, even when no proxy header came: ~4% of a cached API GET (docs/performance.md).
This one does exactly what Tornado's does, for the requests that carry one of those headers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from tornado import httputil
from tornado.httpserver import HTTPServer

PROXY_HEADERS = ("X-Forwarded-For", "X-Real-Ip", "X-Scheme", "X-Forwarded-Proto")


class ProxyHeadersServer(HTTPServer):
    """``HTTPServer(app, xheaders=True)``, paying for proxy headers only when they are sent."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        kwargs["xheaders"] = False  # applied by _WhenSent instead
        super().initialize(*args, **kwargs)

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return _WhenSent(super().start_request(server_conn, request_conn), request_conn)


class _WhenSent(httputil.HTTPMessageDelegate):
    """Tornado's proxy adapter (``httpserver._ProxyAdapter``), skipped for a request without
    proxy headers (for which it changes nothing)."""

    def __init__(
        self, delegate: httputil.HTTPMessageDelegate, connection: httputil.HTTPConnection
    ) -> None:
        self.delegate = delegate
        self.connection = connection
        self.applied = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        if any(name in headers for name in PROXY_HEADERS):
            self.connection.context._apply_xheaders(headers)  # type: ignore[attr-defined]
            self.applied = True
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()
        self._cleanup()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.applied:  # the next request on this connection starts from the socket's values
            self.connection.context._unapply_xheaders()  # type: ignore[attr-defined]
            self.applied = False
