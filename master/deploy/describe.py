"""The API's shapes of deployments, versions, endpoints and aliases (Valohai's v0 field names)."""

from __future__ import annotations

from typing import Any

from ..store import Doc, as_dt
from .front import Front, front_path
from .service import DeploymentService


def _time(value: Any) -> str | None:
    from jupyter_valohai.models import isoformat

    return isoformat(as_dt(value)) if value else None


class Describer:
    def __init__(self, service: DeploymentService, front: Front, base: str) -> None:
        self.service = service
        self.front = front
        self.base = base
        self._names: dict[str, tuple[str, str]] = {}

    async def _owner_and_project(self, project_id: str) -> tuple[str, str]:
        if project_id not in self._names:
            store = self.service.ctx.store
            project = await store.projects.find_one({"_id": project_id}) or {}
            owner = await store.users.find_one({"_id": project.get("owner")}) or {}
            self._names[project_id] = (
                str(owner.get("username") or "-"),
                str(project.get("name") or project_id),
            )
        return self._names[project_id]

    async def url(self, deployment: Doc, ref: str, endpoint: Doc) -> str | None:
        """Where clients reach the endpoint of a version (``ref``: its name or an alias)."""
        target = self.service.targets.get(deployment["target"])
        if target is not None and target.kind != "local":
            if ref != endpoint.get("version_name"):
                state = (endpoint.get("alias_state") or {}).get(ref) or {}
            else:
                state = endpoint.get("state") or {}
            return target.url(state) if state else None
        owner, project = await self._owner_and_project(deployment["project"])
        return self.front.url + front_path(
            owner, project, deployment["name"], ref, endpoint["name"]
        )

    def deployment(self, doc: Doc) -> dict[str, Any]:
        target = self.service.targets.get(doc["target"])
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "project": doc["project"],
            "target": {"name": doc["target"], "kind": target.kind if target else None},
            "registry": doc.get("registry") or None,
            "ctime": _time(doc.get("ctime")),
            "url": f"{self.base}/api/v0/deployments/{doc['_id']}/",
        }

    async def endpoint(self, doc: Doc, deployment: Doc | None = None) -> dict[str, Any]:
        deployment = deployment or await self.service.get_deployment(doc["deployment"])
        aliases = await self.service.aliases_of_version(doc["version"])
        running = doc["status"] == "running"
        api = f"{self.base}/api/v0/deployment-endpoints/{doc['_id']}/"
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "deployment": {"id": deployment["_id"], "name": deployment["name"]},
            "version": {"id": doc["version"], "name": doc["version_name"]},
            "status": doc["status"],
            "failure": (
                {"phase": doc.get("phase"), "reason": doc.get("reason")}
                if doc["status"] == "failed"
                else None
            ),
            "image": doc.get("image") or None,
            "replicas": doc.get("replicas", 1),
            "files": dict(doc.get("files") or {}),
            "endpoint_url": await self.url(deployment, doc["version_name"], doc)
            if running
            else None,
            "alias_urls": {
                alias: await self.url(deployment, alias, doc) for alias in aliases if running
            },
            "ctime": _time(doc.get("ctime")),
            "mtime": _time(doc.get("mtime")),
            "url": api,
            "urls": {"build_log": api + "build-log/", "logs": api + "logs/", "health": api},
        }

    async def version(self, doc: Doc) -> dict[str, Any]:
        deployment = await self.service.get_deployment(doc["deployment"])
        endpoints = [
            await self.endpoint(e, deployment) for e in await self.service.endpoints_of(doc["_id"])
        ]
        api = f"{self.base}/api/v0/deployment-versions/{doc['_id']}/"
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "deployment": {"id": deployment["_id"], "name": deployment["name"]},
            "project": doc["project"],
            "commit": {"identifier": doc["commit"]},
            "status": doc["status"],
            "enabled": doc["status"] != "stopped",
            "alias": doc.get("alias"),
            "aliases": await self.service.aliases_of_version(doc["_id"]),
            "environment_variables": dict(doc.get("environment_variables") or {}),
            "endpoints": endpoints,
            "ctime": _time(doc.get("ctime")),
            "url": api,
            "urls": {"display": api},
        }

    async def alias(self, doc: Doc) -> dict[str, Any]:
        version = await self.service.get_version(doc["version"])
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "deployment": doc["deployment"],
            "version": {"id": version["_id"], "name": version["name"]},
            "mtime": _time(doc.get("mtime")),
        }
