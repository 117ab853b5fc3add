"""Deployments, versions, endpoints and aliases (see master/deploy/): what valohai-cli calls,
plus build logs, endpoint logs and health."""

from __future__ import annotations

from typing import Any

from jupyter_valohai.errors import InvalidInput

from ..deploy.describe import Describer
from ..deploy.setup import Deployments
from ..services.common import as_bool, page
from ..services.members import EDITOR, VIEWER
from ..store import Doc
from .base import BaseHandler
from .sse import follow_log, public_event

BUILD_ENDS = ("running", "failed", "stopped")


class DeployBase(BaseHandler):
    @property
    def deploy(self) -> Deployments:
        return self.settings["deployments"]  # type: ignore[no-any-return]

    @property
    def describer(self) -> Describer:
        return Describer(self.deploy.service, self.deploy.front, self.base)

    async def project_ids(self) -> list[str]:
        """The projects a listing covers: ``?project=`` (checked) or every readable one."""
        if project := self.arg("project"):
            return [(await self.project_for(project))["_id"]]
        docs, _ = await self.services.projects.list_projects(self.user, 10_000, 0)
        return [d["_id"] for d in docs]

    async def deployment(self, deployment_id: Any, role: str = VIEWER) -> Doc:
        doc = await self.deploy.service.get_deployment(deployment_id)
        return await self.authorize(doc, role, "deployment")

    async def version(self, version_id: Any, role: str = VIEWER) -> Doc:
        doc = await self.deploy.service.get_version(version_id)
        return await self.authorize(doc, role, "deployment version")

    async def endpoint(self, endpoint_id: Any, role: str = VIEWER) -> Doc:
        doc = await self.deploy.service.get_endpoint(endpoint_id)
        return await self.authorize(doc, role, "endpoint")

    def listing(self, results: list[dict[str, Any]]) -> None:
        url = self.base + self.request.path
        self.write_json(page(results, len(results), url, {}, len(results) or 1, 0))


class DeploymentsHandler(DeployBase):
    async def get(self) -> None:
        docs = await self.deploy.service.list_deployments(await self.project_ids())
        self.listing([self.describer.deployment(d) for d in docs])

    async def post(self) -> None:
        body = self.body()
        project = await self.project_for(body.get("project"), EDITOR)
        doc = await self.deploy.service.create_deployment(project, body)
        self.set_header("Location", f"{self.base}/api/v0/deployments/{doc['_id']}/")
        self.write_json(self.describer.deployment(doc), 201)


class DeploymentHandler(DeployBase):
    async def get(self, deployment_id: str) -> None:
        self.write_json(self.describer.deployment(await self.deployment(deployment_id)))


class SuggestVersionNameHandler(DeployBase):
    async def get(self, deployment_id: str) -> None:
        doc = await self.deployment(deployment_id)
        self.write_json({"name": await self.deploy.service.suggest_version_name(doc)})


class AliasesHandler(DeployBase):
    async def get(self, deployment_id: str) -> None:
        doc = await self.deployment(deployment_id)
        aliases = await self.deploy.service.list_aliases([doc["_id"]])
        self.listing([await self.describer.alias(a) for a in aliases])

    async def post(self, deployment_id: str) -> None:
        deployment = await self.deployment(deployment_id, EDITOR)
        body = self.body()
        version = await self.version(body.get("version"), EDITOR)
        retire = as_bool(body.get("retire_previous"), False)
        doc = await self.deploy.rollout.switch(deployment, body.get("name"), version, retire)
        self.write_json(await self.describer.alias(doc))


class VersionsHandler(DeployBase):
    async def get(self) -> None:
        if deployment_id := self.arg("deployment"):
            deployment_ids = [(await self.deployment(deployment_id))["_id"]]
        else:
            deployments = await self.deploy.service.list_deployments(await self.project_ids())
            deployment_ids = [d["_id"] for d in deployments]
        docs = await self.deploy.service.list_versions(deployment_ids)
        self.listing([await self.describer.version(d) for d in docs])

    async def post(self) -> None:
        body = self.body()
        deployment = await self.deployment(body.get("deployment"), EDITOR)
        commit_ref = body.get("commit")
        if not isinstance(commit_ref, str) or not commit_ref:
            raise InvalidInput("'commit' is required.", hint="A commit identifier of the project.")
        commit = await self.services.projects.get_commit(commit_ref, deployment["project"])
        doc = await self.deploy.service.create_version(deployment, commit, body)
        self.set_header("Location", f"{self.base}/api/v0/deployment-versions/{doc['_id']}/")
        self.write_json(await self.describer.version(doc), 201)


class VersionHandler(DeployBase):
    async def get(self, version_id: str) -> None:
        self.write_json(await self.describer.version(await self.version(version_id)))


class VersionStopHandler(DeployBase):
    async def post(self, version_id: str) -> None:
        doc = await self.version(version_id, EDITOR)
        await self.deploy.rollout.retire(doc["_id"])
        self.write_json(await self.describer.version(await self.version(version_id)))


class EndpointsHandler(DeployBase):
    async def get(self) -> None:
        if version_id := self.arg("version"):
            docs = await self.deploy.service.endpoints_of((await self.version(version_id))["_id"])
        else:
            deployments = await self.deploy.service.list_deployments(await self.project_ids())
            docs = await self.deploy.service.list_endpoints([d["_id"] for d in deployments])
        self.listing([await self.describer.endpoint(d) for d in docs])


class EndpointHandler(DeployBase):
    async def get(self, endpoint_id: str) -> None:
        doc = await self.endpoint(endpoint_id)
        out = await self.describer.endpoint(doc)
        out["health"] = await self.deploy.rollout.health(doc)
        self.write_json(out)


class EndpointLogsHandler(DeployBase):
    async def get(self, endpoint_id: str) -> None:
        doc = await self.endpoint(endpoint_id)
        try:
            tail = int(self.arg("tail") or 200)
        except ValueError:
            raise InvalidInput("tail must be an integer.") from None
        lines = await self.deploy.rollout.logs(doc, max(1, min(tail, 10_000)))
        self.write_json({"lines": lines})


class BuildLogHandler(DeployBase):
    async def get(self, endpoint_id: str) -> None:
        doc = await self.endpoint(endpoint_id)
        events = await self.ctx.logs.read(doc["_id"], bool(doc.get("logs_archived")))
        self.write_json(
            {
                "status": doc["status"],
                "failure": {"phase": doc.get("phase"), "reason": doc.get("reason")}
                if doc["status"] == "failed"
                else None,
                "events": [public_event(e) for e in events],
            }
        )


class BuildLogStreamHandler(DeployBase):
    """Server-sent events of the build log as it grows; ``event: end`` once the build ended."""

    async def get(self, endpoint_id: str) -> None:
        doc = await self.endpoint(endpoint_id)
        key = doc["_id"]
        await follow_log(
            self,
            self.ctx,
            key,
            doc,
            reload=lambda: self.deploy.service.get_endpoint(key),
            ended=lambda d: d["status"] in BUILD_ENDS,
        )


class TargetsHandler(DeployBase):
    async def get(self) -> None:
        self.listing([t.describe() for t in self.deploy.targets.values()])
