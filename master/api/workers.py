"""Workers: the registry as users see it (state, current execution), drain for admins; and the
agent's check-in."""

from __future__ import annotations

from typing import Any

from jupyter_valohai.errors import InvalidInput

from ..scaling.binaries import AgentReleases
from ..services.users import require_admin
from ..store import Doc
from .base import BaseHandler


class WorkersBase(BaseHandler):
    async def shown(self, doc: Doc, readable: list[str] | None) -> dict[str, Any]:
        """A worker as this user may see it: the execution only if its project is readable."""
        env = await self.services.environments.get(doc["environment"])
        described = self.services.workers.describe(doc, env)
        if described["execution"] and readable is not None:
            execution = await self.ctx.store.executions.find_one(
                {"_id": described["execution"]}, {"project": 1}
            )
            if not execution or execution.get("project") not in readable:
                described["execution"] = None
                described["execution_hidden"] = True
        return described


class WorkersHandler(WorkersBase):
    async def get(self) -> None:
        env_id = None
        if self.arg("environment"):
            env_id = (await self.services.environments.lookup(self.arg("environment") or ""))["_id"]
        include_gone = (self.arg("gone") or "").lower() in ("1", "true", "yes")
        docs = await self.services.workers.list(env_id, include_gone=include_gone)
        readable = await self.readable_projects()
        results = [await self.shown(doc, readable) for doc in docs]
        self.write_json({"count": len(results), "next": None, "previous": None, "results": results})


class WorkerHandler(WorkersBase):
    async def get(self, key: str) -> None:
        doc = await self.services.workers.get(key)
        self.write_json(await self.shown(doc, await self.readable_projects()))


class DrainHandler(BaseHandler):
    async def post(self, key: str) -> None:
        require_admin(self.user)
        drain = self.body().get("drain", True)
        if not isinstance(drain, bool):
            raise InvalidInput(
                "'drain' must be a boolean.",
                hint='Send {"drain": true} to drain, {"drain": false} to take work again.',
            )
        workers = self.services.workers
        if drain:
            doc = await workers.drain(key, "administrator")
        else:
            doc = await workers.undrain(key)
        env = await self.services.environments.get(doc["environment"])
        self.write_json(workers.describe(doc, env))


class CheckInHandler(BaseHandler):
    """An idle agent says it is alive; the answer says whether to drain or upgrade."""

    auth = "agent"

    async def post(self) -> None:
        worker = self.body().get("worker")
        doc = await self.services.workers.check_in(self.environment, worker)
        releases = AgentReleases(self.ctx)
        self.write_json(
            {
                "id": doc["_id"],
                "drain": bool(doc.get("drain")),
                "upgrade": await releases.upgrade_for(str(doc.get("version") or "")),
            }
        )
