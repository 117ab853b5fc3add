"""Executions: create, list, get, stop, events (JSON and server-sent), metadata."""

from __future__ import annotations

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.models import TERMINAL_STATUSES

from ..services.common import page, page_params
from ..services.describe import Describer
from ..services.members import EDITOR
from ..services.progress import parse_streams
from ..store import Doc
from .base import BaseHandler
from .sse import follow_log, public_event

DEFAULT_EVENT_LIMIT = 100


class ExecutionsHandler(BaseHandler):
    async def get(self) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        scope = await self.scope(self.arg("project"))
        docs, count = await self.services.executions.list(self.query(), limit, offset, scope)
        describer = Describer(self.ctx, self.base)
        exclude = set(filter(None, (self.arg("exclude") or "").split(",")))
        results = await describer.executions(docs, exclude)
        self.write_json(
            page(results, count, self.base + "/api/v0/executions/", self.query(), limit, offset)
        )

    async def post(self) -> None:
        known: dict[str, Doc] = {"users": self.user}
        doc = await self.services.executions.create(self.user, self.body(), known)
        describer = Describer(self.ctx, self.base)
        for collection, read in known.items():  # read by the submit: not again for its answer
            describer.know(collection, read)
        described = await describer.execution(doc)
        self.set_header("Location", described["url"])
        self.write_json(described, 201)


class ExecutionHandler(BaseHandler):
    async def get(self, ref: str) -> None:
        doc = await self.execution_for(ref)
        exclude = set(filter(None, (self.arg("exclude") or "").split(",")))
        self.write_json_bytes(await Describer(self.ctx, self.base).execution_json(doc, exclude))


class StopHandler(BaseHandler):
    async def post(self, ref: str) -> None:
        doc = await self.execution_for(ref, EDITOR)
        message = await self.services.executions.stop(doc)
        self.write_json({"message": message})


class EventsHandler(BaseHandler):
    """The last ``limit`` events (``limit=0``: all) of the ``?streams=`` asked for.

    The default streams are stdout, stderr and status, what valohai-cli expects; ``progress`` and
    ``metadata`` come only when asked for.
    """

    async def get(self, ref: str) -> None:
        doc = await self.execution_for(ref)
        try:
            limit = int(self.arg("limit") or DEFAULT_EVENT_LIMIT)
        except ValueError:
            raise InvalidInput("limit must be an integer.") from None
        streams = parse_streams(self.arg("streams"))
        events = await self.ctx.logs.read(doc["_id"], bool(doc.get("logs_archived")))
        events = [e for e in events if e["stream"] in streams]
        total = len(events)
        if limit > 0:
            events = events[-limit:]
        self.write_json(
            {
                "total": total,
                "truncated": len(events) < total,
                "events": [public_event(e) for e in events],
            }
        )


class EventStreamHandler(BaseHandler):
    """Server-sent events: every event of every stream as it arrives; ends after the end.

    ``event: log`` for stdout/stderr/status, ``event: progress`` and ``event: metadata`` (their
    ``data`` also holds the parsed object), then ``event: end`` with the terminal status.
    """

    async def get(self, ref: str) -> None:
        doc = await self.execution_for(ref)
        execution_id = doc["_id"]
        await follow_log(
            self,
            self.ctx,
            execution_id,
            doc,
            reload=lambda: self.services.executions.get(execution_id),
            ended=lambda d: d["status"] in TERMINAL_STATUSES,
        )


class MetadataHandler(BaseHandler):
    async def get(self, ref: str) -> None:
        doc = await self.execution_for(ref)
        self.write_json(await Describer(self.ctx, self.base).metadata_entries(doc["_id"]))
