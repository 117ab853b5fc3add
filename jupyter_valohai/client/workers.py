"""Worker operations of the master's API (``/api/v0/workers/``), driven by the clients like
:mod:`.calls`: a worker group's workers with their state and current execution."""

from __future__ import annotations

from typing import Any

from .. import errors
from .calls import Call, Op, get_execution, path, results


def workers(environment: str | None = None) -> Op:
    """The live workers (of one environment: id or slug), each with ``state`` and ``execution``
    (an id, or null; ``execution_hidden`` when its project is not readable)."""
    params = {"environment": environment} if environment else None
    return results((yield Call("GET", path("workers"), params=params)))


def workers_with_executions(environment: str) -> Op:
    """:func:`workers`, each busy one's ``current_execution`` summarized (counter, title or
    step, project, status), or null when it cannot be read."""
    found = yield from workers(environment)
    for worker in found:
        summary: dict[str, Any] | None = None
        if worker.get("execution"):
            try:
                ex = yield from get_execution(str(worker["execution"]))
            except (errors.NotFound, errors.PermissionDenied):
                ex = None
            if ex:
                summary = {
                    "id": ex["id"],
                    "counter": ex.get("counter"),
                    "title": ex.get("title") or ex.get("step") or "",
                    "status": ex.get("status"),
                    "project": ex.get("project"),
                }
        worker["current_execution"] = summary
    return found
