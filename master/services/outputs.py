"""Outputs: upload URLs, fenced uploads into the artifact store, registration as datums.

Where the store can sign URLs (S3, Azure), agents upload straight to it: outputs/prepare answers
with a presigned PUT, or presigned part PUTs for a large file, and registration completes the
multipart upload and checks the stored size. Elsewhere the bytes stream through the master.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, BinaryIO
from urllib.parse import quote

from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.models import utcnow
from jupyter_valohai.stores import ArtifactStore
from jupyter_valohai.stores.base import DirectUpload, check_key
from jupyter_valohai.stores.registry import StoreSet

from ..context import Context
from ..store import Doc, new_id
from .agent import AgentService


def output_key(execution_id: str, attempt: int, name: str) -> str:
    # The attempt is part of the key, so a zombie attempt can never overwrite the live one's files.
    return f"outputs/{execution_id}/{attempt}/{check_output_name(name)}"


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def parse_parts(name: str, parts: Any) -> list[tuple[int, str]]:
    """The ``[{"number", "etag"}]`` an agent reports for a multipart direct upload."""
    if not isinstance(parts, list) or not parts:
        raise InvalidInput(
            f"Output {name!r} went up in parts: 'parts' must list each part's number and etag.",
            hint="Report [{'number': n, 'etag': <the ETag header of part n>}, ...].",
        )
    out = []
    for part in parts:
        number = part.get("number") if isinstance(part, dict) else None
        etag = part.get("etag") if isinstance(part, dict) else None
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str):
            raise InvalidInput(f"Output {name!r}: bad part {part!r}.")
        out.append((number, etag))
    return out


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_output_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name.startswith("/") or CONTROL.search(name):
        raise InvalidInput(
            f"Invalid output name {name!r}.",
            hint="Use a path relative to outputs/, without control characters.",
        )
    return check_key(name)


class OutputService:
    def __init__(self, ctx: Context, agent: AgentService) -> None:
        self.ctx = ctx
        self.agent = agent
        self.stores = StoreSet(ctx.artifacts, ctx.config.named_stores)

    async def _store_name(self, execution: Doc) -> str | None:
        """The named store the execution's project chose (None: the master's default)."""
        project = await self.ctx.store.projects.find_one({"_id": execution["project"]})
        return (project or {}).get("store") or None

    def store_for(self, doc: Doc) -> ArtifactStore:
        """The store an upload or datum document's bytes live in."""
        return self.stores.get(doc.get("store"))

    async def prepare(
        self, env: Doc, execution_id: str, attempt: int, files: Any
    ) -> dict[str, Any]:
        if not isinstance(files, list):
            raise InvalidInput("'files' must be a list of {name, size}.")
        store_name = await self._store_name(await self.agent.fenced(env, execution_id, attempt))
        uploads = []
        for item in files:
            name = check_output_name(item.get("name") if isinstance(item, dict) else None)
            size = item.get("size")
            if size is not None and (
                not isinstance(size, int) or size < 0 or size > self.ctx.config.max_upload_bytes
            ):
                raise InvalidInput(f"Output {name!r} has a bad or too large size.")
            target = None
            if size is not None:
                target = await self._direct(store_name, execution_id, attempt, name, size)
            if target is not None:
                uploads.append(target.answer(name))
                continue
            url = f"/api/agent/uploads/{execution_id}/{attempt}/{quote(name)}"
            uploads.append({"name": name, "url": url, "method": "PUT", "headers": {}})
        return {"uploads": uploads}

    async def _direct(
        self, store_name: str | None, execution_id: str, attempt: int, name: str, size: int
    ) -> DirectUpload | None:
        """Sign a direct upload into the store and remember it until registration."""
        key = output_key(execution_id, attempt, name)
        store = self.stores.get(store_name)
        target = await asyncio.to_thread(store.direct_upload, key, size)
        if target is None:
            return None
        query = {"execution": execution_id, "attempt": attempt, "name": name}
        earlier = await self.ctx.store.uploads.find_one(query)
        if earlier and (earlier.get("direct") or {}).get("upload_id"):  # prepared again: drop it
            old_id = earlier["direct"]["upload_id"]
            await asyncio.to_thread(self.store_for(earlier).abort_upload, key, old_id)
        await self.ctx.store.uploads.update_one(
            query,
            {
                "$set": {
                    "key": key,
                    "store": store_name,
                    "direct": {
                        "size": size,
                        "upload_id": target.upload_id,
                        "parts": len(target.parts),
                    },
                    "via": "store",
                    "mtime": utcnow(),
                },
                "$unset": {"size": "", "sha256": ""},
            },
            upsert=True,
        )
        return target

    async def _finish_direct(self, name: str, upload: Doc, item: dict[str, Any]) -> Doc:
        """Complete (if in parts) and check an upload the agent sent straight to the store."""
        direct, key = upload["direct"], upload["key"]
        sha256 = item.get("sha256")
        if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
            raise InvalidInput(
                f"Output {name!r}: a direct upload needs its 'sha256' (64 lowercase hex digits).",
                hint="The store does not hash what it receives: report the SHA-256 you sent.",
            )
        artifacts = self.store_for(upload)
        if direct.get("upload_id"):
            parts = parse_parts(name, item.get("parts"))
            # S3 would complete from a subset of the parts: insist on every one handed out.
            if sorted(n for n, _ in parts) != list(range(1, direct["parts"] + 1)):
                raise InvalidInput(
                    f"Output {name!r}: report each of its {direct['parts']} parts exactly once.",
                    hint="Upload every part from outputs/prepare and report its ETag.",
                )
            await asyncio.to_thread(artifacts.complete_upload, key, direct["upload_id"], parts)
        try:
            size = await asyncio.to_thread(artifacts.size, key)
        except NotFound:
            raise InvalidInput(
                f"Output {name!r} was not uploaded by this attempt.",
                hint="PUT it to the URL from outputs/prepare first.",
            ) from None
        if size != direct["size"] or item.get("size", size) != size:
            raise InvalidInput(
                f"Output {name!r}: the store holds {size} bytes, {direct['size']} were announced.",
                hint="Upload the whole file (every part) before registering it.",
            )
        fields = {"size": size, "sha256": sha256, "mtime": utcnow()}
        await self.ctx.store.uploads.update_one(
            {"_id": upload["_id"]}, {"$set": fields, "$unset": {"direct": ""}}
        )
        return {**upload, **fields}

    async def store_upload(
        self, env: Doc, execution_id: str, attempt: int, name: str, fp: BinaryIO
    ) -> dict[str, Any]:
        """Store an uploaded file (the handler spooled it to ``fp``) for a fenced attempt."""
        store_name = await self._store_name(await self.agent.fenced(env, execution_id, attempt))
        key = output_key(execution_id, attempt, name)
        stored = await asyncio.to_thread(self.stores.get(store_name).put, key, fp)
        await self.ctx.store.uploads.update_one(
            {"execution": execution_id, "attempt": attempt, "name": name},
            {
                "$set": {
                    "key": key,
                    "store": store_name,
                    "size": stored.size,
                    "sha256": stored.sha256,
                    "via": "master",
                    "mtime": utcnow(),
                },
                "$unset": {"direct": ""},
            },
            upsert=True,
        )
        return {"name": name, "size": stored.size, "sha256": stored.sha256}

    async def register(
        self, env: Doc, execution_id: str, attempt: int, outputs: Any
    ) -> dict[str, Any]:
        if not isinstance(outputs, list):
            raise InvalidInput("'outputs' must be a list.")
        execution = await self.agent.fenced(env, execution_id, attempt)
        checked = []
        for item in outputs:
            name = check_output_name(item.get("name") if isinstance(item, dict) else None)
            upload = await self.ctx.store.uploads.find_one(
                {"execution": execution_id, "attempt": attempt, "name": name}
            )
            if not upload:
                raise InvalidInput(
                    f"Output {name!r} was not uploaded by this attempt.",
                    hint="PUT it to the URL from outputs/prepare first.",
                )
            if upload.get("direct"):
                upload = await self._finish_direct(name, upload, item)
            if item.get("sha256") and item["sha256"] != upload["sha256"]:
                raise InvalidInput(f"Output {name!r}: sha256 differs from the uploaded bytes.")
            metadata = item.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise InvalidInput(f"Output {name!r}: metadata must be an object.")
            checked.append((name, upload, metadata))
        # Renewing the lease right before writing: a zombie attempt (its lease lapsed, the
        # execution queued again) is refused here and never registers an output.
        # ``has_outputs`` in the same update: the final status looks for dataset versions to
        # make only in executions that registered outputs.
        execution = await self.agent.renew(
            env, execution_id, attempt, {"has_outputs": True} if checked else None
        )
        datums = []
        for name, upload, metadata in checked:
            datums.append(await self._upsert_datum(execution, attempt, name, upload, metadata))
        return {"datums": datums}

    async def _upsert_datum(
        self, execution: Doc, attempt: int, name: str, upload: Doc, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        query = {"output_execution": execution["_id"], "name": name}
        update = {
            "$set": {
                "size": upload["size"],
                "sha256": upload["sha256"],
                "key": upload["key"],
                "store": upload.get("store"),
                "uri": self.store_for(upload).uri(upload["key"]),
                "metadata": metadata,
                "attempt": attempt,
                "project": execution["project"],
            },
            "$setOnInsert": {"_id": new_id("d"), "ctime": utcnow()},
        }
        try:
            await self.ctx.store.datums.update_one(query, update, upsert=True)
        except DuplicateKeyError:  # a concurrent identical registration won the insert
            await self.ctx.store.datums.update_one(query, {"$set": update["$set"]})
        doc: Doc = await self.ctx.store.datums.find_one(query)  # type: ignore[assignment]
        return {"id": doc["_id"], "name": name}

    # --- datums ---------------------------------------------------------------------------------

    async def get_datum(self, datum_id: str) -> Doc:
        doc = await self.ctx.store.datums.find_one({"_id": datum_id})
        if not doc:
            raise NotFound(f"No datum {datum_id!r}.")
        return doc  # type: ignore[no-any-return]

    async def list_datums(
        self,
        filters: dict[str, str],
        limit: int,
        offset: int,
        scope: str | list[str] | None = None,
    ) -> tuple[list[Doc], int]:
        """Datums matching ``filters``, within ``scope`` (a project id or a list of them)."""
        query: Doc = {}
        if filters.get("output_execution"):
            query["output_execution"] = filters["output_execution"]
        if isinstance(scope, list):
            query["project"] = {"$in": scope}
        elif scope:
            query["project"] = scope
        elif filters.get("project"):
            query["project"] = filters["project"]
        count = await self.ctx.store.datums.count_documents(query)
        cursor = self.ctx.store.datums.find(query).sort([("ctime", 1), ("name", 1)])
        return [d async for d in cursor.skip(offset).limit(limit)], count
