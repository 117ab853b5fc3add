"""What the pages show: executions filtered for a table, one execution with its lineage, several
side by side. Reads through the services and the describer; decides nothing about access."""

from __future__ import annotations

import asyncio
import posixpath
from typing import TYPE_CHECKING, Any

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.models import ALL_STATUSES, INCOMPLETE_STATUSES

from ..services.common import seconds_between
from ..services.datums import DatumService
from ..services.describe import Describer
from ..services.members import VIEWER
from ..store import as_dt
from .notebook import MAX_NOTEBOOK_BYTES, render_notebook

if TYPE_CHECKING:
    from ..context import Context
    from ..server import Services
    from ..store import Doc

PAGE_SIZE = 50
MAX_COMPARE = 8
FILTERS = ("status", "step", "environment", "creator")


class Browser:
    def __init__(self, ctx: Context, services: Services, base: str, user: Doc) -> None:
        self.ctx = ctx
        self.services = services
        self.user = user
        self.describer = Describer(ctx, base)
        self._scope: list[str] | None = None
        self._scope_known = False

    async def readable(self, project_id: str) -> bool:
        """Whether the user may read the project (lineage links only where they may)."""
        if not self._scope_known:
            self._scope = await self.services.projects.readable(self.user)
            self._scope_known = True
        return self._scope is None or project_id in self._scope

    # --- tables ---------------------------------------------------------------------------------

    async def filter_choices(self, project_id: str) -> dict[str, list[tuple[str, str]]]:
        """The values each filter may take in this project, as (value, label)."""
        executions = self.ctx.store.executions
        steps = sorted(await executions.distinct("step", {"project": project_id}))
        env_ids = await executions.distinct("environment", {"project": project_id})
        user_ids = await executions.distinct("creator", {"project": project_id})
        envs = [await self.ctx.store.environments.find_one({"_id": e}) or {} for e in env_ids]
        users = [await self.ctx.store.users.find_one({"_id": u}) or {} for u in user_ids]
        return {
            "status": [("incomplete", "incomplete"), *((s, s) for s in sorted(ALL_STATUSES))],
            "step": [(s, s) for s in steps],
            "environment": sorted(
                (e["_id"], e.get("name", e["_id"])) for e in envs if e.get("_id")
            ),
            "creator": sorted(
                (u["_id"], u.get("username", u["_id"])) for u in users if u.get("_id")
            ),
        }

    async def executions(
        self, project_id: str, filters: dict[str, str], offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        query: Doc = {"project": project_id, "deleted": False}
        status = filters.get("status")
        if status == "incomplete":
            query["status"] = {"$in": sorted(INCOMPLETE_STATUSES)}
        elif status:
            if status not in ALL_STATUSES:
                raise InvalidInput(f"Unknown status {status!r}.")
            query["status"] = status
        for key in ("step", "environment", "creator"):
            if filters.get(key):
                query[key] = filters[key]
        store = self.ctx.store  # by index, as the API's list (docs/performance.md)
        docs, count = await store.page(store.executions, query, "counter", -1, offset, PAGE_SIZE)
        out = await self.describer.executions(docs, {"metadata"})
        for doc, described in zip(docs, out, strict=True):
            described["queue_wait"] = seconds_between(
                as_dt(doc.get("queued_at")), as_dt(doc.get("started_at"))
            )
        return out, count

    # --- one execution --------------------------------------------------------------------------

    async def execution(self, doc: Doc) -> dict[str, Any]:
        """An execution the user may read, with its inputs' and outputs' lineage."""
        described = await self.describer.execution(doc)
        described["inputs_lineage"] = await self._inputs(doc)
        described["outputs"] = await self._outputs(doc)
        return described

    async def _link(self, execution_id: str) -> dict[str, Any] | None:
        doc = await self.ctx.store.executions.find_one({"_id": execution_id})
        if not doc or not await self.readable(doc["project"]):
            return None
        return {"project": doc["project"], "counter": doc["counter"], "step": doc["step"]}

    async def _inputs(self, doc: Doc) -> list[dict[str, Any]]:
        """Each input URI; a datum's, with the execution that made it."""
        out = []
        for name, uris in (doc.get("resolved_inputs") or doc.get("inputs") or {}).items():
            for uri in uris:
                item: dict[str, Any] = {"name": name, "uri": uri, "producer": None}
                if uri.startswith("datum://"):
                    datum = await self.ctx.store.datums.find_one({"_id": uri[len("datum://") :]})
                    if datum:
                        item["datum"] = datum["name"]
                        item["producer"] = await self._link(datum["output_execution"])
                out.append(item)
        return out

    async def _outputs(self, doc: Doc) -> list[dict[str, Any]]:
        """Each output datum with the executions that consumed it."""
        datums = DatumService(self.ctx)
        cursor = self.ctx.store.datums.find({"output_execution": doc["_id"]}).sort("name", 1)
        out = []
        async for datum in cursor:
            consumers = []
            for execution, names in await datums.consumers(datum["_id"]):
                if not await self.readable(execution["project"]):
                    continue
                consumers.append(
                    {
                        "project": execution["project"],
                        "counter": execution["counter"],
                        "step": execution["step"],
                        "inputs": names,
                    }
                )
            out.append(
                {
                    "id": datum["_id"],
                    "name": datum["name"],
                    "size": datum.get("size", 0),
                    "uri": datum.get("uri", ""),
                    "consumers": consumers,
                }
            )
        return out

    async def notebook_html(self, doc: Doc) -> str:
        """The executed notebook of a notebook step, sanitized; NotFound when there is none."""
        if not doc.get("notebook"):
            raise NotFound("This execution ran commands, not a notebook.")
        name = posixpath.basename(str(doc["notebook"]).replace("\\", "/"))
        datum = await self.ctx.store.datums.find_one({"output_execution": doc["_id"], "name": name})
        if not datum:
            raise NotFound(
                "The executed notebook is not among the outputs (yet).",
                hint="It is uploaded when the execution ends.",
            )
        if datum.get("size", 0) > MAX_NOTEBOOK_BYTES:
            raise InvalidInput("The executed notebook is too large to show; download it instead.")
        store = self.services.outputs.store_for(datum)

        def read() -> bytes:
            with store.open(datum["key"]) as fp:
                return fp.read(MAX_NOTEBOOK_BYTES + 1)

        raw = await asyncio.to_thread(read)
        try:
            return await asyncio.to_thread(render_notebook, raw)
        except Exception as exc:  # nbformat's errors vary by version; the page says what happened
            raise InvalidInput(f"The executed notebook cannot be read: {exc}") from None

    # --- comparison -----------------------------------------------------------------------------

    async def compare(self, refs: list[str]) -> list[dict[str, Any]]:
        """Executions by id (at most :data:`MAX_COMPARE`), each with its metadata series."""
        if len(refs) > MAX_COMPARE:
            raise InvalidInput(f"Compare at most {MAX_COMPARE} executions at once.")
        out = []
        for ref in dict.fromkeys(refs):
            doc = await self.services.executions.get(ref)
            missing = f"No execution {ref!r}."
            await self.services.projects.authorize(self.user, doc["project"], VIEWER, missing)
            described = await self.describer.execution(doc)
            entries = await self.describer.metadata_entries(doc["_id"])
            described["series"] = [e["data"] for e in entries if isinstance(e["data"], dict)]
            out.append(described)
        return out
