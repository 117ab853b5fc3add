"""Server-sent events of a log (an execution's or an endpoint build's), pushed as they arrive.

One loop for every such stream: resume after ``Last-Event-ID`` (or ``?after=``), wait on the Redis
pub/sub topic of the key rather than polling, keep the connection alive, and end with
``event: end`` once the owner reached a final status and its logs were archived.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

from ..logs import event_topic
from ..services.progress import JSON_STREAMS, parsed
from ..store import Doc

KEEPALIVE_SECONDS = 15.0


def public_event(event: dict) -> dict:
    return {"stream": event["stream"], "message": event["message"], "time": event["time"]}


def sse_message(event: dict) -> str:
    """One server-sent event: ``log`` for log lines, else the stream's name with parsed data."""
    data = public_event(event)
    kind = "log"
    if event["stream"] in JSON_STREAMS:
        kind = event["stream"]
        data["data"] = parsed(event)
    return f"id: {event['id']}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


async def follow_log(
    handler: RequestHandler,
    ctx: Any,
    key: str,
    doc: Doc,
    reload: Callable[[], Awaitable[Doc]],
    ended: Callable[[Doc], bool],
) -> None:
    """Stream the log of ``key`` to ``handler``'s client until it ended (see the module doc).

    ``doc`` is the owner as just read; ``reload`` reads it again. It is re-read only when its
    status may have changed: a status event came, or nothing did (the logs were archived, or a
    keepalive is due). Log lines alone never touch MongoDB, however many viewers follow them.
    """
    last = handler.request.headers.get("Last-Event-ID") or handler.get_query_argument("after", None)
    topic = event_topic(key)
    handler.set_header("Content-Type", "text/event-stream")
    handler.set_header("Cache-Control", "no-cache")
    handler.set_header("X-Accel-Buffering", "no")
    notifier = ctx.notifier
    fresh = True  # doc was just read
    try:
        while True:
            fut = notifier.waiter(topic)
            if not fresh:
                doc = await reload()
            done = ended(doc) and doc.get("logs_archived")
            events = await ctx.logs.read(key, bool(doc.get("logs_archived")), after=last or None)
            for event in events:
                handler.write(sse_message(event))
                last = event["id"]
            fresh = bool(events) and all(e["stream"] != "status" for e in events)
            if done:
                notifier.discard(topic, fut)
                handler.write(f"event: end\ndata: {json.dumps({'status': doc['status']})}\n\n")
                await handler.flush()
                break
            await handler.flush()
            if not await notifier.wait(topic, fut, KEEPALIVE_SECONDS):
                handler.write(": keepalive\n\n")
    except StreamClosedError:
        return
    handler.finish()
