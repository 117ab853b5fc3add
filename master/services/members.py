"""Project membership and roles: who may read, run or administer a project.

Roles, each including the ones before it: ``viewer`` (read everything of the project), ``editor``
(create and stop executions, upload code, fetch, aliases), ``owner`` (settings, membership,
secrets). The creator of a project is its owner; administrators act as owners everywhere.
A user who is no member gets 404 for the project's objects, never a hint that they exist.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from jupyter_valohai.models import isoformat, utcnow

from ..context import Context
from ..store import Doc, as_dt, new_id

VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
ROLES = (VIEWER, EDITOR, OWNER)
RANK = {role: n for n, role in enumerate(ROLES, 1)}
COLLECTION = "memberships"


def check_role(role: Any) -> str:
    if role not in RANK:
        raise InvalidInput(f"Unknown role {role!r}.", hint=f"Use one of {', '.join(ROLES)}.")
    return str(role)


class MembershipService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.docs = ctx.store.memberships  # its writes invalidate the cached roles

    async def setup(self) -> None:
        await self.docs.create_index([("project", ASCENDING), ("user", ASCENDING)], unique=True)
        await self.docs.create_index([("user", ASCENDING)])

    async def role(self, user: Doc, project: Doc) -> str | None:
        """The user's role in the project (``None``: no access at all)."""
        if user.get("is_admin") or project.get("owner") == user["_id"]:
            return OWNER
        query = {"project": project["_id"], "user": user["_id"]}

        async def load() -> str:
            doc = await self.docs.find_one(query)
            return str(doc["role"]) if doc and doc.get("role") in RANK else ""

        # cached per (project, user), no membership too: adding, changing or removing one
        # invalidates it in every master process (master/cache.py)
        key = f"{query['project']} {query['user']}"
        role = await self.ctx.store.cache.load(COLLECTION, key, load)
        return role or None

    async def check(self, user: Doc, project: Doc, need: str) -> str:
        """Return the user's role if it is at least ``need``; raise 404 or 403 otherwise."""
        role = await self.role(user, project)
        if role is None:
            raise NotFound(f"No project {project['_id']!r}.", hint="See `vh project list`.")
        if RANK[role] < RANK[need]:
            raise PermissionDenied(
                f"This needs the {need} role in project {project['name']!r}; you are {role}.",
                hint="Ask an owner of the project to change your role.",
            )
        return role

    async def readable(self, user: Doc) -> list[str] | None:
        """Ids of the projects the user may read (``None``: every project, for administrators)."""
        if user.get("is_admin"):
            return None
        ids = {d["project"] async for d in self.docs.find({"user": user["_id"]}, {"project": 1})}
        owned = self.ctx.store.projects.find({"owner": user["_id"]}, {"_id": 1})
        ids |= {d["_id"] async for d in owned}
        return sorted(ids)

    async def add(self, project: Doc, user: Doc, role: Any) -> Doc:
        """Give ``user`` ``role`` in the project (creating or changing the membership)."""
        role = check_role(role)
        if project.get("owner") == user["_id"] and role != OWNER:
            raise Conflict(
                "The project's creator stays its owner.",
                hint="Make someone else an owner; the creator's role does not change.",
            )
        query = {"project": project["_id"], "user": user["_id"]}
        update = {
            "$set": {"role": role, "mtime": utcnow()},
            "$setOnInsert": {"_id": new_id("m"), "ctime": utcnow()},
        }
        try:
            await self.docs.update_one(query, update, upsert=True)
        except DuplicateKeyError:  # a concurrent add won the insert
            await self.docs.update_one(query, {"$set": update["$set"]})
        doc: Doc = await self.docs.find_one(query)  # type: ignore[assignment]  # written above
        return doc

    async def remove(self, project: Doc, user_id: str) -> None:
        if project.get("owner") == user_id:
            raise Conflict("The project's creator cannot be removed from it.")
        result = await self.docs.delete_one({"project": project["_id"], "user": user_id})
        if not result.deleted_count:
            raise NotFound(f"User {user_id!r} is not a member of this project.")

    async def list(self, project: Doc) -> list[dict[str, Any]]:
        """Every member with their role, the creator first."""
        users = self.ctx.store.users
        creator = await users.find_one({"_id": project["owner"]}) or {"_id": project["owner"]}
        out = [self._describe(creator, OWNER, project.get("ctime"))]
        async for doc in self.docs.find({"project": project["_id"]}).sort("ctime", 1):
            if doc["user"] == project["owner"]:
                continue
            user = await users.find_one({"_id": doc["user"]}) or {"_id": doc["user"]}
            out.append(self._describe(user, doc["role"], doc.get("ctime")))
        return out

    @staticmethod
    def _describe(user: Doc, role: str, ctime: Any) -> dict[str, Any]:
        return {
            "user": {"id": user["_id"], "username": user.get("username", "")},
            "role": role,
            "ctime": isoformat(as_dt(ctime)),
        }
