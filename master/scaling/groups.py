"""The worker-group fields of an environment: checked, defaulted, and turned into a GroupSpec."""

from __future__ import annotations

import re
from typing import Any

from jupyter_valohai.errors import InvalidInput

from .providers.base import GroupSpec

SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SECRETISH = re.compile(r"secret|password|passwd|token|credential|private", re.IGNORECASE)

GROUP_HINT = (
    "Send {slug, name, provider, instance_type, region, cpus, memory_mb, gpus, min_size, "
    "max_size, idle_timeout, allowed_projects, settings}; see docs/worker-groups.md."
)

# field -> (types, default)
FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "name": ((str,), None),
    "description": ((str,), ""),
    "provider": ((str,), "local"),
    "instance_type": ((str,), ""),
    "region": ((str,), ""),
    "cpus": ((int, float), 0.0),
    "memory_mb": ((int,), 0),
    "gpus": ((int,), 0),
    "min_size": ((int,), 0),
    "max_size": ((int,), 1),
    "idle_timeout": ((int, float), 300.0),
    "allowed_projects": ((list,), []),
    "settings": ((dict,), {}),
}
NON_NEGATIVE = ("cpus", "memory_mb", "gpus", "min_size", "max_size", "idle_timeout")
MAX_GROUP_SIZE = 10_000


def check_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise InvalidInput(
            f"{slug!r} is not a valid environment slug.",
            hint="Use 1-63 lowercase letters, digits and dashes, e.g. 'aws-eu-west-1-g4dn'.",
        )
    return slug


def parse_group(body: Any, partial: bool = False) -> dict[str, Any]:
    """Return the group fields of ``body``, checked; with ``partial``, only those given."""
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.", hint=GROUP_HINT)
    unknown = set(body) - set(FIELDS) - {"slug", "token"}
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.", hint=GROUP_HINT)
    out: dict[str, Any] = {}
    for key, (types, default) in FIELDS.items():
        if key not in body or body[key] is None:
            if not partial and default is not None:
                out[key] = type(default)(default) if isinstance(default, list | dict) else default
            continue
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, types):
            kind = " or ".join(t.__name__ for t in types)
            raise InvalidInput(f"{key!r} must be of type {kind}.", hint=GROUP_HINT)
        if key in NON_NEGATIVE and value < 0:
            raise InvalidInput(f"{key!r} must not be negative.", hint=GROUP_HINT)
        if key in ("min_size", "max_size") and value > MAX_GROUP_SIZE:
            raise InvalidInput(f"{key!r} must be at most {MAX_GROUP_SIZE}.", hint=GROUP_HINT)
        if key == "allowed_projects" and not all(isinstance(p, str) and p for p in value):
            raise InvalidInput(
                "'allowed_projects' must be a list of project ids.", hint="See `vh project list`."
            )
        if key in ("name", "provider") and not value.strip():
            raise InvalidInput(f"{key!r} must not be empty.", hint=GROUP_HINT)
        out[key] = float(value) if key in ("cpus", "idle_timeout") else value
    return out


def check_sizes(doc: dict[str, Any]) -> None:
    low, high = int(doc.get("min_size") or 0), int(doc.get("max_size") or 0)
    if low > high:
        raise InvalidInput(
            f"min_size ({low}) is larger than max_size ({high}).",
            hint="A group scales between min_size and max_size workers.",
        )


def public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Provider settings as the API shows them: anything named like a secret is hidden."""
    return {k: ("<hidden>" if SECRETISH.search(k) else v) for k, v in settings.items()}


def group_spec(env: dict[str, Any], master_url: str, token: str) -> GroupSpec:
    master_url = master_url.rstrip("/")
    return GroupSpec(
        slug=env["slug"],
        provider=env.get("provider") or "",
        instance_type=env.get("instance_type", ""),
        region=env.get("region", ""),
        cpus=float(env.get("cpus") or 0),
        memory_mb=int(env.get("memory_mb") or 0),
        gpus=int(env.get("gpus") or 0),
        min_size=int(env.get("min_size") or 0),
        max_size=int(env.get("max_size") or 0),
        settings=dict(env.get("settings") or {}),
        master_url=master_url,
        token=token,
        bootstrap_url=f"{master_url}/api/agent/bootstrap.sh?group={env['slug']}",
    )
