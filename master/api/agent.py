"""The agent API (docs/agent-protocol.md), authenticated by a worker-group token."""

from __future__ import annotations

import asyncio
import os
import posixpath
import tempfile
from typing import Any
from urllib.parse import unquote

from tornado.web import stream_request_body

from jupyter_valohai.errors import InvalidInput, NotFound, PayloadTooLarge

from ..services.agent import parse_attempt
from .base import BaseHandler


class AgentHandler(BaseHandler):
    auth = "agent"


class ClaimHandler(AgentHandler):
    async def post(self) -> None:
        body = self.body()
        worker = body.get("worker") or {}
        if not isinstance(worker, dict):
            raise InvalidInput("'worker' must be an object {id, name, version}.")
        try:
            wait = float(body.get("wait", 0) or 0)
        except (TypeError, ValueError):
            raise InvalidInput("'wait' must be a number of seconds.") from None
        spec = await self.services.agent.claim(self.environment, worker, wait)
        if spec is None:
            self.set_status(204)
            self.finish()
        else:
            self.write_json(spec)


class HeartbeatHandler(AgentHandler):
    async def post(self, execution_id: str) -> None:
        attempt = parse_attempt(self.body().get("attempt"))
        self.write_json(
            await self.services.agent.heartbeat(self.environment, execution_id, attempt)
        )


class AgentEventsHandler(AgentHandler):
    async def post(self, execution_id: str) -> None:
        body = self.body()
        answer = await self.services.agent.events(
            self.environment,
            execution_id,
            parse_attempt(body.get("attempt")),
            body.get("events"),
            body.get("metadata"),
        )
        self.write_json(answer)


class AgentStatusHandler(AgentHandler):
    async def post(self, execution_id: str) -> None:
        body = self.body()
        answer = await self.services.agent.final_status(
            self.environment,
            execution_id,
            parse_attempt(body.get("attempt")),
            body.get("status"),
            body.get("exit_code"),
            body.get("message"),
        )
        self.write_json(answer)


class CodeHandler(AgentHandler):
    async def get(self, execution_id: str) -> None:
        attempt = parse_attempt(self.arg("attempt"))
        doc = await self.services.agent.fenced(self.environment, execution_id, attempt)
        await self.stream_object(doc["code_key"], "code.tgz", "application/gzip")


class AgentDataHandler(AgentHandler):
    """A datum's bytes, for the running attempt (``?execution=&attempt=``) that reads it as an
    input or wrote it as an output; nothing else of the master's data."""

    async def get(self, datum_id: str) -> None:
        execution_id = self.arg("execution") or ""
        attempt = parse_attempt(self.arg("attempt"))
        execution = await self.services.agent.fenced(self.environment, execution_id, attempt)
        doc = await self.services.outputs.get_datum(datum_id)
        inputs = [u for uris in (execution.get("resolved_inputs") or {}).values() for u in uris]
        if f"datum://{datum_id}" not in inputs and doc.get("output_execution") != execution_id:
            raise NotFound(f"No datum {datum_id!r} among the inputs of {execution_id}.")
        await self.stream_object(
            doc["key"],
            posixpath.basename(doc["name"]),
            "application/octet-stream",
            self.services.outputs.store_for(doc),  # a project's named store, or the default
        )


class PrepareOutputsHandler(AgentHandler):
    async def post(self, execution_id: str) -> None:
        body = self.body()
        self.write_json(
            await self.services.outputs.prepare(
                self.environment,
                execution_id,
                parse_attempt(body.get("attempt")),
                body.get("files"),
            )
        )


class OutputsHandler(AgentHandler):
    async def post(self, execution_id: str) -> None:
        body = self.body()
        answer = await self.services.outputs.register(
            self.environment,
            execution_id,
            parse_attempt(body.get("attempt")),
            body.get("outputs"),
        )
        self.write_json(answer, 201)


@stream_request_body
class UploadHandler(AgentHandler):
    """A streamed PUT of one output file, spooled to disk, then written through the store."""

    _spool: Any = None
    _received = 0

    def max_body_bytes(self) -> int:
        return self.ctx.config.max_upload_bytes

    async def prepare(self) -> None:
        await super().prepare()
        execution_id, attempt, name = self.path_args
        self.target = (execution_id, parse_attempt(attempt), unquote(name))
        await self.services.agent.fenced(self.environment, execution_id, self.target[1])
        limit = self.ctx.config.max_upload_bytes
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
        spool_dir = os.path.join(self.ctx.config.data_dir, "tmp")
        os.makedirs(spool_dir, exist_ok=True)
        self._spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (closed in on_finish)

    async def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.ctx.config.max_upload_bytes:
            raise PayloadTooLarge("The upload is larger than the master accepts.")
        await asyncio.to_thread(self._spool.write, chunk)

    async def put(self, *_: str) -> None:
        execution_id, attempt, name = self.target
        self._spool.seek(0)
        answer = await self.services.outputs.store_upload(
            self.environment, execution_id, attempt, name, self._spool
        )
        self.write_json(answer, 201)

    def on_finish(self) -> None:
        if self._spool is not None:
            self._spool.close()
