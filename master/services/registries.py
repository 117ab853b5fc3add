"""Docker registry credentials: stored encrypted (Fernet, see :class:`.git.SecretBox`), never
answered by the API, handed to the agent that pulls an image of that registry.

One credential per registry (``host`` or ``host:port``); storing another for the same registry
replaces it. The password is only ever decrypted for a claim spec (``registry_auth``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.models import isoformat, utcnow

from ..context import Context
from ..store import Doc, as_dt, new_id
from .git import Credentials, SecretBox

COLLECTION = "registry_credentials"
BODY_HINT = (
    'Send {"registry": "host:port", "username": "...", "password": "..."} '
    '(e.g. "registry.example.com" or "localhost:5000").'
)
log = logging.getLogger(__name__)

REGISTRY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


def registry_of(image: str) -> str | None:
    """Return the registry host a Docker image reference names, or None (Docker Hub).

    As Docker parses references: the part before the first "/" is a registry when it holds a
    "." or a ":" or is "localhost".
    """
    first, slash, _ = (image or "").partition("/")
    if not slash:
        return None
    if "." in first or ":" in first or first == "localhost":
        return first.lower()
    return None


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"'{name}' is required.", hint=BODY_HINT)
    return value if name == "password" else value.strip()


class RegistryCredentialService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.docs = ctx.store.db[COLLECTION]
        self.box = SecretBox(os.path.join(ctx.config.data_dir, "secrets", "registry.key"))

    @staticmethod
    def public(doc: Doc) -> dict[str, Any]:
        """What the API shows of a credential: never the password."""
        return {
            "id": doc["_id"],
            "registry": doc["registry"],
            "username": doc["username"],
            "has_password": bool(doc.get("sealed")),
            "ctime": isoformat(as_dt(doc["ctime"])),
            "mtime": isoformat(as_dt(doc["mtime"])),
        }

    async def list(self) -> list[Doc]:
        return [d async for d in self.docs.find({}).sort("registry", 1)]

    async def store(self, body: dict[str, Any]) -> Doc:
        registry = _text(body, "registry").lower()
        if "/" in registry or not REGISTRY.match(registry):
            raise InvalidInput(
                f"{registry!r} is not a registry host.",
                hint="Give the registry's host or host:port only, without scheme or path. "
                + BODY_HINT,
            )
        username, password = _text(body, "username"), _text(body, "password")
        now = utcnow()
        sets = {
            "username": username,
            "sealed": self.box.seal(Credentials(username, password)),
            "mtime": now,
        }
        old = await self.docs.find_one({"registry": registry}, {"_id": 1})
        if old:
            doc_id = old["_id"]
            await self.docs.update_one({"_id": doc_id}, {"$set": sets})
        else:
            doc_id = new_id("rc")
            await self.docs.insert_one({"_id": doc_id, "registry": registry, "ctime": now, **sets})
        return await self.docs.find_one({"_id": doc_id})  # type: ignore[no-any-return]

    async def delete(self, credential_id: str) -> None:
        result = await self.docs.delete_one({"_id": credential_id})
        if not result.deleted_count:
            raise NotFound(f"No registry credential {credential_id!r}.")

    async def auth_for(self, image: str) -> dict[str, str] | None:
        """The decrypted ``{username, password}`` for the registry of ``image``, if stored."""
        registry = registry_of(image)
        if registry is None:
            return None
        doc = await self.docs.find_one({"registry": registry})
        if not doc:
            return None
        try:
            creds = self.box.open(doc.get("sealed"))
        except InvalidInput:  # the key changed: pull without, the pull error says the rest
            log.warning("The stored credentials of registry %s cannot be decrypted.", registry)
            return None
        return {"username": creds.username, "password": creds.password}
