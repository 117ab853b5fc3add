"""Helpers shared by the cloud providers (kubernetes, azure, gcp, openstack).

Settings of a provider come from two places: the master's config for the provider
(``provider.settings``) and the environment document (``group.settings``); the environment's value
wins. Every name a provider gives a cloud resource is derived from the group's slug, so the master
can find it again after a restart.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any

from jupyter_valohai.errors import InvalidInput

if TYPE_CHECKING:
    from .base import GroupSpec, WorkerGroupProvider

# Every resource a cloud provider creates carries this label / tag / metadata key (value: the slug)
GROUP_LABEL = "jupyter-valohai-group"


def setting(provider: WorkerGroupProvider, group: GroupSpec, key: str, default: Any = None) -> Any:
    """Return ``key`` from the group's settings, else from the provider's, else ``default``."""
    if key in group.settings and group.settings[key] not in (None, ""):
        return group.settings[key]
    if key in provider.settings and provider.settings[key] not in (None, ""):
        return provider.settings[key]
    return default


def required(provider: WorkerGroupProvider, group: GroupSpec, key: str) -> Any:
    """Return a setting the provider cannot work without, or raise :class:`InvalidInput`."""
    value = setting(provider, group, key)
    if value is None:
        raise InvalidInput(
            f"The {provider.name} worker group {group.slug!r} has no {key!r} setting.",
            hint=f"Set settings.{key} on the environment or in the master's {provider.name} "
            "provider settings.",
        )
    return value


def resource_name(slug: str, prefix: str = "vh-agent", max_length: int = 63) -> str:
    """Return a DNS-label-safe name for the group's resources (lowercase, digits and '-')."""
    base = re.sub(r"[^a-z0-9-]+", "-", slug.lower()).strip("-") or "group"
    name = f"{prefix}-{base}" if prefix else base
    return name[:max_length].rstrip("-")


def bootstrap_script(group: GroupSpec) -> str:
    """Return the first-boot script (user data) of a new worker VM of ``group``.

    It fetches the master's bootstrap script for the group and runs it with the group's token in
    ``VH_AGENT_TOKEN``; the bootstrap installs the agent into a venv and starts it. The token is a
    secret: it lives only in the instance's user data, which the cloud shows to its administrators.
    """
    if not group.bootstrap_url:
        raise InvalidInput(
            f"The worker group {group.slug!r} has no bootstrap URL.",
            hint="Set the master's public URL so new workers can reach it.",
        )
    lines = [
        "#!/bin/sh",
        f"# jupyter-valohai worker of group {group.slug}",
        "set -eu",
        f"export VH_MASTER_URL={shlex.quote(group.master_url)}",
        f"export VH_AGENT_TOKEN={shlex.quote(group.token)}",
        f"export VH_GROUP={shlex.quote(group.slug)}",
        'curl -fsSL --retry 10 --retry-connrefused -H "Authorization: Token $VH_AGENT_TOKEN" \\',
        f"    {shlex.quote(group.bootstrap_url)} | sh",
        "",
    ]
    return "\n".join(lines)
