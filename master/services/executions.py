"""Executions as users see them: create (validated before anything is written), list, get, stop."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ReturnDocument
from redis.exceptions import RedisError

from jupyter_valohai.errors import InvalidInput, NotFound, PermissionDenied, TooManyRequests
from jupyter_valohai.models import (
    ALL_STATUSES,
    INCOMPLETE_STATUSES,
    QUEUED,
    STARTED,
    STOPPED,
    STOPPING,
    TERMINAL_STATUSES,
    utcnow,
)
from jupyter_valohai.valohai_config import (
    build_commands,
    get_step,
    notebook_path,
    parse_config,
    resolve_environment_variables,
    resolve_inputs,
    resolve_parameters,
)

from ..context import Context
from ..store import Doc, new_id
from .datums import DatumService
from .environments import EnvironmentService
from .lifecycle import Lifecycle, counter_key, history_entry
from .members import EDITOR, VIEWER
from .projects import ProjectService

log = logging.getLogger(__name__)

ORDERINGS = {
    "counter": ("counter", 1),
    "-counter": ("counter", -1),
    "ctime": ("ctime", 1),
    "-ctime": ("ctime", -1),
}


def _typed(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        name = kind.__name__ if isinstance(kind, type) else kind[0].__name__
        raise InvalidInput(f"{key!r} must be of type {name}.")
    return value


class ExecutionService:
    def __init__(
        self,
        ctx: Context,
        projects: ProjectService,
        environments: EnvironmentService,
        lifecycle: Lifecycle,
    ) -> None:
        self.ctx = ctx
        self.projects = projects
        self.environments = environments
        self.lifecycle = lifecycle

    async def create(self, user: Doc, body: Any, known: dict[str, Doc] | None = None) -> Doc:
        """Validate every field first, then write: a refused request leaves nothing behind.

        ``known`` (if given) receives the project and environment read on the way, by
        collection name, for the caller's answer.
        """
        if not isinstance(body, dict):
            raise InvalidInput("The request body must be a JSON object.")
        for key in ("project", "commit", "step"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise InvalidInput(f"{key!r} is required.", hint="Send project, commit and step.")
        try:
            project = await self.projects.authorize(user, body["project"], EDITOR)
            commit = await self.projects.commit_for_execution(body["commit"], project)
        except NotFound as exc:
            raise InvalidInput(exc.message, hint=exc.hint) from None
        config = parse_config(
            commit["config_text"], source=commit.get("yaml_path") or "valohai.yaml"
        )
        step = get_step(config, body["step"])
        parameters = resolve_parameters(step, _typed(body, "parameters", dict, {}))
        inputs = resolve_inputs(step, _typed(body, "inputs", dict, {}))
        resolved_inputs, consumed = await self._check_datums(project["_id"], inputs)
        await self._check_readable(user, consumed)
        requested_env = _typed(body, "environment_variables", dict, {})
        # Project variables under the request's; secret ones are sealed into the execution.
        plain_env, sealed = self.ctx.secrets.snapshot(project, requested_env)
        env_vars = resolve_environment_variables(step, {**plain_env, **requested_env})
        environment = await self.environments.resolve(body.get("environment"))
        self.environments.check_project(environment, project["_id"])
        image = _typed(body, "image", str, "") or step.image or ""
        tags = _typed(body, "tags", list, [])
        if not all(isinstance(t, str) for t in tags):
            raise InvalidInput("'tags' must be a list of strings.")
        priority = _typed(body, "priority", int, 0)
        time_limit = _typed(body, "time_limit", int, 0)
        if time_limit < 0:
            raise InvalidInput("'time_limit' must not be negative.")
        notebook = notebook_path(step)
        commands = build_commands(step, parameters)
        counter = await self._allocate(project)  # the last check: a refusal writes nothing
        now = utcnow()
        doc: Doc = {
            "_id": new_id("e"),
            "project": project["_id"],
            "counter": counter,
            "status": QUEUED,
            "attempt": 0,
            "step": step.name,
            "title": _typed(body, "title", str, ""),
            "commit": commit["identifier"],
            "code_key": commit["code_key"],
            "environment": environment["_id"],
            "parameters": parameters,
            "inputs": inputs,
            "resolved_inputs": resolved_inputs,
            "consumed_datums": consumed,
            "environment_variables": env_vars,
            "image": image,
            "tags": tags,
            "priority": priority,
            "time_limit": time_limit,
            "kind": "notebook" if notebook else "command",
            "notebook": notebook,
            "commands": commands,
            "creator": user["_id"],
            "ctime": now,
            "queued_at": now,
            "started_at": None,
            "ended_at": None,
            "deleted": False,
            "logs_archived": False,
            "has_metadata": False,  # set by the first metadata entry (see Describer)
            "has_outputs": False,  # set by the first output registered (see OutputService)
            "runtime_config": body.get("runtime_config") or {},
            "history": [history_entry(QUEUED, 0)],
            # The two status events below, counted before they are written: if the master dies
            # in between, the next event of the execution reports them lost (a visible gap).
            "log_events": 2,
            **sealed,
        }
        await self.ctx.store.executions.insert_one(doc)
        if known is not None:
            known.update(projects=project, environments=environment)
        if consumed:
            await DatumService(self.ctx).record_consumption(doc)
        await self.ctx.secrets.masker(doc["_id"], doc)  # known now: no read for its first event
        try:  # Redis is derived state: if it is away, the reconciler queues the execution later
            queued = f"Execution queued in {environment['name']}"
            await self.ctx.logs.status(doc["_id"], "Execution created", counted=True)
            await self.ctx.logs.status(doc["_id"], queued, counted=True)
            await self.lifecycle.enqueue(doc)
            await self.ctx.feed.changed(project["_id"], doc["_id"])
        except RedisError as exc:
            log.warning("execution %s stored but not queued yet (Redis: %s)", doc["_id"], exc)
        return doc

    async def _check_datums(
        self, project_id: str, inputs: dict[str, list[str]]
    ) -> tuple[dict[str, list[str]], list[str]]:
        """Pin ``datum://<id or alias>`` and expand ``dataset://<name>/<version>`` now, so the
        execution reads what its creator saw; return those inputs and the consumed datum ids."""
        return await DatumService(self.ctx).resolve_inputs(project_id, inputs)

    async def _allocate(self, project: Doc) -> int:
        """Check the project's in-flight limit and take the execution's counter.

        The project's counter document also holds ``in_flight``, a gauge of its unfinished
        executions (+1 here, -1 by :meth:`Lifecycle.release` when one finishes). Far below the
        limit, one ``findAndModify`` that matches the gauge does both. Near the limit, or when the
        gauge is missing (a project older than it) or high (a master died between a finish and
        its release), the unfinished executions are counted exactly by index, the request
        refused at the limit (nothing written), and the gauge set to the count.
        """
        limit = self.ctx.config.max_in_flight_per_project
        key = counter_key(project["_id"])
        counters = self.ctx.store.counters
        doc = await counters.find_one_and_update(
            {"_id": key, "in_flight": {"$lt": limit - max(1, limit // 10)}},
            {"$inc": {"value": 1, "in_flight": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            busy = await self._count_in_flight(project)
            self._check_in_flight(project, busy, limit)
            doc = await counters.find_one_and_update(
                {"_id": key},
                {"$inc": {"value": 1}, "$set": {"in_flight": busy + 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        return int(doc["value"])

    async def _count_in_flight(self, project: Doc) -> int:
        return await self.ctx.store.count(  # by index
            self.ctx.store.executions,
            {"project": project["_id"], "status": {"$in": sorted(INCOMPLETE_STATUSES)}},
        )

    @staticmethod
    def _check_in_flight(project: Doc, busy: int, limit: int) -> None:
        if busy >= limit:
            raise TooManyRequests(
                f"Project {project['name']!r} already has {busy} executions queued or running "
                f"(the limit is {limit}).",
                hint="Wait for some to finish or stop some; the master's operator sets "
                "--MasterApp.max_in_flight_per_project.",
            )

    async def _check_readable(self, user: Doc, datum_ids: list[str]) -> None:
        """Inputs may only be datums of projects the creator can read."""
        for datum_id in datum_ids:
            datum = await self.ctx.store.datums.find_one({"_id": datum_id}, {"project": 1})
            try:
                await self.projects.authorize(user, (datum or {}).get("project"), VIEWER)
            except (NotFound, PermissionDenied):
                raise InvalidInput(
                    f"No datum {datum_id!r} in a project you can read.",
                    hint="Use outputs of your projects (see GET /api/v0/data/?project=...).",
                ) from None

    async def get(self, ref: str, fresh: bool = False) -> Doc:
        """Return an execution by id, ``<project id>:<counter>`` or ``<project id>:latest``.

        By id it comes from the read cache (master/cache.py: every write to the execution
        invalidates it); ``fresh`` reads MongoDB, for a caller whose compare-and-set just failed.
        """
        doc = None
        if ":" not in ref and not fresh:
            doc = await self.ctx.store.by_id("executions", ref)
            if not doc:
                raise NotFound(f"No execution {ref!r}.", hint="See `vh exec list`.")
            return doc
        if ":" in ref:
            project_id, _, counter = ref.partition(":")
            if counter == "latest":
                cursor = self.ctx.store.executions.find({"project": project_id})
                docs = [d async for d in cursor.sort("counter", -1).limit(1)]
                doc = docs[0] if docs else None
            elif counter.isdigit():
                doc = await self.ctx.store.executions.find_one(
                    {"project": project_id, "counter": int(counter)}
                )
        else:
            doc = await self.ctx.store.executions.find_one({"_id": ref})
        if not doc:
            raise NotFound(f"No execution {ref!r}.", hint="See `vh exec list`.")
        return doc  # type: ignore[no-any-return]

    async def list(
        self,
        filters: dict[str, list[str]],
        limit: int,
        offset: int,
        scope: str | list[str] | None = None,
    ) -> tuple[list[Doc], int]:
        """Executions matching ``filters``, within ``scope`` (a project id or a list of them)."""
        query: Doc = {}
        if isinstance(scope, list):
            query["project"] = {"$in": scope}
        elif scope:
            query["project"] = scope
        elif filters.get("project"):
            query["project"] = filters["project"][-1]
        statuses: set[str] = set()
        for status in filters.get("status", []):
            for s in status.split(","):
                if s == "incomplete":
                    statuses |= INCOMPLETE_STATUSES
                elif s in ALL_STATUSES:
                    statuses.add(s)
                elif s:
                    raise InvalidInput(f"Unknown status {s!r}.")
        if statuses:
            query["status"] = {"$in": sorted(statuses)}
        counters = [c for v in filters.get("counter", []) for c in v.split(",") if c]
        if counters:
            if not all(c.isdigit() for c in counters):
                raise InvalidInput("counter must be an integer.")
            query["counter"] = {"$in": [int(c) for c in counters]}
        if filters.get("creator"):
            query["creator"] = filters["creator"][-1]
        deleted = (filters.get("deleted") or ["false"])[-1].lower() in ("1", "true", "yes")
        query["deleted"] = deleted
        key, direction = ORDERINGS.get((filters.get("ordering") or ["-counter"])[-1], ("ctime", -1))
        store = self.ctx.store  # by index: one find per status (project, counter) asked for
        return await store.page(store.executions, query, key, direction, offset, limit)

    async def stop(self, execution: Doc) -> str:
        """Stop an execution: queued ones at once, started ones through their agent."""
        number = f"#{execution['counter']}"
        if execution["status"] == QUEUED:
            done = await self.lifecycle.transition(
                execution["_id"], QUEUED, None, STOPPED, "Execution stopped before it started"
            )
            if done:
                await self.ctx.queues.remove(execution["environment"], execution["_id"])
                return f"Execution {number} stopped."
            execution = await self.get(execution["_id"], fresh=True)
        if execution["status"] == STARTED:
            done = await self.lifecycle.transition(
                execution["_id"],
                STARTED,
                execution["attempt"],
                STOPPING,
                "Execution stop requested",
                sets={"stop_requested_at": utcnow()},
            )
            if done:
                return f"Stop requested for execution {number}."
            execution = await self.get(execution["_id"], fresh=True)
        if execution["status"] == STOPPING:
            return f"Execution {number} is already stopping."
        if execution["status"] in TERMINAL_STATUSES:
            return f"Execution {number} has already finished ({execution['status']})."
        return f"Execution {number} is {execution['status']}; try again."
