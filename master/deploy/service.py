"""Deployments, versions, endpoints and aliases in MongoDB (the builder moves endpoint states).

An endpoint (one ``endpoint:`` of one version) goes ``queued -> building -> starting -> running``,
or ends ``failed`` (with ``reason`` and ``phase``: build, push or start) or ``stopped``. A version
is ``building`` until all its endpoints run (``running``), ``failed`` if any failed, ``stopped``
once retired. An alias (``staging``, ``production``) names one running version of a deployment;
it moves only to a version whose endpoints all run, so a failed build never takes it over.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import Conflict, InvalidInput, NotFound
from jupyter_valohai.models import isoformat, utcnow

from ..context import Context
from ..services.registries import REGISTRY
from ..store import Doc, as_dt, new_id
from .models import EndpointDef, check_name, datum_id, endpoints_of
from .queue import BuildQueue

ACTIVE = ("queued", "building", "starting", "running")
_INDEXED: set[int] = set()


def _time(value: Any) -> str | None:
    return isoformat(as_dt(value)) if value else None


class DeploymentService:
    """Stateless over the context; ``targets`` are the configured deployment targets by name."""

    def __init__(self, ctx: Context, targets: dict[str, Any]) -> None:
        self.ctx = ctx
        db = ctx.store.db
        self.deployments = db["deployments"]
        self.versions = db["deployment_versions"]
        self.endpoints = db["deployment_endpoints"]
        self.aliases = db["deployment_aliases"]
        self.targets = targets
        self.queue = BuildQueue(ctx.redis, ctx.notifier)

    async def setup(self) -> None:
        if id(self.ctx.store.db) in _INDEXED:
            return
        await self.deployments.create_index(
            [("project", ASCENDING), ("name", ASCENDING)], unique=True
        )
        await self.versions.create_index(
            [("deployment", ASCENDING), ("name", ASCENDING)], unique=True
        )
        await self.endpoints.create_index([("version", ASCENDING), ("name", ASCENDING)])
        await self.aliases.create_index(
            [("deployment", ASCENDING), ("name", ASCENDING)], unique=True
        )
        _INDEXED.add(id(self.ctx.store.db))

    # --- deployments ----------------------------------------------------------------------------

    async def create_deployment(self, project: Doc, body: dict[str, Any]) -> Doc:
        name = check_name("Deployment", body.get("name"))
        target = body.get("target") or "local"
        if target not in self.targets:
            raise InvalidInput(
                f"No deployment target {target!r}.",
                hint=f"Configured targets: {', '.join(sorted(self.targets))}.",
            )
        registry = str(body.get("registry") or "").strip().lower()
        if registry and ("/" in registry or not REGISTRY.match(registry)):
            raise InvalidInput(
                f"{registry!r} is not a registry host.", hint="Give host or host:port only."
            )
        if self.targets[target].needs_registry and not registry:
            raise InvalidInput(
                f"Target {target!r} pulls images from a registry: give 'registry'.",
                hint="e.g. registry.example.com:5000 (store its credentials with "
                "POST /api/v0/registry-credentials/).",
            )
        doc = {
            "_id": new_id("dep"),
            "project": project["_id"],
            "name": name,
            "target": target,
            "registry": registry,
            "ctime": utcnow(),
        }
        try:
            await self.deployments.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"The project already has a deployment {name!r}.") from None
        return doc

    async def get_deployment(self, deployment_id: Any) -> Doc:
        doc = await self.deployments.find_one({"_id": deployment_id}) if deployment_id else None
        if not doc:
            raise NotFound(f"No deployment {deployment_id!r}.", hint="GET /api/v0/deployments/")
        return doc  # type: ignore[no-any-return]

    async def list_deployments(self, project_ids: list[str]) -> list[Doc]:
        cursor = self.deployments.find({"project": {"$in": project_ids}}).sort("ctime", 1)
        return [d async for d in cursor]

    async def suggest_version_name(self, deployment: Doc) -> str:
        today = utcnow().strftime("%Y%m%d")
        names = {
            d["name"]
            async for d in self.versions.find({"deployment": deployment["_id"]}, {"name": 1})
        }
        n = 0
        while f"{today}.{n}" in names:
            n += 1
        return f"{today}.{n}"

    # --- versions -------------------------------------------------------------------------------

    async def create_version(self, deployment: Doc, commit: Doc, body: dict[str, Any]) -> Doc:
        """Record a version and its endpoints (``queued``) and queue their builds."""
        defs = endpoints_of(commit.get("config_text"), commit.get("yaml_path") or "valohai.yaml")
        configs = body.get("endpoint_configurations")
        if configs is None and isinstance(body.get("endpoints"), list):
            configs = {name: {} for name in body["endpoints"]}
        if not isinstance(configs, dict) or not configs:
            raise InvalidInput(
                "Name the endpoints to deploy in 'endpoint_configurations'.",
                hint='{"endpoint_configurations": {"<endpoint>": {"files": {"<file>": '
                '"<datum id>"}}}}; the commit defines: ' + (", ".join(sorted(defs)) or "none"),
            )
        name = body.get("name") or await self.suggest_version_name(deployment)
        check_name("Version", name)
        environment = body.get("environment_variables") or {}
        if not isinstance(environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
        ):
            raise InvalidInput("'environment_variables' must map names to strings.")
        alias = body.get("alias")
        if alias is not None:
            check_name("Alias", alias)
        now = utcnow()
        version_id = new_id("depv")
        endpoint_docs = []
        for ep_name, conf in configs.items():
            if ep_name not in defs:
                raise InvalidInput(
                    f"The commit has no endpoint {ep_name!r}.",
                    hint="Endpoints in its valohai.yaml: " + (", ".join(sorted(defs)) or "none"),
                )
            conf = conf if isinstance(conf, dict) else {}
            if conf.get("enabled") is False:
                continue
            endpoint_docs.append(
                await self._endpoint_doc(deployment, version_id, name, defs[ep_name], conf, now)
            )
        if not endpoint_docs:
            raise InvalidInput("Every endpoint given is disabled: nothing to deploy.")
        version = {
            "_id": version_id,
            "deployment": deployment["_id"],
            "project": deployment["project"],
            "name": name,
            "commit": commit["identifier"],
            "status": "building",
            "alias": alias,
            "environment_variables": environment,
            "ctime": now,
            "mtime": now,
        }
        try:
            await self.versions.insert_one(version)
        except DuplicateKeyError:
            raise Conflict(
                f"Deployment {deployment['name']!r} already has a version {name!r}.",
                hint="Give another name or leave it out for a generated one.",
            ) from None
        await self.endpoints.insert_many(endpoint_docs)
        for doc in endpoint_docs:
            await self.queue.push(doc["_id"])
        return version

    async def _endpoint_doc(
        self,
        deployment: Doc,
        version_id: str,
        version_name: str,
        definition: EndpointDef,
        conf: dict[str, Any],
        now: dt.datetime,
    ) -> Doc:
        given = conf.get("files") or {}
        if not isinstance(given, dict):
            raise InvalidInput(f"Endpoint {definition.name!r}: 'files' must be an object.")
        wanted = {f.name for f in definition.files}
        unknown = sorted(set(given) - wanted)
        if unknown:
            raise InvalidInput(
                f"Endpoint {definition.name!r} has no file {unknown[0]!r}.",
                hint="Its files: " + (", ".join(sorted(wanted)) or "none"),
            )
        files: dict[str, str] = {}
        for file_name in sorted(wanted):
            if file_name not in given:
                raise InvalidInput(
                    f"Endpoint {definition.name!r} needs a datum for file {file_name!r}.",
                    hint=f'Give "files": {{"{file_name}": "<datum id>"}} (an execution output).',
                )
            ref = datum_id(given[file_name])
            datum = await self.ctx.store.datums.find_one({"_id": ref}, {"project": 1})
            if not datum or datum.get("project") != deployment["project"]:
                raise NotFound(
                    f"No datum {given[file_name]!r} in this project (file {file_name!r}).",
                    hint="GET /api/v0/data/?project=<id> lists the project's outputs.",
                )
            files[file_name] = ref
        try:
            replicas = int(conf.get("replicas") or 1)
        except (TypeError, ValueError):
            raise InvalidInput("'replicas' must be an integer.") from None
        if not 1 <= replicas <= 100:
            raise InvalidInput("'replicas' must be between 1 and 100.")
        return {
            "_id": new_id("depe"),
            "version": version_id,
            "version_name": version_name,
            "deployment": deployment["_id"],
            "project": deployment["project"],
            "name": definition.name,
            "definition": definition.to_doc(),
            "files": files,
            "replicas": replicas,
            "status": "queued",
            "ctime": now,
            "mtime": now,
        }

    async def get_version(self, version_id: Any) -> Doc:
        doc = await self.versions.find_one({"_id": version_id}) if version_id else None
        if not doc:
            raise NotFound(f"No deployment version {version_id!r}.")
        return doc  # type: ignore[no-any-return]

    async def list_versions(self, deployment_ids: list[str]) -> list[Doc]:
        cursor = self.versions.find({"deployment": {"$in": deployment_ids}}).sort("ctime", 1)
        return [d async for d in cursor]

    async def endpoints_of(self, version_id: str) -> list[Doc]:
        return [d async for d in self.endpoints.find({"version": version_id}).sort("name", 1)]

    async def get_endpoint(self, endpoint_id: Any) -> Doc:
        doc = await self.endpoints.find_one({"_id": endpoint_id}) if endpoint_id else None
        if not doc:
            raise NotFound(f"No deployment endpoint {endpoint_id!r}.")
        return doc  # type: ignore[no-any-return]

    async def list_endpoints(self, deployment_ids: list[str]) -> list[Doc]:
        cursor = self.endpoints.find({"deployment": {"$in": deployment_ids}}).sort("ctime", 1)
        return [d async for d in cursor]

    # --- endpoint states (the builder's side) ---------------------------------------------------

    async def move(self, endpoint_id: str, old: str | tuple[str, ...], **sets: Any) -> Doc | None:
        """Compare-and-set an endpoint's status; return the updated document or None."""
        olds = (old,) if isinstance(old, str) else old
        sets["mtime"] = utcnow()
        doc = await self.endpoints.find_one_and_update(
            {"_id": endpoint_id, "status": {"$in": list(olds)}},
            {"$set": sets},
            return_document=True,
        )
        if doc:
            await self.refresh_version(doc["version"])
        return doc  # type: ignore[no-any-return]

    async def refresh_version(self, version_id: str) -> Doc:
        """Recompute a version's status from its endpoints."""
        version = await self.get_version(version_id)
        if version["status"] == "stopped":
            return version
        states = {d["status"] for d in await self.endpoints_of(version_id)}
        if "failed" in states:
            status = "failed"
        elif states == {"running"}:
            status = "running"
        elif states <= {"stopped"}:
            status = "stopped"
        else:
            status = "building"
        if status != version["status"]:
            await self.versions.update_one(
                {"_id": version_id}, {"$set": {"status": status, "mtime": utcnow()}}
            )
            version["status"] = status
        return version

    async def queued_endpoints(self) -> list[str]:
        return [d["_id"] async for d in self.endpoints.find({"status": "queued"}, {"_id": 1})]

    # --- aliases --------------------------------------------------------------------------------

    async def list_aliases(self, deployment_ids: list[str]) -> list[Doc]:
        cursor = self.aliases.find({"deployment": {"$in": deployment_ids}}).sort("name", 1)
        return [d async for d in cursor]

    async def point_alias(self, deployment: Doc, name: Any, version: Doc) -> tuple[Doc, str | None]:
        """Point alias ``name`` at ``version`` (which must run); return it and the previous
        version id it named, if another."""
        check_name("Alias", name)
        if version["deployment"] != deployment["_id"]:
            raise InvalidInput("The version belongs to another deployment.")
        version = await self.refresh_version(version["_id"])
        if version["status"] != "running":
            raise Conflict(
                f"Version {version['name']!r} is {version['status']}: an alias names only a "
                "version whose endpoints all run.",
                hint="Wait for its build (GET /api/v0/deployment-versions/<id>/), then retry.",
            )
        now = utcnow()
        old = await self.aliases.find_one_and_update(
            {"deployment": deployment["_id"], "name": name},
            {
                "$set": {"version": version["_id"], "mtime": now},
                "$setOnInsert": {"_id": new_id("depa"), "ctime": now},
            },
            upsert=True,
        )
        doc = await self.aliases.find_one({"deployment": deployment["_id"], "name": name})
        previous = old.get("version") if old else None
        return doc, (previous if previous != version["_id"] else None)  # type: ignore[return-value]

    async def aliases_of_version(self, version_id: str) -> list[str]:
        return [d["name"] async for d in self.aliases.find({"version": version_id}, {"name": 1})]
