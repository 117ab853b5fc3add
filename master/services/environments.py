"""Environments (one worker group each): listing, lookup by id or slug, agent authentication."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import InvalidInput, NotAuthenticated
from jupyter_valohai.models import QUEUED, STARTED, STOPPING, hash_token, utcnow

from ..context import Context
from ..store import Doc, new_id

PROJECT_DEFAULT = "PROJECT_DEFAULT"


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "env"


class EnvironmentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def ensure(self, slug: str, token: str | None = None, name: str | None = None) -> Doc:
        """Create the environment ``slug`` if missing; add a worker-group ``token`` (hashed)."""
        envs = self.ctx.store.environments
        with contextlib.suppress(DuplicateKeyError):
            await envs.update_one(
                {"slug": slug},
                {
                    "$setOnInsert": {
                        "_id": new_id("env"),
                        "name": name or slug,
                        "ctime": utcnow(),
                        "description": f"{name or slug} worker group",
                    }
                },
                upsert=True,
            )
        env: Doc = await envs.find_one({"slug": slug})  # type: ignore[assignment]
        if token:  # worker-group tokens live with API tokens, by hash, naming the environment
            await self.ctx.store.tokens.update_one(
                {"hash": hash_token(token)},
                {"$set": {"environment": env["_id"]}, "$setOnInsert": {"ctime": utcnow()}},
                upsert=True,
            )
        return env

    async def default(self) -> Doc:
        return await self.ensure(self.ctx.config.default_environment)

    async def resolve(self, ref: Any) -> Doc:
        """Return the environment named by id or slug (absent or PROJECT_DEFAULT: the default)."""
        if ref in (None, "", PROJECT_DEFAULT):
            return await self.default()
        if not isinstance(ref, str):
            raise InvalidInput("environment must be an environment id or slug.")
        env = await self.ctx.store.environments.find_one({"$or": [{"_id": ref}, {"slug": ref}]})
        if not env:
            known = [e["slug"] async for e in self.ctx.store.environments.find({}, {"slug": 1})]
            raise InvalidInput(
                f"Unknown environment {ref!r}.",
                hint=f"Known environments: {', '.join(sorted(known)) or '(none)'}; "
                "see `vh environments`.",
            )
        return env  # type: ignore[no-any-return]

    async def get(self, env_id: str) -> Doc | None:
        env: Doc | None = await self.ctx.store.environments.find_one({"_id": env_id})
        return env

    async def authenticate_agent(self, token: str | None) -> Doc:
        """Return the environment whose worker-group token this is."""
        if not token:
            raise NotAuthenticated("Agent calls need `Authorization: Token <worker-group token>`.")
        record = await self.ctx.store.tokens.find_one({"hash": hash_token(token)})
        env = None
        if record and record.get("environment"):
            env = await self.ctx.store.environments.find_one({"_id": record["environment"]})
        if not env:
            raise NotAuthenticated(
                "Invalid worker-group token.", hint="Check the agent's VH_AGENT_TOKEN."
            )
        return env  # type: ignore[no-any-return]

    async def list(self, include_counts: bool = False) -> list[dict[str, Any]]:
        """Environments by name, each with ``queue_depth`` (executions waiting in its Redis
        queue) and ``workers`` (agents that claimed or heartbeated in the last minute)."""
        results = []
        async for env in self.ctx.store.environments.find({}).sort("name", 1):
            item = self.describe(env)
            item["queue_depth"] = await self.ctx.queues.length(env["_id"])
            item["workers"] = await self.ctx.queues.workers(env["_id"])
            if include_counts:
                item["unfinished_job_count"] = await self.ctx.store.executions.count_documents(
                    {"environment": env["_id"], "status": {"$in": [QUEUED, STARTED, STOPPING]}}
                )
            results.append(item)
        return results

    @staticmethod
    def describe(env: Doc) -> dict[str, Any]:
        return {
            "id": env["_id"],
            "name": env["name"],
            "slug": env["slug"],
            "description": env.get("description", ""),
            "per_user_queue_quota": 0,
            "gpu_spec": "",
            "per_hour_price_usd": 0,
            "enabled": True,
        }
