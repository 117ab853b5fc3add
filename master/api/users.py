"""get-token, users/me, users (administrators) and project membership."""

from __future__ import annotations

from jupyter_valohai.errors import InvalidInput

from ..services.members import OWNER
from ..services.users import describe_user
from .base import BaseHandler


class GetTokenHandler(BaseHandler):
    """Exchange a username and password (form or JSON) for an API token."""

    auth = None

    async def post(self) -> None:
        body = self.body()
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidInput("username and password are required.")
        token = await self.services.users.get_token(username, password)
        self.write_json({"token": token})


class MeHandler(BaseHandler):
    """The user the token belongs to."""

    async def get(self) -> None:
        self.write_json(describe_user(self.user))


class UsersHandler(BaseHandler):
    """Administrators list and create users."""

    async def get(self) -> None:
        users = [describe_user(u) for u in await self.services.users.list_users(self.user)]
        self.write_json({"count": len(users), "next": None, "previous": None, "results": users})

    async def post(self) -> None:
        doc = await self.services.users.create(self.user, self.body())
        self.write_json(describe_user(doc), 201)


class MembersHandler(BaseHandler):
    """A project's members: any member reads them, owners add or change them."""

    async def get(self, project_id: str) -> None:
        project = await self.project_for(project_id)
        members = await self.services.projects.members.list(project)
        self.write_json({"count": len(members), "results": members})

    async def post(self, project_id: str) -> None:
        project = await self.project_for(project_id, OWNER)
        body = self.body()
        user = await self.services.users.find(body.get("user") or body.get("username"))
        members = self.services.projects.members
        await members.add(project, user, body.get("role"))
        described = next(m for m in await members.list(project) if m["user"]["id"] == user["_id"])
        self.write_json(described, 201)


class MemberHandler(BaseHandler):
    """Remove a member (owners only)."""

    async def delete(self, project_id: str, user_ref: str) -> None:
        project = await self.project_for(project_id, OWNER)
        user = await self.services.users.find(user_ref)
        await self.services.projects.members.remove(project, user["_id"])
        self.set_status(204)
        self.finish()
