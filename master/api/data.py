"""Data (output datums) and environments."""

from __future__ import annotations

import posixpath

from ..services.common import page, page_params
from ..services.describe import Describer
from .base import BaseHandler


class DataHandler(BaseHandler):
    async def get(self) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        filters = {k: self.arg(k) or "" for k in ("output_execution", "project")}
        docs, count = await self.services.outputs.list_datums(filters, limit, offset)
        describer = Describer(self.ctx, self.base)
        results = [await describer.datum(d) for d in docs]
        self.write_json(
            page(results, count, self.base + "/api/v0/data/", self.query(), limit, offset)
        )


class DatumHandler(BaseHandler):
    async def get(self, datum_id: str) -> None:
        doc = await self.services.outputs.get_datum(datum_id)
        self.write_json(await Describer(self.ctx, self.base).datum(doc))


class DatumDownloadHandler(BaseHandler):
    """The datum's bytes, streamed as an attachment (valohai-cli accepts that or {"url"})."""

    async def get(self, datum_id: str) -> None:
        doc = await self.services.outputs.get_datum(datum_id)
        await self.stream_object(
            doc["key"], posixpath.basename(doc["name"]), "application/octet-stream"
        )


class EnvironmentsHandler(BaseHandler):
    async def get(self) -> None:
        include = (self.arg("include") or "").split(",")
        results = await self.services.environments.list("unfinished_job_count" in include)
        self.write_json({"count": len(results), "next": None, "previous": None, "results": results})
