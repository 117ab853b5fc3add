"""Users, API tokens and worker-group tokens. Only hashes of tokens and passwords are stored."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import NotAuthenticated
from jupyter_valohai.models import hash_token, isoformat, new_token, utcnow

from ..context import Context
from ..store import Doc, as_dt, new_id

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return ``scrypt$<salt hex>$<hash hex>``."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, _ = stored.split("$", 2)
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt_hex)), stored)


def describe_user(user: Doc) -> dict[str, Any]:
    return {
        "id": user["_id"],
        "username": user["username"],
        "email": user.get("email", ""),
        "is_admin": bool(user.get("is_admin")),
        "ctime": isoformat(as_dt(user.get("ctime"))),
    }


class UserService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def ensure_user(
        self,
        username: str,
        token: str | None = None,
        password: str | None = None,
        is_admin: bool = False,
    ) -> Doc:
        """Create ``username`` if missing; attach ``token`` (hashed) and ``password`` if given."""
        users = self.ctx.store.users
        update: Doc = {"$setOnInsert": {"_id": new_id("u"), "ctime": utcnow()}}
        sets: Doc = {"is_admin": is_admin}
        if password:
            sets["password_hash"] = hash_password(password)
        update["$set"] = sets
        try:
            await users.update_one({"username": username}, update, upsert=True)
        except DuplicateKeyError:  # another replica created it at the same moment
            await users.update_one({"username": username}, {"$set": sets})
        user: Doc = await users.find_one({"username": username})  # type: ignore[assignment]
        if token:
            await self.add_token(user["_id"], token)
        return user

    async def add_token(self, user_id: str, token: str | None = None) -> str:
        token = token or new_token()
        await self.ctx.store.tokens.update_one(
            {"hash": hash_token(token)},
            {"$set": {"user": user_id}, "$setOnInsert": {"ctime": utcnow()}},
            upsert=True,
        )
        return token

    async def authenticate(self, token: str | None) -> Doc:
        """Return the user owning an API token, or raise :class:`NotAuthenticated`."""
        if not token:
            raise NotAuthenticated(
                "Authentication credentials were not provided.",
                hint="Send `Authorization: Token <your API token>` (see `vh login`).",
            )
        record = await self.ctx.store.tokens.find_one({"hash": hash_token(token)})
        user = None
        if record and record.get("user"):
            user = await self.ctx.store.users.find_one({"_id": record["user"]})
        if not user:
            raise NotAuthenticated("Invalid token.", hint="Log in again to get a new token.")
        return user  # type: ignore[no-any-return]

    async def get_token(self, username: str, password: str) -> str:
        """Exchange a username and password for a new API token."""
        user = await self.ctx.store.users.find_one({"username": username})
        if not user or not check_password(password, user.get("password_hash")):
            raise NotAuthenticated(
                "Unable to log in with provided credentials.",
                hint="Check the username and password, or log in with `vh login --token`.",
            )
        return await self.add_token(user["_id"])
