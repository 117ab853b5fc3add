"""Datum aliases, datasets and their versions, input resolution and lineage.

Every output is a datum (see outputs.py). On top of them:

- an alias is a project-scoped name pointing at one datum (``datum://<alias>``); moving it does
  not change executions made earlier, which were pinned to the datum at create time;
- a dataset version is made, as valohai-utils asks, by outputs whose metadata lists
  ``"valohai.dataset-versions": ["dataset://<name>/<version>", ...]``; the version is created when
  the producing execution reports its final status, and ``dataset://<name>/<version>`` inputs
  resolve to its datums;
- an execution records the datums it consumed, so a datum's lineage shows the execution that made
  it and the executions that read it.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from jupyter_valohai.errors import Conflict, InvalidInput, NotFound
from jupyter_valohai.models import utcnow

from ..context import Context
from ..store import Doc, new_id

DATASET_VERSIONS_KEY = "valohai.dataset-versions"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_INDEXED: set[int] = set()
#: Inputs naming an object in a store: resolved to the datum kept there.
STORE_SCHEMES = ("s3", "gs", "azure", "file")


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput(
            f"{kind} name {name!r} is not valid.",
            hint="Use letters, digits, '.', '_' and '-' (starting with a letter or digit).",
        )
    return name


def parse_dataset_uri(uri: str) -> tuple[str, str]:
    """``dataset://<name>/<version>`` -> (name, version)."""
    rest = uri[len("dataset://") :] if uri.startswith("dataset://") else ""
    name, _, version = rest.partition("/")
    if not name or not version or "/" in version:
        raise InvalidInput(
            f"{uri!r} is not a dataset version URI.", hint="Write dataset://<name>/<version>."
        )
    return check_name("Dataset", name), check_name("Dataset version", version)


