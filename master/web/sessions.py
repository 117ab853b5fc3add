"""Browser sessions: a random id in a signed, HttpOnly cookie; the user it stands for in Redis.

Sessions live in Redis so logging out (or an admin removing a user) ends them on every master
replica at once. The cookie signing secret comes from ``$VH_COOKIE_SECRET`` or a file in the
master's data directory, created on first use.
"""

from __future__ import annotations

import os
import secrets

import redis.asyncio as aioredis

from ..queue import PREFIX

SESSION_COOKIE = "vh_session"
SESSION_DAYS = 7
SESSION_SECONDS = SESSION_DAYS * 24 * 3600


def session_key(session_id: str) -> str:
    return f"{PREFIX}websession:{session_id}"


def cookie_secret(data_dir: str) -> str:
    """The secret that signs session and XSRF cookies (stable across restarts)."""
    env = os.environ.get("VH_COOKIE_SECRET", "")
    if env:
        return env
    folder = os.path.join(data_dir, "secrets")
    path = os.path.join(folder, "cookie_secret")
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.read().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    os.makedirs(folder, mode=0o700, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another master sharing the directory wrote it first
        return cookie_secret(data_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret)
    return secret


class Sessions:
    """Create, resolve and end sessions."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def create(self, user_id: str) -> str:
        session_id = secrets.token_urlsafe(32)
        await self.redis.set(session_key(session_id), user_id, ex=SESSION_SECONDS)
        return session_id

    async def user_id(self, session_id: str) -> str | None:
        value = await self.redis.get(session_key(session_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def end(self, session_id: str) -> None:
        await self.redis.delete(session_key(session_id))
