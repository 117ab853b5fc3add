"""Environments (worker groups): list and describe for everyone; create and change for admins."""

from __future__ import annotations

from ..scaling.scaler import list_decisions
from ..services.common import page_params
from ..services.users import require_admin
from .base import BaseHandler


class EnvironmentsHandler(BaseHandler):
    async def get(self) -> None:
        include = (self.arg("include") or "").split(",")
        results = await self.services.environments.list(
            "unfinished_job_count" in include, admin=bool(self.user.get("is_admin"))
        )
        self.write_json({"count": len(results), "next": None, "previous": None, "results": results})

    async def post(self) -> None:
        require_admin(self.user)
        envs = self.services.environments
        doc, token = await envs.create_group(self.body())
        described = envs.describe(doc, admin=True)
        described["token"] = token  # the group's worker token: shown this once, stored hashed
        self.set_header("Location", f"{self.base}/api/v0/environments/{doc['_id']}/")
        self.write_json(described, 201)


class EnvironmentHandler(BaseHandler):
    async def get(self, ref: str) -> None:
        envs = self.services.environments
        doc = await envs.lookup(ref)
        described = envs.describe(doc, admin=bool(self.user.get("is_admin")))
        described["queue_depth"] = await self.ctx.queues.length(doc["_id"])
        described["workers"] = await self.ctx.queues.workers(doc["_id"])
        self.write_json(described)

    async def patch(self, ref: str) -> None:
        require_admin(self.user)
        envs = self.services.environments
        doc = await envs.update_group(await envs.lookup(ref), self.body())
        self.write_json(envs.describe(doc, admin=True))


class DecisionsHandler(BaseHandler):
    async def get(self, ref: str) -> None:
        doc = await self.services.environments.lookup(ref)
        limit, _ = page_params(self.arg("limit"), None)
        results = await list_decisions(self.ctx, doc["_id"], limit)
        self.write_json({"count": len(results), "results": results})
