"""Workers: the registry as users see it (state, current execution), drain for admins; and the
agent's check-in."""

from __future__ import annotations

from jupyter_valohai.errors import InvalidInput

from ..scaling.binaries import AgentReleases
from ..services.environments import require_admin
from .base import BaseHandler


class WorkersHandler(BaseHandler):
    async def get(self) -> None:
        env_id = None
        if self.arg("environment"):
            env_id = (await self.services.environments.lookup(self.arg("environment") or ""))["_id"]
        include_gone = (self.arg("gone") or "").lower() in ("1", "true", "yes")
        docs = await self.services.workers.list(env_id, include_gone=include_gone)
        envs = {}
        results = []
        for doc in docs:
            if doc["environment"] not in envs:
                envs[doc["environment"]] = await self.services.environments.get(doc["environment"])
            results.append(self.services.workers.describe(doc, envs[doc["environment"]]))
        self.write_json({"count": len(results), "next": None, "previous": None, "results": results})


class WorkerHandler(BaseHandler):
    async def get(self, key: str) -> None:
        doc = await self.services.workers.get(key)
        env = await self.services.environments.get(doc["environment"])
        self.write_json(self.services.workers.describe(doc, env))


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
