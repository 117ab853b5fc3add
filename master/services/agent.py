"""The agent side of the life cycle: claim (long poll), heartbeat, events, final status.

Every call about a running execution is fenced by its ``attempt`` (docs/agent-protocol.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import posixpath
import re
import time
from typing import Any
from urllib.parse import urlencode, urlparse

from jupyter_valohai.errors import InvalidInput, NotFound, StaleAttempt
from jupyter_valohai.models import (
    AGENT_FINAL_STATUSES,
    QUEUED,
    STARTED,
    STOPPING,
    isoformat,
    utcnow,
)

from ..context import Context
from ..scaling.reasons import fits
from ..scaling.workers import WorkerRegistry
from ..store import Doc
from .datums import DatumService
from .lifecycle import Lifecycle, history_entry
from .progress import AGENT_STREAMS, cell_sets, check_progress, with_metadata
from .registries import RegistryCredentialService

log = logging.getLogger(__name__)

RUNNING = [STARTED, STOPPING]
CODE_KEY = re.compile(r"code/([0-9a-f]{64})\.tgz")
MAX_EVENTS_PER_CALL = 10_000


def parse_attempt(value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput("'attempt' (the integer given at claim time) is required.") from None


def stale(execution_id: str) -> StaleAttempt:
    return StaleAttempt(
        f"Execution {execution_id} is no longer running this attempt.",
        hint="Abandon the attempt: kill the process and upload nothing more.",
    )


class AgentService:
    def __init__(self, ctx: Context, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.workers = WorkerRegistry(ctx)

    def _lease_expires(self) -> float:
        # Epoch seconds, not a datetime: the reaper queries it with $lt (see store.as_dt).
        return time.time() + self.ctx.config.lease_seconds

    # --- claim ----------------------------------------------------------------------------------

    async def claim(self, env: Doc, worker: dict[str, Any], wait: float) -> dict[str, Any] | None:
        """Return the spec of the next execution of ``env``, waiting up to ``wait`` seconds."""
        wait = min(max(wait, 0.0), self.ctx.config.max_claim_wait)
        await self.ctx.queues.seen(env["_id"], worker)
        checked_in: Doc | None = await self.workers.check_in(env, worker)
        if not fits(env, worker):  # fewer GPUs than the group asks for: it runs nothing of it
            await asyncio.sleep(wait)
            return None
        deadline = time.monotonic() + wait
        topic = f"queue:{env['_id']}"
        while True:
            # Register before looking, so a submit between the look and the wait is not missed.
            fut = self.ctx.notifier.waiter(topic)
            # Draining: nothing more for it. The check-in just read the flag; after a wait,
            # read it again (a drain wakes this waiter).
            draining = (
                bool(checked_in.get("drain"))
                if checked_in is not None
                else not await self.workers.may_claim(env, worker)
            )
            checked_in = None
            if draining:
                self.ctx.notifier.discard(topic, fut)
                return None
            doc = await self._try_claim(env, worker)
            if doc is not None:
                self.ctx.notifier.discard(topic, fut)
                return await self.spec(doc, env)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.ctx.notifier.discard(topic, fut)
                return None
            await self.ctx.notifier.wait(topic, fut, remaining)

    async def _try_claim(self, env: Doc, worker: dict[str, Any]) -> Doc | None:
        while True:
            execution_id = await self.ctx.queues.pop(env["_id"])
            if execution_id is None:
                return None
            now = utcnow()
            doc = await self.ctx.store.cas_execution(
                execution_id,
                QUEUED,
                None,
                {
                    "$set": {
                        "status": STARTED,
                        "started_at": now,
                        "mtime": now,
                        "lease_expires": self._lease_expires(),
                        "worker": worker,
                        "cell_progress": {},  # a new attempt runs the notebook afresh
                        "current_cell": None,
                    },
                    # The "started" status event below is counted in the same update.
                    "$inc": {"attempt": 1, "log_events": 1},
                    "$push": {"history": history_entry(STARTED, None)},
                },
            )
            if doc is None:  # stopped or claimed meanwhile: the queue entry was stale
                continue
            await self.workers.started(env["_id"], worker, execution_id)
            name = worker.get("name") or worker.get("id") or "an agent"
            await self.ctx.logs.status(
                execution_id,
                f"Execution started on {name} (attempt {doc['attempt']})",
                before=int(doc.get("log_events") or 1) - 1,
            )
            await self.ctx.feed.changed(doc["project"], execution_id)
            return doc

    async def spec(self, doc: Doc, env: Doc | None = None) -> dict[str, Any]:
        """The claim's answer. ``env``: the claiming agent's environment, already read by its
        authentication (the execution is of that environment: it came from its queue)."""
        project = await self.ctx.store.by_id("projects", doc["project"]) or {}
        inputs: dict[str, list[dict[str, Any]]] = {}
        for name, uris in (doc.get("resolved_inputs") or doc.get("inputs", {})).items():
            inputs[name] = [await self._input_file(uri, doc) for uri in uris]
        cfg = self.ctx.config
        spec: dict[str, Any] = {
            "id": doc["_id"],
            "counter": doc["counter"],
            "attempt": doc["attempt"],
            "project": {"id": doc["project"], "name": project.get("name", "")},
            "step": doc["step"],
            "title": doc.get("title", ""),
            "kind": doc.get("kind", "command"),
            "commands": doc.get("commands", []),
            "notebook": doc.get("notebook"),
            "image": doc.get("image", ""),
            "parameters": doc.get("parameters", {}),
            "inputs": inputs,
            # Secret variables are opened here only: for the agent that runs this attempt.
            "environment_variables": {
                **doc.get("environment_variables", {}),
                **self.ctx.secrets.secrets_of(doc),
            },
            "time_limit": doc.get("time_limit", 0),
            "code_url": f"/api/agent/executions/{doc['_id']}/code?attempt={doc['attempt']}",
            # The archive is content-addressed (``code/<sha256>.tgz``): agents cache it by this.
            "code_sha256": _code_sha256(doc.get("code_key")),
            "lease_seconds": cfg.lease_seconds,
            "heartbeat_seconds": cfg.heartbeat_seconds,
        }
        # The worker group's resource requests (cpus, memory_mb, gpus): the Docker runtime
        # turns them into container limits and GPU device requests.
        if env is None or env.get("_id") != doc.get("environment"):
            env = await self.ctx.store.environments.find_one({"_id": doc.get("environment")}) or {}
        spec["environment"] = {
            "id": env.get("_id"),
            "name": env.get("name", ""),
            **{k: env[k] for k in ("cpus", "memory_mb", "gpus") if env.get(k)},
        }
        # Decrypted only for the agent's pull; never logged.
        auth = await RegistryCredentialService(self.ctx).auth_for(spec["image"])
        if auth:
            spec["registry_auth"] = auth
        return spec

    async def _input_file(self, uri: str, execution: Doc) -> dict[str, Any]:
        if uri.startswith("datum://"):
            datum_id = uri[len("datum://") :]
            datum = await self.ctx.store.datums.find_one({"_id": datum_id}) or {}
            # The download is fenced like every agent call: this attempt, reading this input.
            fence = urlencode({"execution": execution["_id"], "attempt": execution["attempt"]})
            return {
                "name": datum.get("name", datum_id),
                "uri": uri,
                "url": f"/api/agent/data/{datum_id}/download?{fence}",
                "datum_id": datum_id,
                "size": datum.get("size"),
                "sha256": datum.get("sha256"),
            }
        name = posixpath.basename(urlparse(uri).path) or "input"
        return {
            "name": name,
            "url": uri,
            "uri": uri,
            "datum_id": None,
            "size": None,
            "sha256": None,
        }

    # --- fenced calls ---------------------------------------------------------------------------

    async def fenced(self, env: Doc, execution_id: str, attempt: int) -> Doc:
        """Return the execution if ``attempt`` is its current, running attempt."""
        doc = await self.ctx.store.executions.find_one({"_id": execution_id})
        if not doc or doc["environment"] != env["_id"]:
            raise NotFound(f"No execution {execution_id!r} in this worker group.")
        if doc["status"] not in RUNNING or doc.get("attempt") != attempt:
            raise stale(execution_id)
        return doc  # type: ignore[no-any-return]

    async def renew(
        self, env: Doc, execution_id: str, attempt: int, sets: dict[str, Any] | None = None
    ) -> Doc:
        """Renew the lease of a running attempt, applying ``sets`` in the same update."""
        await self.fenced(env, execution_id, attempt)
        doc = await self.ctx.store.cas_execution(
            execution_id,
            RUNNING,
            attempt,
            {"$set": {**(sets or {}), "lease_expires": self._lease_expires()}},
        )
        if doc is None:
            raise stale(execution_id)
        return doc

    async def heartbeat(self, env: Doc, execution_id: str, attempt: int) -> dict[str, Any]:
        doc = await self.renew(env, execution_id, attempt)
        await self.ctx.queues.seen(env["_id"], doc.get("worker"))
        await self.workers.heartbeat(env["_id"], doc.get("worker"), execution_id)
        return {"stop": doc["status"] == STOPPING, "lease_seconds": self.ctx.config.lease_seconds}

    async def events(
        self, env: Doc, execution_id: str, attempt: int, events: Any, metadata: Any
    ) -> dict[str, Any]:
        if not isinstance(events or [], list) or not isinstance(metadata or [], list):
            raise InvalidInput("'events' and 'metadata' must be lists.")
        events, metadata = events or [], metadata or []
        if len(events) + len(metadata) > MAX_EVENTS_PER_CALL:
            raise InvalidInput(f"Send at most {MAX_EVENTS_PER_CALL} events per call.")
        clean, progress = [], []
        for event in events:
            if not isinstance(event, dict) or event.get("stream") not in AGENT_STREAMS:
                raise InvalidInput(
                    f"Each event needs a stream, one of {', '.join(AGENT_STREAMS)}.",
                    hint="Progress events use the stream 'progress'; metadata goes in 'metadata'.",
                )
            message = str(event.get("message", ""))
            if event["stream"] == "progress":
                progress.append(check_progress(message))
            clean.append(
                {
                    "stream": event["stream"],
                    "message": message,
                    "time": str(event.get("time") or isoformat(utcnow())),
                }
            )
        entries, posted = [], []
        for item in metadata:
            if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                raise InvalidInput("Each metadata entry needs a 'data' object.")
            at = _parse_time(item.get("time"))
            entries.append(
                {"execution": execution_id, "attempt": attempt, "time": at, "data": item["data"]}
            )
            posted.append({"time": str(item.get("time") or isoformat(at)), "data": item["data"]})
        execution = await self.fenced(env, execution_id, attempt)
        cells = cell_sets(progress)
        sets: dict[str, Any] = dict(cells)
        clean = self._limit_log_bytes(execution, clean, sets)
        masker = await self.ctx.secrets.masker(execution_id, execution)
        if masker:  # secrets masked before anything is stored; split ones are held back
            clean, carry = masker.stream(clean, self.ctx.secrets.open_carry(execution))
            sets["mask_carry"] = self.ctx.secrets.seal_carry(carry)
            entries = [{**e, "data": masker.mask_data(e["data"])} for e in entries]
            posted = [{**p, "data": masker.mask_data(p["data"])} for p in posted]
        if entries:  # lists skip the metadata lookup of executions that never had any
            sets["has_metadata"] = True
        doc = await self.renew(env, execution_id, attempt, sets)
        await self.ctx.logs.append(execution_id, with_metadata(clean, posted))
        if entries:
            await self.ctx.store.metadata.insert_many(entries)
        if cells:  # the execution's cells changed: its project's list shows them
            await self.ctx.feed.changed(doc["project"], execution_id)
        return {"stop": doc["status"] == STOPPING}

    def _limit_log_bytes(
        self, execution: Doc, events: list[dict[str, Any]], sets: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Keep stdout/stderr within ``max_log_bytes`` per execution; say once that the rest is
        dropped (a log flood must not fill Redis or the archive)."""
        limit = self.ctx.config.max_log_bytes
        used = int(execution.get("log_bytes") or 0)
        kept: list[dict[str, Any]] = []
        dropped = 0
        for event in events:
            if event["stream"] in ("stdout", "stderr"):
                size = len(event["message"].encode("utf-8", "replace"))
                if used + size > limit:
                    dropped += size
                    continue
                used += size
            kept.append(event)
        sets["log_bytes"] = used
        if dropped:
            sets["log_bytes_dropped"] = int(execution.get("log_bytes_dropped") or 0) + dropped
            if not execution.get("log_bytes_dropped"):
                kept.append(
                    {
                        "stream": "status",
                        "message": f"Log limit reached: this execution may log {limit} bytes of "
                        "stdout/stderr; further output is dropped (the execution keeps running).",
                        "time": isoformat(utcnow()),
                    }
                )
        return kept

    async def final_status(
        self, env: Doc, execution_id: str, attempt: int, status: Any, exit_code: Any, message: Any
    ) -> dict[str, Any]:
        if status not in AGENT_FINAL_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(sorted(AGENT_FINAL_STATUSES))}.")

        async def finish(execution: Doc | None, match: Doc | None) -> Doc | None:
            masker = await self.ctx.secrets.masker(execution_id, execution)
            masked = masker.mask(str(message or ""))
            text = f"Execution {status}"
            if exit_code is not None:
                text += f" (exit code {exit_code})"
            if masked:
                text += f": {masked}"
            return await self.lifecycle.transition(
                execution_id,
                RUNNING,
                attempt,
                status,
                text,
                sets={"exit_code": exit_code, "message": masked},
                unsets=["lease_expires"],
                match=match,
            )

        # An execution of this group that registered no outputs has no dataset versions to
        # make first: its compare-and-set alone is the fence (no read before it).
        doc = await finish(None, {"environment": env["_id"], "has_outputs": False})
        if doc is None:
            execution = await self.fenced(env, execution_id, attempt)
            # Outputs are registered by now: make the dataset versions they ask for.
            if execution.get("has_outputs", True):  # absent: an execution older than the flag
                for line in await DatumService(self.ctx).make_versions(execution):
                    await self.ctx.logs.status(execution_id, line)
            doc = await finish(execution, None)
        if doc is None:
            raise stale(execution_id)
        await self.workers.finished(env["_id"], doc.get("worker"), execution_id)
        return {"status": doc["status"]}


def _code_sha256(key: Any) -> str | None:
    match = CODE_KEY.fullmatch(str(key or ""))
    return match.group(1) if match else None


def _parse_time(value: Any) -> dt.datetime:
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
        except ValueError:
            pass
    return utcnow()
