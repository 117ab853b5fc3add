"""get-token and users/me."""

from __future__ import annotations

from jupyter_valohai.errors import InvalidInput

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
