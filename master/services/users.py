"""Users, API tokens and worker-group tokens. Only hashes of tokens and passwords are stored.

Passwords are hashed with argon2id (argon2-cffi); hashes of the older ``scrypt$`` form still verify
and are replaced by an argon2 hash at the next successful log-in. API tokens carry 256 random bits
(:func:`jupyter_valohai.models.new_token`) and are stored as their SHA-256 only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import Conflict, InvalidInput, NotAuthenticated, PermissionDenied
from jupyter_valohai.models import hash_token, isoformat, new_token, utcnow

from ..context import Context
from ..store import Doc, as_dt, new_id

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_hasher = PasswordHasher()
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """Return the stored form of a password (argon2id, salted, with its parameters)."""
    return _hasher.hash(password)


def _check_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$", 2)
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def check_password(password: str, stored: str | None) -> bool:
    """Tell whether ``password`` matches a stored hash (argon2, or the older scrypt form)."""
    if not stored or not isinstance(password, str):
        return False
    if stored.startswith("scrypt$"):
        return _check_scrypt(password, stored)
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Tell whether a hash that just verified should be replaced by a fresh argon2 hash."""
    return stored.startswith("scrypt$") or _hasher.check_needs_rehash(stored)


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

    async def create(self, admin: Doc, body: Any) -> Doc:
        """An administrator creates a user ``{username, password, email?, is_admin?}``."""
        require_admin(admin)
        if not isinstance(body, dict):
            raise InvalidInput("The request body must be a JSON object.")
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not USERNAME.match(username):
            raise InvalidInput(
                "A user needs a username of letters, digits, '.', '_', '@' or '-'.",
                hint='e.g. {"username": "ada", "password": "a long passphrase"}',
            )
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise InvalidInput(f"The password must be at least {MIN_PASSWORD} characters.")
        email = body.get("email") or ""
        if not isinstance(email, str):
            raise InvalidInput("'email' must be a string.")
        doc = {
            "_id": new_id("u"),
            "username": username,
            "email": email,
            "is_admin": body.get("is_admin") is True,
            "password_hash": hash_password(password),
            "ctime": utcnow(),
        }
        try:
            await self.ctx.store.users.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"There is already a user {username!r}.") from None
        return doc

    async def list_users(self, admin: Doc) -> list[Doc]:
        require_admin(admin)
        return [u async for u in self.ctx.store.users.find({}).sort("username", 1)]

    async def find(self, ref: Any) -> Doc:
        """Return a user by id or username."""
        user = None
        if isinstance(ref, str) and ref:
            user = await self.ctx.store.users.find_one({"$or": [{"_id": ref}, {"username": ref}]})
        if not user:
            raise InvalidInput(f"No user {ref!r}.", hint="Give a username or user id.")
        return user  # type: ignore[no-any-return]

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
        # Both reads are cached (master/cache.py); revoking the token or changing the user
        # invalidates them in every master process.
        record = await self.ctx.store.token(hash_token(token))
        user = None
        if record and record.get("user"):
            user = await self.ctx.store.by_id("users", record["user"])
        if not user:
            raise NotAuthenticated("Invalid token.", hint="Log in again to get a new token.")
        return user

    async def get(self, user_id: Any) -> Doc | None:
        """A user by id (cached)."""
        return await self.ctx.store.by_id("users", user_id)

    async def login(self, username: str, password: str) -> Doc:
        """Return the user if the password matches (rehashing an old-style hash), else raise."""
        user = await self.ctx.store.users.find_one({"username": username})
        stored = (user or {}).get("password_hash")
        if not user or not check_password(password, stored):
            raise NotAuthenticated(
                "Unable to log in with provided credentials.",
                hint="Check the username and password, or log in with `vh login --token`.",
            )
        if needs_rehash(stored):
            await self.ctx.store.users.update_one(
                {"_id": user["_id"], "password_hash": stored},
                {"$set": {"password_hash": hash_password(password)}},
            )
        return user  # type: ignore[no-any-return]

    async def get_token(self, username: str, password: str) -> str:
        """Exchange a username and password for a new API token."""
        user = await self.login(username, password)
        return await self.add_token(user["_id"])


def require_admin(user: Doc) -> None:
    if not user.get("is_admin"):
        raise PermissionDenied(
            "Only an administrator may do this.", hint="Ask the master's administrator."
        )
