"""Start built endpoints on their target, move aliases, retire replaced versions.

Order of a replacement behind an alias: the new version's endpoints run and answer (the target
waited for readiness) -> the alias is pointed at the new version (one MongoDB write, which the
front reads; cluster targets re-point their own objects) -> the old version's endpoints are
marked stopped, the front's requests in flight to them drain -> only then they are stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..context import Context
from ..services.registries import RegistryCredentialService
from ..store import Doc
from .front import Front
from .models import EndpointDef
from .service import DeploymentService
from .targets.base import DeploymentTarget, EndpointSpec

log = logging.getLogger(__name__)


class Rollout:
    def __init__(self, ctx: Context, service: DeploymentService, front: Front | None) -> None:
        self.ctx = ctx
        self.service = service
        self.front = front
        self.registries = RegistryCredentialService(ctx)

    def target_of(self, deployment: Doc) -> DeploymentTarget:
        return self.service.targets[deployment["target"]]  # type: ignore[no-any-return]

    async def start(self, endpoint_id: str, context_dir: str | None) -> None:
        """Run a ``starting`` endpoint on its target; raise DeployFailed if it does not start."""
        doc = await self.service.get_endpoint(endpoint_id)
        deployment = await self.service.get_deployment(doc["deployment"])
        version = await self.service.get_version(doc["version"])
        project = await self.ctx.store.projects.find_one({"_id": doc["project"]}) or {}
        target = self.target_of(deployment)
        image = doc.get("image") or ""
        spec = EndpointSpec(
            endpoint_id=endpoint_id,
            project=str(project.get("name") or doc["project"]),
            deployment=deployment["name"],
            version=version["name"],
            definition=EndpointDef.from_doc(doc["definition"]),
            image=image,
            replicas=int(doc.get("replicas") or 1),
            environment=dict(version.get("environment_variables") or {}),
            registry_auth=await self.registries.auth_for(image) if image else None,
            context_dir=context_dir,
        )
        loop = asyncio.get_running_loop()

        def emit(stream: str, message: str) -> None:
            fut = asyncio.run_coroutine_threadsafe(
                self.ctx.logs.append(endpoint_id, [{"stream": stream, "message": message}]), loop
            )
            with contextlib.suppress(Exception):
                fut.result(10)

        state = await asyncio.to_thread(target.deploy, spec, emit)
        moved = await self.service.move(endpoint_id, "starting", status="running", state=state)
        if moved is None:  # stopped while starting
            await asyncio.to_thread(target.stop, state)
            return
        await self.after_running(doc["version"])

    async def after_running(self, version_id: str) -> None:
        version = await self.service.refresh_version(version_id)
        if version["status"] == "running" and version.get("alias"):
            deployment = await self.service.get_deployment(version["deployment"])
            await self.switch(deployment, version["alias"], version, retire=True)

    async def switch(self, deployment: Doc, alias: str, version: Doc, retire: bool) -> Doc:
        """Point ``alias`` at ``version``; retire the version it named before if asked and no
        other alias names it."""
        doc, previous = await self.service.point_alias(deployment, alias, version)
        target = self.target_of(deployment)
        for endpoint in await self.service.endpoints_of(version["_id"]):
            state = endpoint.get("state") or {}
            extra = await asyncio.to_thread(
                target.switch_alias, deployment["name"], alias, endpoint["name"], state
            )
            if extra:
                await self.service.endpoints.update_one(
                    {"_id": endpoint["_id"]}, {"$set": {f"alias_state.{alias}": extra}}
                )
        if retire and previous and not await self.service.aliases_of_version(previous):
            await self.retire(previous)
        return doc

    async def retire(self, version_id: str) -> None:
        """Stop a version's endpoints once the requests in flight to them are done."""
        await self.service.versions.update_one({"_id": version_id}, {"$set": {"status": "stopped"}})
        version = await self.service.get_version(version_id)
        deployment = await self.service.get_deployment(version["deployment"])
        target = self.target_of(deployment)
        for endpoint in await self.service.endpoints_of(version_id):
            moved = await self.service.move(
                endpoint["_id"], ("queued", "building", "starting", "running"), status="stopped"
            )
            if moved is None or not moved.get("state"):
                continue
            if self.front is not None:
                await self.front.drain(endpoint["_id"])
            try:
                await asyncio.to_thread(target.stop, moved["state"])
            except Exception:  # a stop that fails leaves it to the operator
                log.exception("stopping endpoint %s", endpoint["_id"])

    async def health(self, endpoint: Doc) -> dict[str, Any]:
        if endpoint["status"] != "running" or not endpoint.get("state"):
            return {"state": endpoint["status"], "detail": endpoint.get("reason") or ""}
        deployment = await self.service.get_deployment(endpoint["deployment"])
        health = await asyncio.to_thread(self.target_of(deployment).health, endpoint["state"])
        return health.to_dict()

    async def logs(self, endpoint: Doc, tail: int) -> list[str]:
        if not endpoint.get("state"):
            return []
        deployment = await self.service.get_deployment(endpoint["deployment"])
        return await asyncio.to_thread(self.target_of(deployment).logs, endpoint["state"], tail)
