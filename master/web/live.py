"""The API's server-sent event streams, for pages: the session cookie instead of a token.

A browser's ``EventSource`` cannot send an ``Authorization`` header, so the pages listen here; the
streams themselves (Redis pub/sub, ``Last-Event-ID`` resumption) are the API's own handlers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.iostream import StreamClosedError

from jupyter_valohai.errors import NotAuthenticated, ValohaiError

from ..api.deployments import BuildLogStreamHandler
from ..api.executions import EventStreamHandler
from ..api.feed import ProjectExecutionStreamHandler
from ..api.sse import KEEPALIVE_SECONDS
from ..feed import feed_topic
from .base import SessionAPIMixin, SessionMixin


class ExecutionEventsStream(SessionAPIMixin, EventStreamHandler):
    """An execution's log lines, progress and metadata as printed; ``end`` when it is over."""


class ProjectFeedStream(SessionAPIMixin, ProjectExecutionStreamHandler):
    """A project's executions, pushed on each change."""


class BuildLogStream(SessionAPIMixin, BuildLogStreamHandler):
    """A deployment endpoint's build log as it grows; ``end`` once the build ended."""


class EnvironmentsStream(SessionMixin):
    """Queue depth, unfinished executions and workers of every environment, pushed on change.

    Wakes on the queues' pushes and on the feeds of the projects the user can see (claims, ends
    and stops change those); re-reads at each keepalive too, so workers that went quiet drop off.
    """

    async def get(self) -> None:
        user = await self.session_user()
        if user is None:
            raise NotAuthenticated("Not logged in.", hint=f"Log in at {self.root}login.")
        notifier = self.ctx.notifier
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        last = ""
        try:
            while True:
                environments = await self.services.environments.list(include_counts=True)
                scope = await self.services.projects.readable(user)
                if scope is None:
                    scope = [p["_id"] async for p in self.ctx.store.projects.find({}, {"_id": 1})]
                topics = [f"queue:{e['id']}" for e in environments]
                topics += [feed_topic(p) for p in scope]
                futures = {topic: notifier.waiter(topic) for topic in topics}
                data = json.dumps(
                    [
                        {
                            k: e.get(k)
                            for k in ("id", "queue_depth", "unfinished_job_count", "workers")
                        }
                        for e in environments
                    ]
                )
                if data != last:
                    self.write(f"event: environments\ndata: {data}\n\n")
                    last = data
                else:
                    self.write(": keepalive\n\n")
                await self.flush()
                try:
                    await asyncio.wait(
                        list(futures.values()),
                        timeout=KEEPALIVE_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for topic, fut in futures.items():
                        notifier.discard(topic, fut)
        except StreamClosedError:
            return

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body = exc.to_dict() if isinstance(exc, ValohaiError) else {"message": "Error"}
        self.set_status(exc.status if isinstance(exc, ValohaiError) else status_code)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))
