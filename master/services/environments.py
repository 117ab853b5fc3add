"""Environments (one worker group each): listing, lookup by id or slug, agent authentication,
and the worker-group settings administrators create and change (docs/worker-groups.md)."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from jupyter_valohai.models import QUEUED, STARTED, STOPPING, hash_token, new_token, utcnow

from ..context import Context
from ..scaling.groups import check_sizes, check_slug, parse_group, public_settings
from ..scaling.workers import WorkerRegistry
from ..store import Doc, new_id
from .git import Credentials, SecretBox

PROJECT_DEFAULT = "PROJECT_DEFAULT"


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "env"


#: (store, slug) -> the default group's id, per process (an environment's slug never changes).
_DEFAULT_IDS: dict[tuple[int, str], str] = {}


class EnvironmentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.box = SecretBox(os.path.join(ctx.config.data_dir, "secrets", "worker-groups.key"))

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
        """The default group: by its id once known (a slug never changes; the document comes
        from the read cache), else read by slug, and created (an upsert) only if missing."""
        slug = self.ctx.config.default_environment
        known = _DEFAULT_IDS.get((id(self.ctx.store), slug))
        env = await self.get(known) if known else None
        if env is None or env.get("slug") != slug:
            env = await self.ctx.store.environments.find_one({"slug": slug}) or await self.ensure(
                slug
            )
            _DEFAULT_IDS[(id(self.ctx.store), slug)] = env["_id"]
        return env

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
        """An environment by id (cached; every write to environments invalidates it)."""
        return await self.ctx.store.by_id("environments", env_id)

    async def authenticate_agent(self, token: str | None) -> Doc:
        """Return the environment whose worker-group token this is."""
        if not token:
            raise NotAuthenticated("Agent calls need `Authorization: Token <worker-group token>`.")
        record = await self.ctx.store.token(hash_token(token))
        env = None
        if record and record.get("environment"):
            env = await self.get(record["environment"])
        if not env:
            raise NotAuthenticated(
                "Invalid worker-group token.", hint="Check the agent's VH_AGENT_TOKEN."
            )
        return env

    async def list(self, include_counts: bool = False, admin: bool = False) -> list[dict[str, Any]]:
        """Environments by name, each with ``queue_depth`` (executions waiting in its Redis
        queue) and ``workers`` (agents that claimed or heartbeated in the last minute)."""
        results = []
        async for env in self.ctx.store.environments.find({}).sort("name", 1):
            item = self.describe(env, admin)
            item["queue_depth"] = await self.ctx.queues.length(env["_id"])
            item["workers"] = await self.ctx.queues.workers(env["_id"])
            # the registry's view, for the Jupyter panel (executions: administrators only)
            item["worker_states"] = [
                {
                    "id": w["id"],
                    "name": w["name"],
                    "state": w["state"],
                    **({"execution": w["execution"]} if admin else {}),
                }
                for w in map(
                    WorkerRegistry.describe, await WorkerRegistry(self.ctx).list(env["_id"])
                )
            ]
            if include_counts:
                item["unfinished_job_count"] = await self.ctx.store.count(
                    self.ctx.store.executions,
                    {"environment": env["_id"], "status": {"$in": [QUEUED, STARTED, STOPPING]}},
                )
            results.append(item)
        return results

    @staticmethod
    def describe(env: Doc, admin: bool = False) -> dict[str, Any]:
        gpus = int(env.get("gpus") or 0)
        out: dict[str, Any] = {
            "id": env["_id"],
            "name": env["name"],
            "slug": env["slug"],
            "description": env.get("description", ""),
            "per_user_queue_quota": 0,
            "gpu_spec": f"{gpus} GPU" if gpus else "",
            "per_hour_price_usd": 0,
            "enabled": True,
            # the worker group (absent provider: agents are started by hand, no scaling)
            "provider": env.get("provider") or None,
            "instance_type": env.get("instance_type", ""),
            "region": env.get("region", ""),
            "cpus": env.get("cpus") or 0,
            "memory_mb": env.get("memory_mb") or 0,
            "gpus": gpus,
            "min_size": env.get("min_size", 0),
            "max_size": env.get("max_size", 0),
            "idle_timeout": env.get("idle_timeout", 0),
            "scaling": env.get("scaling") or {},
        }
        if admin:  # project ids and provider settings are the administrators' business
            out["settings"] = public_settings(env.get("settings") or {})
            out["allowed_projects"] = env.get("allowed_projects") or []
        return out

    # --- worker groups (administrators) ---------------------------------------------------------

    async def create_group(self, body: Any) -> tuple[Doc, str]:
        """Create a worker group; return it and its new worker token (shown only this once)."""
        fields = parse_group(body)
        slug = check_slug(body.get("slug") or slugify(str(fields.get("name") or "")))
        fields["name"] = fields.get("name") or slug
        check_sizes(fields)
        self._check_provider(fields["provider"])
        token = new_token()
        doc: Doc = {
            "_id": new_id("env"),
            "slug": slug,
            "ctime": utcnow(),
            **fields,
            "description": fields.get("description") or f"{fields['name']} worker group",
            "token_sealed": self.box.seal(Credentials(password=token)),
        }
        try:
            await self.ctx.store.environments.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(
                f"An environment with slug {slug!r} exists.",
                hint="PATCH /api/v0/environments/<id>/ changes it.",
            ) from None
        await self._add_token(doc["_id"], token)
        return doc, token

    async def update_group(self, env: Doc, body: Any) -> Doc:
        fields = parse_group(body, partial=True)
        if isinstance(body, dict) and body.get("slug") not in (None, env["slug"]):
            raise InvalidInput(
                "An environment's slug cannot change.",
                hint="Create another group with the new slug.",
            )
        merged = {**env, **fields}
        check_sizes(merged)
        if "provider" in fields:
            self._check_provider(fields["provider"])
        if fields:
            fields["mtime"] = utcnow()
            await self.ctx.store.environments.update_one({"_id": env["_id"]}, {"$set": fields})
        return await self.get(env["_id"]) or merged

    async def ensure_group(self, body: dict[str, Any]) -> Doc:
        """Create the group ``body`` describes, or update it to match (config-file groups)."""
        slug = check_slug(body.get("slug"))
        env = await self.ctx.store.environments.find_one({"slug": slug})
        if env is None:
            doc, _ = await self.create_group(body)
            return doc
        if not env.get("provider"):
            body = {"provider": "local", **body}
        return await self.update_group(env, {k: v for k, v in body.items() if k != "slug"})

    def _check_provider(self, name: str) -> None:
        from ..scaling.registry import ProviderRegistry

        ProviderRegistry(self.ctx.config.providers).provider_class(name)

    async def _add_token(self, env_id: str, token: str) -> None:
        await self.ctx.store.tokens.update_one(
            {"hash": hash_token(token)},
            {"$set": {"environment": env_id}, "$setOnInsert": {"ctime": utcnow()}},
            upsert=True,
        )

    async def group_token(self, env: Doc) -> str:
        """The plain worker token the master hands to workers it starts (made on first need)."""
        sealed = env.get("token_sealed")
        if sealed:
            return self.box.open(sealed).password
        token = new_token()
        sealed = self.box.seal(Credentials(password=token))
        await self._add_token(env["_id"], token)
        await self.ctx.store.environments.update_one(
            {"_id": env["_id"]}, {"$set": {"token_sealed": sealed}}
        )
        env["token_sealed"] = sealed
        return token

    async def lookup(self, ref: str) -> Doc:
        env = await self.ctx.store.environments.find_one({"$or": [{"_id": ref}, {"slug": ref}]})
        if not env:
            raise NotFound(f"No environment {ref!r}.", hint="See `vh environments`.")
        return env  # type: ignore[no-any-return]

    @staticmethod
    def check_project(env: Doc, project_id: str) -> None:
        """Refuse an execution of a project the group does not serve."""
        allowed = env.get("allowed_projects") or []
        if allowed and project_id not in allowed:
            raise PermissionDenied(
                f"Environment {env['slug']!r} does not serve this project.",
                hint="Pick another environment (`vh environments`) or ask an administrator.",
            )
