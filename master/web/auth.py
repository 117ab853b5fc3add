"""Log in, log out, and a user's API tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from .accounts import Accounts
from .base import WebHandler


class LoginHandler(WebHandler):
    login_required = False
    page = "login"

    def safe_next(self) -> str:
        """Where to go after logging in: a path under the pages' prefix, nothing else."""
        target = self.get_argument("next", "") or self.root
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path.startswith(self.root):
            return self.root
        if "\\" in target or target.startswith("//"):
            return self.root
        return target

    async def get(self) -> None:
        if self.user is not None:
            self.redirect(self.safe_next())
            return
        self.render("login.html", next=self.safe_next(), error="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        accounts = Accounts(self.ctx, self.services.users)
        user = await accounts.login(username, password) if username and password else None
        if user is None:
            self.set_status(401)
            self.render("login.html", next=self.safe_next(), error="Wrong username or password.")
            return
        old = self.session_id()
        if old:
            await self.sessions.end(old)
        self.set_session_cookie(await self.sessions.create(user["_id"]))
        self.redirect(self.safe_next())


class LogoutHandler(WebHandler):
    login_required = False

    async def post(self) -> None:
        session_id = self.session_id()
        if session_id:
            await self.sessions.end(session_id)
        self.clear_cookie("vh_session", path=self.root)
        self.redirect(f"{self.root}login")


class TokensHandler(WebHandler):
    page = "tokens"

    async def get(self) -> None:
        await self.show(new_token="")

    async def show(self, new_token: str) -> None:
        assert self.user is not None
        tokens = await Accounts(self.ctx, self.services.users).tokens(self.user["_id"])
        self.render("tokens.html", tokens=tokens, new_token=new_token)

    async def post(self) -> None:
        assert self.user is not None
        accounts = Accounts(self.ctx, self.services.users)
        action = self.get_body_argument("action", "create")
        if action == "revoke":
            await accounts.revoke_token(self.user["_id"], self.get_body_argument("id", ""))
            self.redirect(f"{self.root}tokens")
            return
        token = await accounts.create_token(self.user["_id"], self.get_body_argument("name", ""))
        self.set_status(201)
        await self.show(new_token=token)
