"""Pages about the installation: environments, deployments, and the admin page."""

from __future__ import annotations

from ..api.routes import ROUTES
from .accounts import Accounts
from .base import WebHandler


class EnvironmentsHandler(WebHandler):
    page = "environments"

    async def get(self) -> None:
        environments = await self.services.environments.list(include_counts=True)
        self.render("environments.html", environments=environments)


class DeploymentsHandler(WebHandler):
    """Deployments, when the master has them; until then, what the API offers about them."""

    page = "deployments"

    async def get(self) -> None:
        routes = [(r.path, sorted(r.ops.items())) for r in ROUTES if "deployment" in r.path.lower()]
        self.render("deployments.html", routes=routes)


class AdminHandler(WebHandler):
    page = "admin"
    admin_required = True

    async def get(self) -> None:
        await self.show(message="")

    async def show(self, message: str) -> None:
        accounts = Accounts(self.ctx, self.services.users)
        users = await accounts.list_users()
        names = {u["_id"]: u["username"] for u in users}
        projects, _ = await self.services.projects.list_projects(500, 0)
        for project in projects:
            project["owner_name"] = names.get(project.get("owner"), project.get("owner"))
        self.render("admin.html", users=users, projects=projects, message=message)

    async def post(self) -> None:
        accounts = Accounts(self.ctx, self.services.users)
        action = self.get_body_argument("action", "")
        if action == "create-user":
            user = await accounts.create_user(
                self.get_body_argument("username", ""),
                self.get_body_argument("password", ""),
                self.get_body_argument("is_admin", "") == "on",
            )
            self.set_status(201)
            await self.show(message=f"User {user['username']} created.")
            return
        if action in ("make-admin", "revoke-admin"):
            await accounts.set_admin(self.get_body_argument("id", ""), action == "make-admin")
            self.redirect(f"{self.root}admin")
            return
        self.set_status(400)
        await self.show(message="Unknown action.")
