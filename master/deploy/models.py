"""Endpoint definitions from valohai.yaml, names, and datum references of deployment files."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.valohai_config import parse_config

#: Deployment, version and alias names: they are parts of endpoint URLs and Kubernetes names.
NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
NAME_HINT = (
    "Use lowercase letters, digits, '.' and '-' (at most 63, starting with a letter or digit)."
)
DEFAULT_PORT = 8000


def check_name(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(f"{kind} name {value!r} is not valid.", hint=NAME_HINT)
    return value


@dataclass(frozen=True)
class EndpointFile:
    name: str
    path: str


@dataclass(frozen=True)
class EndpointDef:
    """One ``endpoint:`` of valohai.yaml, in the shape the builder and targets use."""

    name: str
    image: str
    port: int = DEFAULT_PORT
    server_command: str | None = None
    wsgi: str | None = None
    files: tuple[EndpointFile, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "port": self.port,
            "server_command": self.server_command,
            "wsgi": self.wsgi,
            "files": [{"name": f.name, "path": f.path} for f in self.files],
            "resources": self.resources,
            "node_selector": self.node_selector,
            "tolerations": list(self.tolerations),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EndpointDef:
        return cls(
            name=doc["name"],
            image=doc["image"],
            port=int(doc.get("port") or DEFAULT_PORT),
            server_command=doc.get("server_command"),
            wsgi=doc.get("wsgi"),
            files=tuple(EndpointFile(f["name"], f["path"]) for f in doc.get("files") or []),
            resources=dict(doc.get("resources") or {}),
            node_selector=dict(doc.get("node_selector") or {}),
            tolerations=tuple(doc.get("tolerations") or ()),
        )


def _node_selector(value: str | None) -> dict[str, str]:
    """``"a=b,c=d"`` (Valohai's string form) -> ``{"a": "b", "c": "d"}``."""
    out: dict[str, str] = {}
    for part in (value or "").split(","):
        key, eq, val = part.strip().partition("=")
        if eq and key.strip():
            out[key.strip()] = val.strip()
    return out


def _server_command(value: Any) -> str | None:
    if isinstance(value, list):
        return " && ".join(str(v) for v in value)
    return str(value) if value else None


def _safe_path(endpoint: str, path: str) -> str:
    clean = path.strip().removeprefix("./")
    parts = clean.split("/")
    if not clean or clean.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(
            f"Endpoint {endpoint!r}: file path {path!r} must stay inside the repository.",
            hint="Give a relative path such as model.pkl or models/model.pkl.",
        )
    return clean


def endpoints_of(config_text: str | None, source: str = "valohai.yaml") -> dict[str, EndpointDef]:
    """Return the commit's endpoint definitions by name (valohai.yaml already validated)."""
    if not config_text:
        return {}
    config = parse_config(config_text, source=source)
    out: dict[str, EndpointDef] = {}
    for ep in config.endpoints.values():
        try:
            port = int(ep.port) if ep.port is not None else DEFAULT_PORT
        except (TypeError, ValueError):
            raise InvalidInput(f"Endpoint {ep.name!r}: port {ep.port!r} is not a number.") from None
        out[ep.name] = EndpointDef(
            name=ep.name,
            image=ep.image,
            port=port,
            server_command=_server_command(ep.server_command),
            wsgi=ep.wsgi or None,
            files=tuple(EndpointFile(f.name, _safe_path(ep.name, f.path)) for f in ep.files),
            resources=dict(ep.resources or {}),
            node_selector=_node_selector(ep.node_selector),
            tolerations=tuple(dict(t) for t in ep.tolerations or ()),
        )
    return out


def datum_id(value: Any) -> str:
    """A file's datum reference -> the datum id (``d-<hex>``).

    Accepts ``d-<hex>``, ``datum://d-<hex>``, and the UUID forms valohai-cli insists on
    (``datum://<uuid>``, ``<uuid>`` with or without dashes): the hex of ``d-<hex>`` is a UUID.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"{value!r} is not a datum reference.", hint="Give d-<id>, datum://<id> or a UUID."
        )
    ref = value.strip().removeprefix("datum://")
    if ref.startswith("d-"):
        return ref
    try:
        return "d-" + uuid.UUID(ref).hex
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not a datum reference.",
            hint="Give the datum's id (d-<hex>), datum://<id> or its UUID; "
            "GET /api/v0/data/?output_execution=<id> lists an execution's outputs.",
        ) from None


def datum_uuid(datum: str) -> str:
    """The UUID form of a datum id (what valohai-cli accepts as ``datum://<uuid>``)."""
    return str(uuid.UUID(datum.removeprefix("d-")))
