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


def bootstrap_script(
    group: GroupSpec, *, instance_id: str = "", instance_id_python: str = ""
) -> str:
    """Return the first-boot script (user data) of a new worker VM of ``group``.

    It exports ``VH_MASTER_URL``, the group's token as ``VH_AGENT_TOKEN`` and the machine's provider
    id as ``VH_AGENT_INSTANCE_ID`` (``instance_id`` when known in advance, else what the Python
    snippet ``instance_id_python`` prints, e.g. from the cloud's metadata service), then fetches the
    master's bootstrap script for the group (sending the token) and runs it; that script installs
    the agent into a venv and starts it. The agent reports the instance id, which is how the scaler
    tells which worker runs on which instance. Only ``python3`` is needed on the image (the
    bootstrap needs it for the venv anyway). The token is a secret: it lives only in the instance's
    user data, which the cloud shows to its administrators.
    """
    if not group.bootstrap_url:
        raise InvalidInput(
            f"The worker group {group.slug!r} has no bootstrap URL.",
            hint="Set the master's public URL so new workers can reach it.",
        )
    if instance_id:
        id_line = f"export VH_AGENT_INSTANCE_ID={shlex.quote(instance_id)}"
    elif instance_id_python:
        id_line = (
            "VH_AGENT_INSTANCE_ID=$(python3 -c "
            f"{shlex.quote(instance_id_python)})\nexport VH_AGENT_INSTANCE_ID"
        )
    else:
        id_line = "# (no instance id: the scaler will not match this worker to its machine)"
    lines = [
        "#!/bin/sh",
        # (the slug only in a comment, cleaned: a newline in it must not become a command)
        f"# jupyter-valohai worker of group {re.sub(r'[^A-Za-z0-9_.-]', '?', group.slug)}",
        "# installs the agent from the master and starts it",
        "set -eu",
        f"export VH_MASTER_URL={shlex.quote(group.master_url)}",
        f"export VH_AGENT_TOKEN={shlex.quote(group.token)}",
        id_line,
        "BOOT=$(mktemp)",
        f"python3 - {shlex.quote(group.bootstrap_url)} \"$BOOT\" <<'PY'",
        "import os, sys, time, urllib.request",
        'auth = {"Authorization": "Token " + os.environ["VH_AGENT_TOKEN"]}',
        "for attempt in range(30):  # the network may come up after this script starts",
        "    try:",
        "        with urllib.request.urlopen(",
        "            urllib.request.Request(sys.argv[1], headers=auth), timeout=60",
        "        ) as r:",
        "            body = r.read()",
        "        break",
        "    except OSError:",
        "        if attempt == 29:",
        "            raise",
        "        time.sleep(10)",
        'with open(sys.argv[2], "wb") as f:',
        "    f.write(body)",
        "PY",
        'exec sh "$BOOT"',
        "",
    ]
    return "\n".join(lines)


# Python snippets that print this machine's provider id from the cloud's metadata service
AZURE_VM_NAME = (
    "import json, urllib.request as u; print(json.load(u.urlopen(u.Request("
    "'http://169.254.169.254/metadata/instance/compute?api-version=2021-02-01', "
    "headers={'Metadata': 'true'}), timeout=10))['name'])"
)
GCE_INSTANCE_NAME = (
    "import urllib.request as u; print(u.urlopen(u.Request("
    "'http://metadata.google.internal/computeMetadata/v1/instance/name', "
    "headers={'Metadata-Flavor': 'Google'}), timeout=10).read().decode())"
)
