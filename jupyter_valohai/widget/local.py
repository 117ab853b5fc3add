"""Where outputs land in the working directory: one folder per execution, never escaped.

``valohai-outputs/<project>/<counter>/<output name>``; output names are checked before anything is
written: an absolute name, a ``..`` part or a name that resolves outside the folder is refused.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jupyter_valohai.errors import InvalidInput, UnsafeArchive

DEFAULT_OUTPUTS_DIR = "valohai-outputs"


def _segment(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-") or "project"


def execution_dir(execution: dict[str, Any], base: str = DEFAULT_OUTPUTS_DIR) -> str:
    """The folder (relative to the working directory) of one execution's outputs."""
    project = (execution.get("project") or {}).get("name") or "project"
    counter = execution.get("counter")
    name = str(counter) if counter is not None else _segment(str(execution.get("id", "execution")))
    return os.path.join(base, _segment(str(project)), name)


def safe_destination(folder: str, name: str) -> str:
    """The local path of output ``name`` inside ``folder``; unsafe names raise UnsafeArchive."""
    if not name or not isinstance(name, str):
        raise InvalidInput("An output without a name cannot be saved.")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchive(
            f"Refusing output {name!r}: an absolute path.",
            hint="Outputs are saved inside the execution's folder only.",
        )
    if any(p in ("..",) for p in parts) or any(p == "" for p in parts[:-1]):
        raise UnsafeArchive(
            f"Refusing output {name!r}: it would leave the execution's folder.",
            hint="Outputs are saved inside the execution's folder only.",
        )
    root = os.path.realpath(folder)
    dest = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, dest]) != root or dest == root:
        raise UnsafeArchive(
            f"Refusing output {name!r}: it resolves outside {folder}.",
            hint="Remove the links inside the outputs folder.",
        )
    return os.path.join(folder, *parts)


def download_output(client: Any, datum: dict[str, Any], folder: str) -> str:
    """Download one output datum into ``folder`` (relative paths stay relative); return its path."""
    dest = safe_destination(folder, str(datum.get("name", "")))
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    return str(client.download(datum, dest))
