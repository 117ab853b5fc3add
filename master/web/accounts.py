"""Accounts as the web pages manage them: password login, a user's API tokens, users (admin).

Tokens are stored only as hashes (:mod:`master.services.users`); a page names one by the start of
its hash, and shows a new token exactly once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import Conflict, InvalidInput, NotFound
from jupyter_valohai.models import hash_token, isoformat, new_token, utcnow

from ..context import Context
from ..services.users import UserService, check_password, hash_password
from ..store import Doc, as_dt, new_id

TOKEN_ID_CHARS = 16
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8


class Accounts:
    def __init__(self, ctx: Context, users: UserService) -> None:
        self.ctx = ctx
        self.users = users

    async def login(self, username: str, password: str) -> Doc | None:
        """The user these credentials name, or ``None``."""
        user = await self.ctx.store.users.find_one({"username": username})
        stored = (user or {}).get("password_hash")
        # check_password is deliberately slow (a password hash): off the event loop.
        ok = await asyncio.to_thread(check_password, password, stored)
        return user if user and ok else None

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

    async def list_users(self) -> list[Doc]:
        return [u async for u in self.ctx.store.users.find({}).sort("username", 1)]

    async def create_user(self, username: str, password: str, is_admin: bool) -> Doc:
        username = username.strip()
        if not USERNAME.match(username):
            raise InvalidInput(
                "A username is 1-64 letters, digits or _ . @ -, starting with a letter or digit."
            )
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"A password has at least {MIN_PASSWORD} characters.")
        password_hash = await asyncio.to_thread(hash_password, password)
        doc: Doc = {
            "_id": new_id("u"),
            "username": username,
            "password_hash": password_hash,
            "is_admin": is_admin,
            "ctime": utcnow(),
        }
        try:
            await self.ctx.store.users.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"There is already a user {username!r}.") from None
        return doc

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        result = await self.ctx.store.users.update_one(
            {"_id": user_id}, {"$set": {"is_admin": is_admin}}
        )
        if not result.matched_count:
            raise NotFound(f"No user {user_id!r}.")
