"""Data (output datums)."""

from __future__ import annotations

import asyncio
import posixpath

from ..services.common import page, page_params
from ..services.describe import Describer
from .base import BaseHandler


class DataHandler(BaseHandler):
    async def get(self) -> None:
        limit, offset = page_params(self.arg("limit"), self.arg("offset"))
        filters = {k: self.arg(k) or "" for k in ("output_execution", "project")}
        scope = await self.scope(filters.pop("project"))
        docs, count = await self.services.outputs.list_datums(filters, limit, offset, scope)
        describer = Describer(self.ctx, self.base)
        results = [await describer.datum(d) for d in docs]
        self.write_json(
            page(results, count, self.base + "/api/v0/data/", self.query(), limit, offset)
        )


class DatumHandler(BaseHandler):
    async def get(self, datum_id: str) -> None:
        doc = await self.authorize(await self.services.outputs.get_datum(datum_id), what="datum")
        self.write_json(await Describer(self.ctx, self.base).datum(doc))


class DatumDownloadHandler(BaseHandler):
    """The datum's bytes: a redirect to a short-lived signed store URL where the store makes
    them (S3, Azure), else streamed as an attachment (valohai-cli accepts either)."""

    async def get(self, datum_id: str) -> None:
        doc = await self.authorize(await self.services.outputs.get_datum(datum_id), what="datum")
        filename = posixpath.basename(doc["name"])
        store = self.services.outputs.store_for(doc)
        url = await asyncio.to_thread(store.download_url, doc["key"], filename)
        if url:
            self.redirect(url)
            return
        await self.stream_object(doc["key"], filename, "application/octet-stream", store)
