"""Projects, ownership options, repository links and fetch, import-package and commits."""

from __future__ import annotations

from jupyter_valohai.errors import InvalidInput

from ..services.common import as_bool, page, page_params
from ..services.members import EDITOR, OWNER
from .base import BaseHandler


class ProjectsHandler(BaseHandler):
    async def get(self) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        docs, count = await self.services.projects.list_projects(self.user, limit, offset)
        results = [await self.services.projects.describe(d, self.base) for d in docs]
        self.write_json(
            page(results, count, self.base + "/api/v0/projects/", self.query(), limit, offset)
        )

    async def post(self) -> None:
        body = self.body()
        doc = await self.services.projects.create(
            self.user,
            body.get("name"),
            body.get("description", ""),
            body.get("owner"),
            body.get("store"),
        )
        if body.get("repository"):
            doc = await self.services.projects.link_repository(doc, body["repository"])
        described = await self.services.projects.describe(doc, self.base)
        self.set_header("Location", described["url"])
        self.write_json(described, 201)


class OwnershipOptionsHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json([self.user["username"]])


class ProjectHandler(BaseHandler):
    async def get(self, project_id: str) -> None:
        doc = await self.project_for(project_id)
        self.write_json(await self.services.projects.describe(doc, self.base))

    async def patch(self, project_id: str) -> None:
        doc = await self.project_for(project_id, OWNER)
        body = self.body()
        if "repository" not in body:
            raise InvalidInput(
                "Nothing to change.", hint='Send {"repository": {"url": ..., "ref": ...}} or null.'
            )
        doc = await self.services.projects.link_repository(doc, body["repository"])
        self.write_json(await self.services.projects.describe(doc, self.base))


class FetchHandler(BaseHandler):
    """Fetch the linked Git repository: ``{commits: [new commits], errors: [...]}``."""

    async def post(self, project_id: str) -> None:
        doc = await self.project_for(project_id, EDITOR)
        self.write_json(await self.services.projects.fetch(doc, self.base))


class ImportPackageHandler(BaseHandler):
    """Multipart upload of a code tarball (``data``) that becomes an ad-hoc commit."""

    def max_body_bytes(self) -> int:
        return self.ctx.config.max_package_bytes + (1 << 20)  # the tarball and its form fields

    async def post(self, project_id: str) -> None:
        project = await self.project_for(project_id, EDITOR)
        files = self.request.files.get("data")
        if not files:
            raise InvalidInput("Send the code tarball as the multipart file field 'data'.")
        commit = await self.services.projects.import_package(
            project,
            files[0]["body"],
            self.get_body_argument("description", "") or "",
            self.get_body_argument("yaml_path", "") or "",
        )
        self.write_json(self.services.projects.describe_commit(commit, self.base), 201)


class CommitsHandler(BaseHandler):
    async def get(self, project_id: str | None = None) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        adhoc_arg = self.arg("adhoc")
        adhoc = None if adhoc_arg in (None, "") else as_bool(adhoc_arg)
        scope = await self.scope(project_id or self.arg("project"))
        docs, count = await self.services.projects.list_commits(scope, adhoc, limit, offset)
        self.write_json(
            self.services.projects.commit_page(
                docs, count, self.base, self.request.path, self.query(), limit, offset
            )
        )


class CommitHandler(BaseHandler):
    async def get(self, identifier: str) -> None:
        scope = await self.scope(self.arg("project"))
        commit = await self.services.projects.get_commit(identifier, scope)
        include = (self.arg("include") or "").split(",")
        self.write_json(
            self.services.projects.describe_commit(
                commit, self.base, include_config="config" in include
            )
        )


class VariablesHandler(BaseHandler):
    """A project's environment variables: members read them (secret values never), owners set
    them (``{name, value, secret}``)."""

    async def get(self, project_id: str) -> None:
        project = await self.project_for(project_id)
        results = self.ctx.secrets.public(project)
        self.write_json({"count": len(results), "results": results})

    async def post(self, project_id: str) -> None:
        project = await self.project_for(project_id, OWNER)
        self.write_json(await self.ctx.secrets.set(project, self.body()), 201)


class VariableHandler(BaseHandler):
    async def delete(self, project_id: str, name: str) -> None:
        project = await self.project_for(project_id, OWNER)
        await self.ctx.secrets.delete(project, name)
        self.set_status(204)
        self.finish()
