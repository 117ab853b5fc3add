"""``GET valohai/executions/{id}/events``: the master's event stream relayed to the browser (SSE).

The master's server-sent events pass through one by one (``id``, ``event``: log, progress,
metadata, end; ``data`` as the master sent it), with a keepalive comment when the stream is quiet.
``Last-Event-ID`` or ``?after=`` resume. The relay stops when the stream ends or the browser
goes away; an error after the stream began arrives as ``event: error`` with ``{code, message,
hint}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..client import Event
from ..errors import ValohaiError
from .handlers import ValohaiHandler

#: Seconds of silence after which a keepalive comment goes to the browser.
KEEPALIVE = 15.0


def sse(kind: str, data: Any, event_id: str | None = None) -> str:
    """One server-sent event as text."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


class EventsHandler(ValohaiHandler):
    """Relay one execution's events from the master, as they come."""

    _relay: asyncio.Task[None] | None = None

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        client = self.client()
        await client.get_execution(ref)  # an unknown execution is a JSON 404, not a stream
        after = self.get_argument("after", None) or self.request.headers.get("Last-Event-ID")
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self.link.active_streams += 1
        try:
            self._relay = asyncio.ensure_future(self._pump(client.stream_events(ref, after)))
            with contextlib.suppress(asyncio.CancelledError, StreamClosedError):
                await self._relay
        finally:
            self.link.active_streams -= 1
        with contextlib.suppress(StreamClosedError):
            self.finish()

    def on_connection_close(self) -> None:
        """The browser went away: stop relaying (and reading from the master)."""
        if self._relay is not None:
            self._relay.cancel()

    async def _send(self, text: str) -> None:
        self.write(text)
        await self.flush()

    async def _pump(self, events: AsyncIterator[Event]) -> None:
        await self.flush()  # the headers now: the browser knows the stream is open
        pending: asyncio.Future[Event] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(anext(events))
                while not (await asyncio.wait({pending}, timeout=KEEPALIVE))[0]:
                    await self._send(": keepalive\n\n")
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                except ValohaiError as exc:
                    await self._send(
                        sse("error", {"code": exc.code, "message": exc.message, "hint": exc.hint})
                    )
                    return
                await self._send(sse(event.kind, event.data, event.id))
                if event.kind == "end":
                    return
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
