"""Pages about the installation: environments, deployments, and the admin page."""

from __future__ import annotations

from ..deploy.describe import Describer
from ..scaling.scaler import list_decisions
from ..services.members import OWNER, ROLES, VIEWER
from .accounts import Accounts
from .base import WebHandler

DECISIONS_SHOWN = 10  # the newest scaling decisions per group on the environments page


class EnvironmentsHandler(WebHandler):
    page = "environments"

    async def get(self) -> None:
        environments = await self.services.environments.list(include_counts=True)
        decisions = {
            env["id"]: await list_decisions(self.ctx, env["id"], DECISIONS_SHOWN)
            for env in environments
        }
        self.render("environments.html", environments=environments, decisions=decisions)


class DeploymentsHandler(WebHandler):
    """Deployments of the projects the user may read: versions, endpoints (status, URL, image,
    build failure) and aliases."""

    page = "deployments"

    async def get(self) -> None:
        assert self.user is not None
        deploy = self.settings.get("deployments")
        if deploy is None:
            self.render("deployments.html", deployments=None)
            return
        projects, _ = await self.services.projects.list_projects(self.user, 10_000, 0)
        names = {p["_id"]: p["name"] for p in projects}
        public = self.ctx.config.public_url.rstrip("/")
        base = public or f"{self.request.protocol}://{self.request.host}" + self.root.rstrip("/")
        describer = Describer(deploy.service, deploy.front, base)
        deployments = []
        for doc in await deploy.service.list_deployments(list(names)):
            item = describer.deployment(doc)
            item["project_name"] = names.get(doc["project"], doc["project"])
            versions = await deploy.service.list_versions([doc["_id"]])
            item["versions"] = [await describer.version(v) for v in versions]
            deployments.append(item)
        self.render("deployments.html", deployments=deployments)


class EndpointHandler(WebHandler):
    """One deployment endpoint: its state and its build log, pushed as the build runs."""

    page = "endpoint"

    async def get(self, endpoint_id: str) -> None:
        assert self.user is not None
        deploy = self.settings["deployments"]
        doc = await deploy.service.get_endpoint(endpoint_id)
        missing = f"No endpoint {endpoint_id!r}."
        project = await self.services.projects.authorize(self.user, doc["project"], VIEWER, missing)
        public = self.ctx.config.public_url.rstrip("/")
        base = public or f"{self.request.protocol}://{self.request.host}" + self.root.rstrip("/")
        endpoint = await Describer(deploy.service, deploy.front, base).endpoint(doc)
        self.render("endpoint.html", ep=endpoint, project=project)


class AdminHandler(WebHandler):
    """Users (create, grant or revoke admin) and projects' members (add, change role, remove)."""

    page = "admin"
    admin_required = True

    @property
    def accounts(self) -> Accounts:
        return Accounts(self.ctx, self.services.users)

    async def get(self) -> None:
        await self.show(message="")

    async def show(self, message: str) -> None:
        assert self.user is not None
        users = await self.accounts.list_users(self.user)
        projects, _ = await self.services.projects.list_projects(self.user, 500, 0)
        for project in projects:
            project["members_list"] = await self.services.projects.members.list(project)
        self.render("admin.html", users=users, projects=projects, roles=ROLES, message=message)

    async def post(self) -> None:
        assert self.user is not None
        arg = self.get_body_argument
        action = arg("action", "")
        if action == "create-user":
            user = await self.accounts.create_user(
                self.user, arg("username", ""), arg("password", ""), arg("is_admin", "") == "on"
            )
            self.set_status(201)
            await self.show(message=f"User {user['username']} created.")
            return
        if action in ("make-admin", "revoke-admin"):
            await self.accounts.set_admin(self.user, arg("id", ""), action == "make-admin")
        elif action == "add-member":
            project = await self.services.projects.authorize(self.user, arg("project", ""), OWNER)
            member = await self.services.users.find(arg("username", "").strip())
            await self.services.projects.members.add(project, member, arg("role", ""))
        elif action == "remove-member":
            project = await self.services.projects.authorize(self.user, arg("project", ""), OWNER)
            await self.services.projects.members.remove(project, arg("user", ""))
        else:
            self.set_status(400)
            await self.show(message="Unknown action.")
            return
        self.redirect(f"{self.root}admin")
