"""``GET /api/v0/projects/{id}/executions/stream/``: a project's executions pushed as they change.

Server-sent events, one ``event: execution`` (``data``: the execution's JSON, as
``GET /api/v0/executions/{id}/`` answers) per change of status or cells, with ``id:`` the feed
entry (:mod:`master.feed`). A new viewer first gets the current page (``?limit=``, default 50,
oldest first so the newest arrives last) and then the changes; a viewer resuming with
``Last-Event-ID`` (or ``?after=``) gets only the changes since, or the page again when the feed
no longer reaches back that far. The stream never ends by itself; a comment keeps it alive.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.iostream import StreamClosedError

from jupyter_valohai.errors import InvalidInput, NotFound

from ..feed import feed_topic
from ..services.describe import Describer
from .base import BaseHandler

KEEPALIVE_SECONDS = 15.0
DEFAULT_PAGE = 50
MAX_PAGE = 500


def execution_message(entry_id: str, execution: dict[str, Any]) -> str:
    return f"id: {entry_id}\nevent: execution\ndata: {json.dumps(execution, default=str)}\n\n"


class ProjectExecutionStreamHandler(BaseHandler):
    async def get(self, project_id: str) -> None:
        project = await self.project_for(project_id)
        pid = project["_id"]
        try:
            limit = int(self.arg("limit") or DEFAULT_PAGE)
        except ValueError:
            raise InvalidInput("limit must be an integer.") from None
        limit = min(max(limit, 0), MAX_PAGE)
        last = self.request.headers.get("Last-Event-ID") or self.arg("after") or None
        feed, notifier = self.ctx.feed, self.ctx.notifier
        topic = feed_topic(pid)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        fut = notifier.waiter(topic)  # before looking: a change meanwhile is not missed
        try:
            if last is None or not await feed.covers(pid, last):
                last = await feed.last_id(pid)
                docs, _ = await self.services.executions.list({"project": [pid]}, limit, 0)
                describer = Describer(self.ctx, self.base)
                for doc in reversed(docs):
                    self.write(execution_message(last, await describer.execution(doc)))
            await self.flush()
            while True:
                describer = Describer(self.ctx, self.base)
                for entry_id, execution_id in await feed.read(pid, last):
                    try:
                        doc = await self.services.executions.get(execution_id)
                    except NotFound:
                        continue
                    self.write(execution_message(entry_id, await describer.execution(doc)))
                    last = entry_id
                await self.flush()
                if not await notifier.wait(topic, fut, KEEPALIVE_SECONDS):
                    self.write(": keepalive\n\n")
                fut = notifier.waiter(topic)
        except StreamClosedError:
            notifier.discard(topic, fut)
            return
