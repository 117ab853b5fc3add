"""The API's server-sent event streams, for pages: the session cookie instead of a token.

A browser's ``EventSource`` cannot send an ``Authorization`` header, so the pages listen here; the
streams themselves (Redis pub/sub, ``Last-Event-ID`` resumption) are the API's own handlers.
"""

from __future__ import annotations

from ..api.deployments import BuildLogStreamHandler
from ..api.executions import EventStreamHandler
from ..api.feed import ProjectExecutionStreamHandler
from .base import SessionAPIMixin


class ExecutionEventsStream(SessionAPIMixin, EventStreamHandler):
    """An execution's log lines, progress and metadata as printed; ``end`` when it is over."""


class ProjectFeedStream(SessionAPIMixin, ProjectExecutionStreamHandler):
    """A project's executions, pushed on each change."""


class BuildLogStream(SessionAPIMixin, BuildLogStreamHandler):
    """A deployment endpoint's build log as it grows; ``end`` once the build ended."""
