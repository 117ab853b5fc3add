"""Datum aliases, datasets and data lineage (see master/services/datums.py)."""

from __future__ import annotations

from typing import Any

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.models import isoformat

from ..services.common import page, page_params
from ..services.datums import DatumService
from ..services.describe import Describer
from ..services.members import EDITOR
from ..store import Doc, as_dt
from .base import BaseHandler


class DatumsBase(BaseHandler):
    @property
    def datums(self) -> DatumService:
        return DatumService(self.ctx)

    async def alias(self, doc: Doc) -> dict[str, Any]:
        datum = await self.ctx.store.datums.find_one({"_id": doc.get("datum")})
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "project": doc["project"],
            "datum": await Describer(self.ctx, self.base).datum(datum) if datum else None,
            "url": f"datum://{doc['name']}",
            "ctime": isoformat(as_dt(doc["ctime"])),
            "mtime": isoformat(as_dt(doc["mtime"])),
        }

    def execution(self, doc: Doc) -> dict[str, Any]:
        return {
            "id": doc["_id"],
            "counter": doc.get("counter"),
            "status": doc.get("status"),
            "step": doc.get("step"),
            "project": doc.get("project"),
            "url": f"{self.base}/api/v0/executions/{doc['_id']}/",
        }


class DatumAliasesHandler(DatumsBase):
    async def get(self) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        scope = await self.scope(self.arg("project"))
        docs, count = await self.datums.list_aliases(scope, limit, offset)
        results = [await self.alias(d) for d in docs]
        url = self.base + "/api/v0/datum-aliases/"
        self.write_json(page(results, count, url, self.query(), limit, offset))

    async def post(self) -> None:
        body = self.body()
        try:
            await self.project_for(body.get("project"), EDITOR)
        except NotFound:
            raise InvalidInput(f"No project {body.get('project')!r}.") from None
        datum_id = body.get("datum")
        datum = await self.ctx.store.datums.find_one({"_id": datum_id}) if datum_id else None
        if datum:  # the alias may only point at a datum the user can read
            try:
                await self.authorize(datum, what="datum")
            except NotFound:
                raise InvalidInput(f"No datum {datum_id!r}.", hint="Send the datum's id.") from None
        self.write_json(await self.alias(await self.datums.set_alias(body)), 201)


class DatumAliasHandler(DatumsBase):
    async def get(self, alias_id: str) -> None:
        doc = await self.authorize(await self.datums.get_alias(alias_id), what="datum alias")
        self.write_json(await self.alias(doc))


class DatasetsHandler(DatumsBase):
    async def get(self) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        scope = await self.scope(self.arg("project"))
        docs, count = await self.datums.list_datasets(scope, limit, offset)
        results = [await self.dataset(d) for d in docs]
        url = self.base + "/api/v0/datasets/"
        self.write_json(page(results, count, url, self.query(), limit, offset))

    async def dataset(self, doc: Doc) -> dict[str, Any]:
        versions = []
        for v in await self.datums.dataset_versions(doc["_id"]):
            versions.append(
                {
                    "id": v["_id"],
                    "name": v["name"],
                    "uri": f"dataset://{doc['name']}/{v['name']}",
                    "datums": list(v["datums"]),
                    "file_count": len(v["datums"]),
                    "output_execution": v.get("output_execution"),
                    "ctime": isoformat(as_dt(v["ctime"])),
                }
            )
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "project": doc["project"],
            "versions": versions,
            "ctime": isoformat(as_dt(doc["ctime"])),
            "url": f"{self.base}/api/v0/datasets/{doc['_id']}/",
        }


class DatasetHandler(DatasetsHandler):
    async def get(self, dataset_id: str) -> None:  # type: ignore[override]
        doc = await self.authorize(await self.datums.get_dataset(dataset_id), what="dataset")
        self.write_json(await self.dataset(doc))


class DatumLineageHandler(DatumsBase):
    """Producer -> datum -> consumers, and the datums the producer itself read (one level up)."""

    async def get(self, datum_id: str) -> None:
        doc = await self.authorize(await self.services.outputs.get_datum(datum_id), what="datum")
        readable = await self.readable_projects()
        store = self.ctx.store
        producer = await store.executions.find_one({"_id": doc["output_execution"]}) or {}
        consumers = []
        for execution, inputs in await self.datums.consumers(datum_id):
            if readable is not None and execution.get("project") not in readable:
                continue  # a consumer in a project the user cannot read stays unseen
            consumers.append({**self.execution(execution), "inputs": inputs})
        upstream = list(producer.get("consumed_datums") or [])
        self.write_json(
            {
                "datum": await Describer(self.ctx, self.base).datum(doc),
                "output_execution": self.execution(producer) if producer else None,
                "output_execution_inputs": upstream,
                "consumers": consumers,
            }
        )
