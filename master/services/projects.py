"""Projects and their commits (ad-hoc code packages stored content-addressed)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from typing import Any

from pymongo.errors import DuplicateKeyError

from jupyter_valohai.archive import read_member
from jupyter_valohai.errors import Conflict, InvalidInput, NotFound
from jupyter_valohai.models import isoformat, utcnow
from jupyter_valohai.valohai_config import parse_config

from ..context import Context
from ..store import Doc, as_dt, new_id
from .common import page


def code_key(sha256: str) -> str:
    return f"code/{sha256}.tgz"


class ProjectService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # --- projects -------------------------------------------------------------------------------

    async def create(self, user: Doc, name: Any, description: Any = "", owner: Any = None) -> Doc:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("A project needs a name.", hint="e.g. --name my-project")
        if owner not in (None, "", user["username"]):
            raise InvalidInput(
                f"You cannot create projects for {owner!r}.",
                hint=f"Use owner {user['username']!r} (see ownership_options).",
            )
        doc = {
            "_id": new_id("p"),
            "name": name.strip(),
            "description": str(description or ""),
            "owner": user["_id"],
            "ctime": utcnow(),
            "yaml_path": "valohai.yaml",
        }
        try:
            await self.ctx.store.projects.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(
                f"You already have a project called {doc['name']!r}.",
                hint="Pick another name, or link the existing one with `vh project link`.",
            ) from None
        return doc

    async def get(self, project_id: Any) -> Doc:
        doc = None
        if isinstance(project_id, str) and project_id:
            doc = await self.ctx.store.projects.find_one({"_id": project_id})
        if not doc:
            raise NotFound(f"No project {project_id!r}.", hint="See `vh project list`.")
        return doc  # type: ignore[no-any-return]

    async def list_projects(self, limit: int, offset: int) -> tuple[list[Doc], int]:
        count = await self.ctx.store.projects.count_documents({})
        cursor = self.ctx.store.projects.find({}).sort("ctime", 1).skip(offset).limit(limit)
        return [doc async for doc in cursor], count

    async def describe(self, project: Doc, base: str) -> dict[str, Any]:
        owner = await self.ctx.store.users.find_one({"_id": project["owner"]}) or {}
        url = f"{base}/api/v0/projects/{project['_id']}/"
        return {
            "id": project["_id"],
            "name": project["name"],
            "description": project.get("description", ""),
            "owner": {"id": project["owner"], "username": owner.get("username", "")},
            "yaml_path": project.get("yaml_path", "valohai.yaml"),
            "ctime": isoformat(as_dt(project["ctime"])),
            "url": url,
            "urls": {"display": f"{base}/p/{project['_id']}/"},
            "environment_variables": {},
            "repository": None,
        }

    # --- commits --------------------------------------------------------------------------------

    async def import_package(
        self,
        project: Doc,
        data: bytes,
        description: str = "",
        yaml_path: str = "",
    ) -> Doc:
        """Validate a code tarball and its valohai.yaml, store it once, and record the commit."""
        yaml_path = yaml_path or project.get("yaml_path") or "valohai.yaml"
        if len(data) > self.ctx.config.max_package_bytes:
            raise InvalidInput("The code package is too large.")
        sha256 = hashlib.sha256(data).hexdigest()
        config_text = await asyncio.to_thread(self._validate, data, yaml_path)
        key = code_key(sha256)
        if not await asyncio.to_thread(self.ctx.artifacts.exists, key):
            await asyncio.to_thread(self._put, key, data)
        identifier = f"~{sha256}"
        await self.ctx.store.commits.update_one(
            {"project": project["_id"], "identifier": identifier},
            {
                "$setOnInsert": {
                    "_id": new_id("c"),
                    "commit_time": utcnow(),
                    "description": description,
                    "yaml_path": yaml_path,
                    "config_text": config_text,
                    "code_key": key,
                    "sha256": sha256,
                    "size": len(data),
                    "adhoc": True,
                }
            },
            upsert=True,
        )
        return await self.get_commit(identifier, project["_id"])

    @staticmethod
    def _validate(data: bytes, yaml_path: str) -> str:
        with tempfile.NamedTemporaryFile(suffix=".tgz") as tmp:
            tmp.write(data)
            tmp.flush()
            member = read_member(tmp.name, yaml_path)
        if member is None:
            raise InvalidInput(
                f"The code package has no {yaml_path}.",
                hint="Put valohai.yaml at the root of the package or pass yaml_path.",
            )
        parse_config(member, source=yaml_path)
        return member.decode("utf-8")

    def _put(self, key: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".pkg-")
        try:
            with os.fdopen(fd, "w+b") as fp:
                fp.write(data)
                fp.seek(0)
                self.ctx.artifacts.put(key, fp)
        finally:
            os.unlink(tmp)

    async def get_commit(self, identifier: Any, project_id: Any = None) -> Doc:
        query: Doc = {"identifier": identifier}
        if project_id:
            query["project"] = project_id
        doc = await self.ctx.store.commits.find_one(query) if isinstance(identifier, str) else None
        if not doc:
            raise NotFound(
                f"No commit {identifier!r} in this project.",
                hint="Upload code with `vh exec run --adhoc` or import-package.",
            )
        return doc  # type: ignore[no-any-return]

    async def list_commits(
        self,
        project_id: Any,
        adhoc: bool | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Doc], int]:
        query: Doc = {}
        if project_id:
            query["project"] = project_id
        if adhoc is not None:
            query["adhoc"] = adhoc
        count = await self.ctx.store.commits.count_documents(query)
        cursor = (
            self.ctx.store.commits.find(query).sort("commit_time", -1).skip(offset).limit(limit)
        )
        return [doc async for doc in cursor], count

    @staticmethod
    def describe_commit(commit: Doc, base: str, include_config: bool = False) -> dict[str, Any]:
        out = {
            "identifier": commit["identifier"],
            "ref": commit["identifier"],
            "adhoc": True,
            "commit_time": isoformat(as_dt(commit["commit_time"])),
            "project": commit["project"],
            "description": commit.get("description", ""),
            "yaml_path": commit.get("yaml_path"),
            "url": f"{base}/api/v0/commits/{commit['identifier']}/?project={commit['project']}",
        }
        if include_config:
            out["config_text"] = commit.get("config_text")
        return out

    def commit_page(
        self,
        docs: list[Doc],
        count: int,
        base: str,
        path: str,
        query: dict[str, Any],
        limit: int,
        offset: int,
    ) -> dict[str, Any]:
        results = [self.describe_commit(d, base) for d in docs]
        return page(results, count, base + path, query, limit, offset)
