"""``POST valohai/executions/{id}/outputs/{datum_id}/fetch``: an output copied into Jupyter's root.

The file goes to ``valohai-outputs/<project>/<counter>/<output name>`` under the root dir (the
output's own folders kept), written to a temporary file beside it and renamed when complete, so
Lab never opens half a file. Names that would leave that folder (``..``, absolute paths) are
refused, and so is any path that resolves outside the root dir (a symlinked folder, say). The
answer is ``{"path": <path relative to the root dir>}``, what ``docmanager:open`` and
``/files/<path>`` take.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidInput, NotFound
from .handlers import ValohaiHandler

#: The folder (relative to the root dir) that fetched outputs go to.
OUTPUTS_DIR = "valohai-outputs"


def safe_segment(text: str, fallback: str) -> str:
    """One path segment made of plain characters (a project name may hold anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")
    return cleaned or fallback


def output_path(execution: dict[str, Any], name: str) -> str:
    """Where an output of ``execution`` goes, relative to the root dir; bad names refused."""
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise InvalidInput(f"The output name {name!r} is not a relative path.")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(
            f"The output name {name!r} has empty, '.' or '..' parts.",
            hint="Download it with `vh execution outputs` instead.",
        )
    project = execution.get("project") or {}
    return posixpath.join(
        OUTPUTS_DIR,
        safe_segment(str(project.get("name") or ""), str(project.get("id") or "project")),
        str(int(execution["counter"])),
        *parts,
    )


class FetchOutputHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def post(self, ref: str, datum_id: str) -> None:
        client = self.client()
        execution = await client.get_execution(ref)
        datum = next(
            (d for d in await client.outputs(execution["id"]) if d["id"] == datum_id), None
        )
        if datum is None:
            raise NotFound(
                f"Execution #{execution['counter']} has no output {datum_id!r}.",
                hint="Reload its outputs.",
            )
        rel = output_path(execution, str(datum.get("name") or ""))
        full = self.root_path(rel, "output path")  # never outside the root dir (symlinks too)
        if os.path.isdir(full):
            raise InvalidInput(f"{rel} is a folder.", hint="Move it away and fetch again.")
        await client.download(datum, full)
        self.write_json({"path": rel})