class DatumService:
    """Stateless; build one per use from the context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        db = ctx.store.db
        self.datums = ctx.store.datums
        self.executions = ctx.store.executions
        self.aliases = db["datum_aliases"]
        self.datasets = db["datasets"]
        self.versions = db["dataset_versions"]
        # One document per (execution, input, datum): array queries are not portable to nx-27017.
        self.consumptions = db["datum_consumptions"]

    async def setup(self) -> None:
        """Create this service's indexes once per process and database."""
        if id(self.ctx.store.db) in _INDEXED:
            return
        await self.aliases.create_index([("project", ASCENDING), ("name", ASCENDING)], unique=True)
        await self.datasets.create_index([("project", ASCENDING), ("name", ASCENDING)], unique=True)
        await self.versions.create_index([("dataset", ASCENDING), ("name", ASCENDING)], unique=True)
        await self.consumptions.create_index([("datum", ASCENDING)])
        await self.datums.create_index([("uri", ASCENDING)])
        _INDEXED.add(id(self.ctx.store.db))

    # --- inputs --------------------------------------------------------------------------------

    async def resolve_inputs(
        self, project_id: str, inputs: dict[str, list[str]]
    ) -> tuple[dict[str, list[str]], list[str]]:
        """Pin ``datum://<id or alias>`` to ``datum://<id>``, expand ``dataset://<name>/<version>``
        into its datums; return the resolved inputs and the consumed datum ids."""
        await self.setup()
        resolved: dict[str, list[str]] = {}
        consumed: list[str] = []
        for name, uris in inputs.items():
            out = resolved.setdefault(name, [])
            for uri in uris:
                if uri.startswith("datum://"):
                    ids = [await self.datum_id(project_id, uri[len("datum://") :], name)]
                elif uri.startswith("dataset://"):
                    ids = await self.version_datums(project_id, uri, name)
                elif uri.split("://", 1)[0] in STORE_SCHEMES:
                    ids = [await self.datum_by_uri(uri, name)]
                else:
                    out.append(uri)
                    continue
                out.extend(f"datum://{i}" for i in ids)
                consumed.extend(i for i in ids if i not in consumed)
        return resolved, consumed

    async def datum_id(self, project_id: str, ref: str, input_name: str = "") -> str:
        """The id of datum ``ref`` (an id, or an alias in the project)."""
        if await self.datums.find_one({"_id": ref}, {"_id": 1}):
            return ref
        alias = await self.aliases.find_one({"project": project_id, "name": ref})
        if alias and alias.get("datum"):
            return str(alias["datum"])
        where = f"Input {input_name!r}: " if input_name else ""
        raise InvalidInput(
            f"{where}no datum or datum alias {ref!r} in this project.",
            hint="See GET /api/v0/data/?project=... and /api/v0/datum-aliases/?project=...",
        )

    async def datum_by_uri(self, uri: str, input_name: str = "") -> str:
        """The datum stored at ``uri`` (``s3://bucket/key`` and the like, as the data API shows
        a datum's ``uri``): the agent then downloads it through the master like any datum."""
        datum = await self.datums.find_one({"uri": uri}, {"_id": 1})
        if datum:
            return str(datum["_id"])
        where = f"Input {input_name!r}: " if input_name else ""
        raise InvalidInput(
            f"{where}{uri.split('?', 1)[0]} is not a datum of this master's stores.",
            hint="Use an output's uri or datum://<id or alias>, or an https URL "
            "(a presigned URL works) for data elsewhere.",
        )

    async def version_datums(self, project_id: str, uri: str, input_name: str = "") -> list[str]:
        dataset_name, version_name = parse_dataset_uri(uri)
        where = f"Input {input_name!r}: " if input_name else ""
        dataset = await self.datasets.find_one({"project": project_id, "name": dataset_name})
        version = dataset and await self.versions.find_one(
            {"dataset": dataset["_id"], "name": version_name}
        )
        if dataset and not version and version_name == "latest":  # the newest version
            newest = self.versions.find({"dataset": dataset["_id"]}).sort("ctime", -1).limit(1)
            version = next(iter([v async for v in newest]), None)
        if not version:
            raise InvalidInput(
                f"{where}no dataset version {uri!r} in this project.",
                hint="Outputs make one with metadata "
                f'{{"{DATASET_VERSIONS_KEY}": ["{uri}"]}}; see GET /api/v0/datasets/.',
            )
        return list(version["datums"])

    # --- aliases -------------------------------------------------------------------------------

    async def set_alias(self, body: Any) -> Doc:
        """Create alias ``name`` in ``project`` for ``datum``, or move an existing one."""
        await self.setup()
        if not isinstance(body, dict):
            raise InvalidInput("The request body must be a JSON object.")
        name = check_name("Alias", body.get("name"))
        project = body.get("project")
        if not isinstance(project, str) or not await self.ctx.store.projects.find_one(
            {"_id": project}, {"_id": 1}
        ):
            raise InvalidInput(f"No project {project!r}.", hint="Send the project's id.")
        datum_id = body.get("datum")
        datum = await self.datums.find_one({"_id": datum_id}) if isinstance(datum_id, str) else None
        if not datum:
            raise InvalidInput(f"No datum {datum_id!r}.", hint="Send the datum's id.")
        if await self.datums.find_one({"_id": name}, {"_id": 1}):
            raise Conflict(f"Alias {name!r} would hide the datum of that id.")
        now = utcnow()
        query = {"project": project, "name": name}
        try:
            await self.aliases.update_one(
                query,
                {
                    "$set": {"datum": datum["_id"], "mtime": now},
                    "$setOnInsert": {"_id": new_id("a"), "ctime": now},
                    "$push": {"history": {"datum": datum["_id"], "time": now}},
                },
                upsert=True,
            )
        except DuplicateKeyError:  # a concurrent creation won: move it instead
            await self.aliases.update_one(query, {"$set": {"datum": datum["_id"], "mtime": now}})
        return await self.aliases.find_one(query)  # type: ignore[return-value]

    async def list_aliases(
        self, project: str | list[str] | None, limit: int, offset: int
    ) -> tuple[list[Doc], int]:
        query: Doc = {}
        if isinstance(project, list):  # any of these projects (the ones a user may read)
            query["project"] = {"$in": project}
        elif project:
            query["project"] = project
        count = await self.aliases.count_documents(query)
        cursor = self.aliases.find(query).sort([("ctime", -1), ("name", 1)])
        return [d async for d in cursor.skip(offset).limit(limit)], count

    async def get_alias(self, alias_id: str) -> Doc:
        doc = await self.aliases.find_one({"_id": alias_id})
        if not doc:
            raise NotFound(f"No datum alias {alias_id!r}.")
        return doc  # type: ignore[no-any-return]

    # --- datasets ------------------------------------------------------------------------------

    async def make_versions(self, execution: Doc) -> list[str]:
        """Create the dataset versions the execution's outputs ask for; return messages."""
        await self.setup()
        wanted: dict[tuple[str, str], list[str]] = {}
        messages: list[str] = []
        cursor = self.datums.find({"output_execution": execution["_id"]}).sort("name", 1)
        async for datum in cursor:
            uris = (datum.get("metadata") or {}).get(DATASET_VERSIONS_KEY) or []
            for uri in uris if isinstance(uris, list) else [uris]:
                try:
                    key = parse_dataset_uri(str(uri))
                except InvalidInput as exc:
                    messages.append(f"Output {datum['name']!r}: {exc.message}")
                    continue
                wanted.setdefault(key, []).append(datum["_id"])
        for (dataset_name, version_name), datum_ids in sorted(wanted.items()):
            uri = f"dataset://{dataset_name}/{version_name}"
            dataset = await self._dataset(execution["project"], dataset_name)
            try:
                await self.versions.insert_one(
                    {
                        "_id": new_id("dv"),
                        "dataset": dataset["_id"],
                        "project": execution["project"],
                        "name": version_name,
                        "datums": datum_ids,
                        "output_execution": execution["_id"],
                        "ctime": utcnow(),
                    }
                )
            except DuplicateKeyError:
                old = await self.versions.find_one(
                    {"dataset": dataset["_id"], "name": version_name}
                )
                if old and old.get("output_execution") != execution["_id"]:
                    messages.append(f"Dataset version {uri} exists already; it was not changed.")
                continue
            messages.append(f"Created dataset version '{uri}' with {len(datum_ids)} files")
        return messages

    async def _dataset(self, project: str, name: str) -> Doc:
        query = {"project": project, "name": name}
        with contextlib.suppress(DuplicateKeyError):  # a concurrent creation won
            await self.datasets.update_one(
                query, {"$setOnInsert": {"_id": new_id("ds"), "ctime": utcnow()}}, upsert=True
            )
        return await self.datasets.find_one(query)  # type: ignore[return-value]

    async def list_datasets(
        self, project: str | list[str] | None, limit: int, offset: int
    ) -> tuple[list[Doc], int]:
        query: Doc = {}
        if isinstance(project, list):  # any of these projects (the ones a user may read)
            query["project"] = {"$in": project}
        elif project:
            query["project"] = project
        count = await self.datasets.count_documents(query)
        cursor = self.datasets.find(query).sort([("ctime", 1), ("name", 1)])
        return [d async for d in cursor.skip(offset).limit(limit)], count

    async def get_dataset(self, ref: str) -> Doc:
        doc = await self.datasets.find_one({"_id": ref})
        if not doc:
            raise NotFound(f"No dataset {ref!r}.", hint="See GET /api/v0/datasets/.")
        return doc  # type: ignore[no-any-return]

    async def dataset_versions(self, dataset_id: str) -> list[Doc]:
        cursor = self.versions.find({"dataset": dataset_id}).sort([("ctime", 1), ("name", 1)])
        return [d async for d in cursor]

    # --- lineage -------------------------------------------------------------------------------

    async def record_consumption(self, execution: Doc) -> None:
        """Remember which datums the (just created) execution reads, through which inputs."""
        await self.setup()
        docs = [
            {
                "_id": new_id("dc"),
                "datum": uri[len("datum://") :],
                "execution": execution["_id"],
                "input": name,
                "project": execution["project"],
                "ctime": execution["ctime"],
            }
            for name, uris in (execution.get("resolved_inputs") or {}).items()
            for uri in uris
            if uri.startswith("datum://")
        ]
        if docs:
            await self.consumptions.insert_many(docs)

    async def consumers(self, datum_id: str) -> list[tuple[Doc, list[str]]]:
        """The executions that read ``datum_id`` (oldest first), each with its input names."""
        inputs: dict[str, list[str]] = {}
        async for c in self.consumptions.find({"datum": datum_id}).sort("ctime", 1):
            names = inputs.setdefault(c["execution"], [])
            if c["input"] not in names:
                names.append(c["input"])
        out = []
        for execution_id, names in inputs.items():
            execution = await self.executions.find_one({"_id": execution_id})
            if execution:
                out.append((execution, names))
        return out
