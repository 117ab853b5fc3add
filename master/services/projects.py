"""Projects and their commits: ad-hoc code packages and Git commits, stored content-addressed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from jupyter_valohai.archive import read_member
from jupyter_valohai.errors import Conflict, InvalidInput, NotFound
from jupyter_valohai.models import isoformat, utcnow
from jupyter_valohai.stores.registry import check_store_name
from jupyter_valohai.valohai_config import parse_config

from ..context import Context
from ..store import Doc, as_dt, new_id
from .common import page
from .git import Credentials, GitCommit, GitMirrors, SecretBox, check_url
from .members import OWNER, VIEWER, MembershipService


def code_key(sha256: str) -> str:
    return f"code/{sha256}.tgz"


class ProjectService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        git_root = os.path.join(ctx.config.data_dir, "git")
        self.git = GitMirrors(git_root)
        self.secrets = SecretBox(os.path.join(ctx.config.data_dir, "secrets", "repository.key"))
        self.members = MembershipService(ctx)

    # --- access ---------------------------------------------------------------------------------

    async def authorize(
        self, user: Doc, project_id: Any, need: str = VIEWER, missing: str | None = None
    ) -> Doc:
        """Return the project if ``user`` holds at least role ``need`` in it.

        The one access check of the API: a project the user is no member of is answered like a
        missing one (404, with ``missing`` as the message when given), a lower role gets 403.
        """
        try:
            project = await self.get(project_id)
            await self.members.check(user, project, need)
        except NotFound as exc:
            if missing:
                raise NotFound(missing, hint=exc.hint) from None
            raise
        return project

    async def readable(self, user: Doc) -> list[str] | None:
        """Ids of the projects ``user`` may read (``None``: all of them, for administrators)."""
        return await self.members.readable(user)

    # --- projects -------------------------------------------------------------------------------

    async def create(
        self, user: Doc, name: Any, description: Any = "", owner: Any = None, store: Any = None
    ) -> Doc:
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
        # Outputs go to this named store (one the master configured), or to the default.
        if store_name := check_store_name(store, self.ctx.config.named_stores):
            doc["store"] = store_name
        try:
            await self.ctx.store.projects.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(
                f"You already have a project called {doc['name']!r}.",
                hint="Pick another name, or link the existing one with `vh project link`.",
            ) from None
        await self.members.add(doc, user, OWNER)
        return doc

    async def get(self, project_id: Any) -> Doc:
        """A project by id (cached; every write to projects invalidates it)."""
        doc = await self.ctx.store.by_id("projects", project_id)
        if not doc:
            raise NotFound(f"No project {project_id!r}.", hint="See `vh project list`.")
        return doc

    async def list_projects(self, user: Doc, limit: int, offset: int) -> tuple[list[Doc], int]:
        """The projects ``user`` may read."""
        scope = await self.readable(user)
        query: Doc = {} if scope is None else {"_id": {"$in": scope}}
        count = await self.ctx.store.projects.count_documents(query)
        cursor = self.ctx.store.projects.find(query).sort("ctime", 1).skip(offset).limit(limit)
        return [doc async for doc in cursor], count

    async def describe(self, project: Doc, base: str) -> dict[str, Any]:
        owner = await self.ctx.store.by_id("users", project["owner"]) or {}
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
            # Secret values never: {"NAME": {"value": null, "secret": true}}.
            "environment_variables": {
                v["name"]: {"value": v["value"], "secret": v["secret"]}
                for v in self.ctx.secrets.public(project)
            },
            "repository": self._describe_repository(project.get("repository")),
            "store": project.get("store"),
        }

    # --- Git repositories -----------------------------------------------------------------------

    @staticmethod
    def _describe_repository(repo: Doc | None) -> dict[str, Any] | None:
        if not repo:
            return None
        return {
            "url": repo["url"],
            "ref": repo.get("ref") or "",
            "has_credentials": bool(repo.get("credentials")),
            "fetched_at": isoformat(as_dt(repo["fetched_at"])) if repo.get("fetched_at") else None,
        }

    async def link_repository(self, project: Doc, body: Any) -> Doc:
        """Link (or with ``None``, unlink) a Git repository; credentials are stored encrypted."""
        if body is None:
            await self.ctx.store.projects.update_one(
                {"_id": project["_id"]}, {"$unset": {"repository": ""}}
            )
            return await self.get(project["_id"])
        if isinstance(body, str):
            body = {"url": body}
        if not isinstance(body, dict):
            raise InvalidInput(
                "'repository' must be an object {url, ref, ...} or a URL.",
                hint='e.g. {"repository": {"url": "https://github.com/org/repo.git"}}',
            )
        url, creds = await asyncio.to_thread(check_url, body.get("url"))
        for key in ("ref", "username", "password", "ssh_private_key"):
            if not isinstance(body.get(key) or "", str):
                raise InvalidInput(f"repository.{key} must be a string.")
        creds = Credentials(
            username=body.get("username") or creds.username,
            password=body.get("password") or creds.password,
            ssh_private_key=body.get("ssh_private_key") or "",
        )
        sealed = await asyncio.to_thread(self.secrets.seal, creds)
        repo = {"url": url, "ref": body.get("ref") or "", "credentials": sealed}
        await self.ctx.store.projects.update_one(
            {"_id": project["_id"]}, {"$set": {"repository": repo}}
        )
        return await self.get(project["_id"])

    async def fetch(self, project: Doc, base: str) -> dict[str, Any]:
        """Fetch the linked repository; record its commits; answer ``{commits (new), errors}``."""
        repo = project.get("repository")
        if not repo:
            raise InvalidInput(
                "This project is not linked to a Git repository.",
                hint='Link one first: PATCH /api/v0/projects/<id>/ {"repository": {"url": ...}}.',
            )
        creds = await asyncio.to_thread(self.secrets.open, repo.get("credentials"))
        commits = await asyncio.to_thread(self.git.fetch, project["_id"], repo["url"], creds)
        yaml_path = project.get("yaml_path") or "valohai.yaml"
        new: list[dict[str, Any]] = []
        errors: list[str] = []
        for commit in commits:
            doc = await self._record_git_commit(project, commit, yaml_path)
            if doc is not None:
                new.append(self.describe_commit(doc, base))
                if doc.get("config_error"):
                    errors.append(f"{commit.sha[:12]}: {doc['config_error']}")
        await self.ctx.store.projects.update_one(
            {"_id": project["_id"]}, {"$set": {"repository.fetched_at": utcnow()}}
        )
        return {"commits": new, "errors": errors}

    async def _record_git_commit(
        self, project: Doc, commit: GitCommit, yaml_path: str
    ) -> Doc | None:
        """Insert a commit not seen before (returned) or refresh the refs of a known one (None)."""
        query = {"project": project["_id"], "identifier": commit.sha}
        known = await self.ctx.store.commits.find_one_and_update(
            query, {"$set": {"refs": commit.refs}}
        )
        if known:
            return None
        config_text, config_error = await self._read_config(project["_id"], commit.sha, yaml_path)
        doc = {
            "_id": new_id("c"),
            **query,
            "adhoc": False,
            "refs": commit.refs,
            "commit_time": commit.commit_time,
            "description": commit.message,
            "author": commit.author,
            "yaml_path": yaml_path,
            "config_text": config_text,
            "config_error": config_error,
            "code_key": None,
        }
        try:
            await self.ctx.store.commits.insert_one(doc)
        except DuplicateKeyError:  # a concurrent fetch recorded it first
            return None
        return doc

    async def _read_config(
        self, project_id: str, sha: str, yaml_path: str
    ) -> tuple[str | None, str]:
        data = await asyncio.to_thread(self.git.read_file, project_id, sha, yaml_path)
        if data is None:
            return None, f"no {yaml_path} in this commit"
        try:
            text = data.decode("utf-8")
            parse_config(text, source=yaml_path)
        except (UnicodeDecodeError, InvalidInput) as exc:
            return None, str(exc)
        return text, ""

    async def commit_for_execution(self, identifier: str, project: Doc) -> Doc:
        """Return the commit an execution runs, its code archived in the code store."""
        try:
            commit = await self.get_commit(identifier, project["_id"])
        except NotFound:
            sha = None
            if project.get("repository") and not identifier.startswith("~"):
                sha = await asyncio.to_thread(self.git.resolve, project["_id"], identifier)
            if sha is None:
                raise
            commit = await self.get_commit(sha, project["_id"])
        if commit.get("adhoc", True) or commit.get("code_key"):
            return commit
        if not commit.get("config_text"):
            raise InvalidInput(
                f"Commit {commit['identifier'][:12]} cannot run: "
                f"{commit.get('config_error') or 'it has no valohai.yaml'}.",
                hint="Commit a valid valohai.yaml, push, and fetch again.",
            )
        key, sha256, size = await asyncio.to_thread(
            self._archive_git_commit, project["_id"], commit["identifier"]
        )
        updated = await self.ctx.store.commits.find_one_and_update(
            {"_id": commit["_id"]},
            {"$set": {"code_key": key, "sha256": sha256, "size": size}},
            return_document=ReturnDocument.AFTER,
        )
        return updated or {**commit, "code_key": key}

    def _archive_git_commit(self, project_id: str, sha: str) -> tuple[str, str, int]:
        """``git archive`` a commit into the code store once; return (key, sha256, size)."""
        with tempfile.TemporaryFile() as fp:
            self.git.archive(project_id, sha, fp)
            size = fp.tell()
            fp.seek(0)
            digest = hashlib.file_digest(fp, "sha256").hexdigest()  # type: ignore[arg-type]
            if size > self.ctx.config.max_package_bytes:
                raise InvalidInput(
                    f"Commit {sha[:12]} archives to more than the code package limit.",
                    hint="Keep data out of the repository (use inputs for data).",
                )
            key = code_key(digest)
            if not self.ctx.artifacts.exists(key):
                fp.seek(0)
                self.ctx.artifacts.put(key, fp)
        return key, digest, size

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
        if isinstance(project_id, list):  # any of these projects (the ones a user may read)
            query["project"] = {"$in": project_id}
        elif project_id:
            query["project"] = project_id
        doc = await self.ctx.store.commits.find_one(query) if isinstance(identifier, str) else None
        if not doc:
            raise NotFound(
                f"No commit {identifier!r} in this project.",
                hint="Fetch the linked repository (`vh project fetch`) or upload code with "
                "`vh exec run --adhoc`; `vh` lists commits with GET /api/v0/commits/?project=.",
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
        if isinstance(project_id, list):  # any of these projects (the ones a user may read)
            query["project"] = {"$in": project_id}
        elif project_id:
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
        refs = commit.get("refs") or []
        out = {
            "identifier": commit["identifier"],
            "ref": refs[0] if refs else commit["identifier"],
            "refs": refs,
            "adhoc": commit.get("adhoc", True),
            "commit_time": isoformat(as_dt(commit["commit_time"])),
            "project": commit["project"],
            "description": commit.get("description", ""),
            "yaml_path": commit.get("yaml_path"),
            "url": f"{base}/api/v0/commits/{commit['identifier']}/?project={commit['project']}",
        }
        if include_config:
            out["config_text"] = commit.get("config_text")
            out["config"] = commit.get("config_text")  # valohai-cli parses this one
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
