"""Accounts as the web pages manage them: password login, a user's API tokens, users (admin).

Tokens are stored only as hashes (:mod:`master.services.users`); a page names one by the start of
its hash, and shows a new token exactly once.
"""

from __future__ import annotations

from typing import Any

from jupyter_valohai.errors import NotAuthenticated, NotFound
from jupyter_valohai.models import hash_token, isoformat, new_token

from ..context import Context
from ..services.users import UserService, require_admin
from ..store import Doc, as_dt

TOKEN_ID_CHARS = 16


class Accounts:
    def __init__(self, ctx: Context, users: UserService) -> None:
        self.ctx = ctx
        self.users = users

    async def login(self, username: str, password: str) -> Doc | None:
        """The user these credentials name, or ``None``."""
        try:
            return await self.users.login(username, password)
        except NotAuthenticated:
            return None

    # --- API tokens ------------------------------------------------------------------------------

    async def tokens(self, user_id: str) -> list[dict[str, Any]]:
        cursor = self.ctx.store.tokens.find({"user": user_id}).sort("ctime", 1)
        return [
            {
                "id": t["hash"][:TOKEN_ID_CHARS],
                "name": t.get("name") or "",
                "ctime": isoformat(as_dt(t.get("ctime"))),
            }
            async for t in cursor
        ]

    async def create_token(self, user_id: str, name: str) -> str:
        name = name.strip()[:100]
        token = await self.users.add_token(user_id, new_token())
        await self.ctx.store.tokens.update_one(
            {"hash": hash_token(token)}, {"$set": {"name": name}}
        )
        return token

    async def revoke_token(self, user_id: str, token_id: str) -> None:
        async for t in self.ctx.store.tokens.find({"user": user_id}):
            if token_id and t["hash"][:TOKEN_ID_CHARS] == token_id:
                await self.ctx.store.tokens.delete_one({"hash": t["hash"], "user": user_id})
                return
        raise NotFound("No such token.", hint="It may have been revoked already.")

    # --- users (admin) ---------------------------------------------------------------------------

    async def list_users(self, admin: Doc) -> list[Doc]:
        return await self.users.list_users(admin)

    async def create_user(self, admin: Doc, username: str, password: str, is_admin: bool) -> Doc:
        body = {"username": username.strip(), "password": password, "is_admin": is_admin}
        return await self.users.create(admin, body)

    async def set_admin(self, admin: Doc, user_id: str, is_admin: bool) -> None:
        require_admin(admin)
        result = await self.ctx.store.users.update_one(
            {"_id": user_id}, {"$set": {"is_admin": is_admin}}
        )
        if not result.matched_count:
            raise NotFound(f"No user {user_id!r}.")
