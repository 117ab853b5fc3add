"""The master's server-sent events relayed to the browser.

- ``GET valohai/executions/{id}/events``: one execution's events (``event``: log, progress,
  metadata, end), until it ends.
- ``GET valohai/projects/{id}/executions/events``: the project's executions as they change
  (``event: execution``, ``data``: the execution), the current page first; it never ends by
  itself (the browser's EventSource reconnects if the master goes away).

Events pass through one by one (``id``, ``event``, ``data`` as the master sent it), with a
keepalive comment when the stream is quiet. ``Last-Event-ID`` or ``?after=`` resume. A relay
stops when the stream ends or the browser goes away; an error after the stream began arrives as
``event: error`` with ``{code, message, hint}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..client import Event
from ..client.calls import error_from_answer, transport_error
from ..errors import ValohaiError
from .handlers import ValohaiHandler

#: Seconds of silence after which a keepalive comment goes to the browser.
KEEPALIVE = 15.0


def sse(kind: str, data: Any, event_id: str | None = None) -> str:
    """One server-sent event as text."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


class RelayHandler(ValohaiHandler):
    """Relay a stream of events from the master, as they come."""

    _relay: asyncio.Task[None] | None = None

    def resume_after(self) -> str | None:
        return self.get_argument("after", None) or self.request.headers.get("Last-Event-ID")

    async def relay(self, events: AsyncIterator[Event]) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self.link.active_streams += 1
        try:
            self._relay = asyncio.ensure_future(self._pump(events))
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


class EventsHandler(RelayHandler):
    """``GET valohai/executions/{id}/events``: one execution's events, until it ends."""

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        client = self.client()
        await client.get_execution(ref)  # an unknown execution is a JSON 404, not a stream
        await self.relay(client.stream_events(ref, self.resume_after()))


class ProjectEventsHandler(RelayHandler):
    """``GET valohai/projects/{id}/executions/events``: the project's executions as they change."""

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        client = self.client()
        project = await client.get_project(ref)  # an unknown project is a JSON 404
        conn = self.link.connection
        assert conn is not None  # a client exists, so the link is ready
        limit = self.get_argument("limit", None)
        await self.relay(
            project_events(conn.url, conn.token, project["id"], self.resume_after(), limit)
        )


async def project_events(
    url: str, token: str, project_id: str, after: str | None, limit: str | None
) -> AsyncIterator[Event]:
    """The master's ``projects/{id}/executions/stream/`` as events (``kind``: execution)."""
    headers = {"Authorization": f"Token {token}", "Accept": "text/event-stream"}
    if after:
        headers["Last-Event-ID"] = after
    params = {"limit": limit} if limit else None
    path = f"/api/v0/projects/{project_id}/executions/stream/"
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(30, read=None)
    ) as http:
        try:
            async with aconnect_sse(http, "GET", path, params=params) as src:
                if src.response.is_error:
                    content = await src.response.aread()
                    raise error_from_answer(src.response.status_code, content, url)
                async for message in src.aiter_sse():
                    if message.event != "execution":
                        continue
                    yield Event("execution", message.id or None, json.loads(message.data))
        except httpx.HTTPError as exc:
            raise transport_error(exc, url) from None
