"""The JSON shapes of executions and datums, as valohai-cli 0.37 reads them."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from jupyter_valohai.models import INCOMPLETE_STATUSES, QUEUED, isoformat, utcnow

from ..context import Context
from ..scaling.reasons import waiting_reason
from ..scaling.workers import WorkerRegistry
from ..store import Doc, as_dt
from .common import seconds_between
from .progress import describe_cells


class Describer:
    """Turns documents into API objects; caches the projects, users and environments it looks up."""

    def __init__(self, ctx: Context, base: str) -> None:
        self.ctx = ctx
        self.base = base
        self._cache: dict[tuple[str, str], Doc] = {}
        self._workers: dict[str, list[Doc]] = {}  # environment id -> its live workers

    async def _lookup(self, collection: str, doc_id: str) -> Doc:
        key = (collection, doc_id)
        if key not in self._cache:
            found = await self.ctx.store.db[collection].find_one({"_id": doc_id})
            self._cache[key] = found or {"_id": doc_id}
        return self._cache[key]

    async def metadata_entries(self, execution_id: str) -> list[dict[str, Any]]:
        cursor = self.ctx.store.metadata.find({"execution": execution_id}).sort("_id", 1)
        return [
            {
                "time": isoformat(as_dt(m.get("time"))),
                "data": m.get("data", {}),
                "metadata": m.get("data", {}),
            }
            async for m in cursor
        ]

    async def execution(self, doc: Doc, exclude: set[str] | None = None) -> dict[str, Any]:
        exclude = exclude or set()
        project = await self._lookup("projects", doc["project"])
        env = await self._lookup("environments", doc["environment"])
        creator = await self._lookup("users", doc["creator"])
        url = f"{self.base}/api/v0/executions/{doc['_id']}/"
        end = as_dt(doc.get("ended_at")) or (
            utcnow() if doc["status"] in INCOMPLETE_STATUSES else None
        )
        out: dict[str, Any] = {
            "id": doc["_id"],
            "counter": doc["counter"],
            "status": doc["status"],
            "step": doc["step"],
            "title": doc.get("title", ""),
            "project": {
                "id": project["_id"],
                "name": project.get("name", ""),
                "owner": project.get("owner"),
                "url": f"{self.base}/api/v0/projects/{project['_id']}/",
            },
            "commit": {
                "identifier": doc["commit"],
                "ref": doc["commit"],
                "adhoc": str(doc["commit"]).startswith("~"),
                "url": f"{self.base}/api/v0/commits/{doc['commit']}/?project={doc['project']}",
            },
            "environment": {
                "id": env["_id"],
                "name": env.get("name", ""),
                "slug": env.get("slug", ""),
            },
            "parameters": doc.get("parameters", {}),
            "inputs": [{"name": n, "urls": u} for n, u in doc.get("inputs", {}).items()],
            "image": doc.get("image", ""),
            "tags": doc.get("tags", []),
            "kind": doc.get("kind", "command"),
            "notebook": doc.get("notebook"),
            "command": "\n".join(doc.get("commands", [])),
            "environment_variables": doc.get("environment_variables", {}),
            "runtime_config": doc.get("runtime_config") or {},
            "priority": doc.get("priority", 0),
            "time_limit": doc.get("time_limit", 0),
            "ctime": isoformat(as_dt(doc["ctime"])),
            "queued_at": isoformat(as_dt(doc.get("queued_at"))),
            "started_at": isoformat(as_dt(doc.get("started_at"))),
            "ended_at": isoformat(as_dt(doc.get("ended_at"))),
            "duration": seconds_between(as_dt(doc.get("started_at")), end),
            "attempt": doc.get("attempt", 0),
            "creator": {"id": creator["_id"], "username": creator.get("username", "")},
            "exit_code": doc.get("exit_code"),
            "status_message": doc.get("message", ""),
            "deleted": bool(doc.get("deleted")),
            "url": url,
            "urls": {
                "display": f"{self.base}/p/{doc['project']}/executions/{doc['counter']}/",
                "stop": f"{url}stop/",
                "events": f"{url}events/",
            },
        }
        out["cells"], out["current_cell"] = describe_cells(doc)
        if doc["status"] == QUEUED:  # why it has not started (docs/worker-groups.md)
            try:
                if env["_id"] not in self._workers:
                    self._workers[env["_id"]] = await WorkerRegistry(self.ctx).list(env["_id"])
                out["waiting_reason"] = await waiting_reason(
                    self.ctx, env, doc, self._workers[env["_id"]]
                )
            except RedisError:  # derived state away (Redis restarting): the answer stands
                out["waiting_reason"] = "The queue is being rebuilt; it will start shortly."
        if "metadata" not in exclude and not doc.get("has_metadata", True):
            out["metadata"] = {}  # none was ever sent: no lookup (a list is not N+1 queries)
        elif "metadata" not in exclude:
            merged: dict[str, Any] = {}
            for entry in await self.metadata_entries(doc["_id"]):
                if isinstance(entry["data"], dict):
                    merged.update(entry["data"])
            out["metadata"] = merged
        for key in exclude:
            out.pop(key, None)
        return out

    async def datum(self, doc: Doc) -> dict[str, Any]:
        execution = await self._lookup("executions", doc["output_execution"])
        url = f"{self.base}/api/v0/data/{doc['_id']}/"
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "size": doc["size"],
            "sha256": doc["sha256"],
            "checksums": {"sha256": doc["sha256"]},
            "uri": doc["uri"],
            "metadata": doc.get("metadata") or {},
            "ctime": isoformat(as_dt(doc["ctime"])),
            "project": execution.get("project"),
            "output_execution": {"id": execution["_id"], "counter": execution.get("counter")},
            "url": url,
            "download_url": f"{url}download/",
        }
