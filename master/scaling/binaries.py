"""Worker binary storage: the agent release (this package's wheel) and its bootstrap script.

At start the master stores the wheel named by its ``agent_wheel`` setting under
``agent/<version>/`` in its artifact store, with ``bootstrap.sh`` (a template) and
``release.json`` (the wheel's name and SHA-256). New workers run
``/api/agent/bootstrap.sh?group=<slug>``: it makes a venv, downloads the wheel from the master
(``/api/agent/releases/<version>/<wheel>``, with the group's token), installs it (its dependencies
come from the package index) and starts the agent. Agents older than the stored release upgrade
themselves between executions (the check-in answer names the release).
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import io
import json
import logging
import os
import shlex
from importlib import resources
from typing import Any

from packaging.version import InvalidVersion, Version

from jupyter_valohai import __version__
from jupyter_valohai.errors import NotFound

from ..context import Context

log = logging.getLogger(__name__)


def release_prefix(version: str) -> str:
    return f"agent/{version}/"


def find_wheel(path: str, version: str) -> str | None:
    """The wheel of ``version`` at ``path`` (a wheel file, or a directory holding one)."""
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(path):
        return path
    found = sorted(glob.glob(os.path.join(path, f"jupyter_valohai-{version}-*.whl")))
    return found[-1] if found else None


def bootstrap_template() -> str:
    return (resources.files(__package__) / "bootstrap.sh").read_text()


def is_older(version: str, than: str) -> bool:
    try:
        return Version(version) < Version(than)
    except InvalidVersion:
        return True  # an agent that cannot say which version it is gets the release


class AgentReleases:
    """The master's agent release in its artifact store."""

    def __init__(self, ctx: Context, version: str = __version__) -> None:
        self.ctx = ctx
        self.version = version
        self._release: dict[str, Any] | None = None

    @property
    def prefix(self) -> str:
        return release_prefix(self.version)

    async def publish(self) -> dict[str, Any] | None:
        """Store the configured wheel and the bootstrap script (skipped when already stored)."""
        wheel = find_wheel(self.ctx.config.agent_wheel, self.version)
        if wheel is None:
            if self.ctx.config.agent_wheel:
                log.warning("No agent wheel %s at %s", self.version, self.ctx.config.agent_wheel)
            return await self.release()
        return await asyncio.to_thread(self._publish, wheel)

    def _publish(self, wheel: str) -> dict[str, Any]:
        store = self.ctx.artifacts
        digest = hashlib.sha256()
        with open(wheel, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        release = {
            "version": self.version,
            "wheel": os.path.basename(wheel),
            "sha256": digest.hexdigest(),
            "size": os.path.getsize(wheel),
        }
        current = self._read_release()
        if current != release or not store.exists(self.prefix + release["wheel"]):
            with open(wheel, "rb") as f:
                store.put(self.prefix + release["wheel"], f)
        store.put(self.prefix + "bootstrap.sh", io.BytesIO(bootstrap_template().encode()))
        store.put(self.prefix + "release.json", io.BytesIO(json.dumps(release).encode()))
        self._release = release
        log.info("agent release %s stored under %s", self.version, self.prefix)
        return release

    def _read_release(self) -> dict[str, Any] | None:
        key = self.prefix + "release.json"
        if not self.ctx.artifacts.exists(key):
            return None
        with self.ctx.artifacts.open(key) as f:
            data = json.loads(f.read())
        return data if isinstance(data, dict) else None

    async def release(self) -> dict[str, Any] | None:
        """The stored release (``version``, ``wheel``, ``sha256``), or None when none is."""
        if self._release is None:
            self._release = await asyncio.to_thread(self._read_release)
        return self._release

    async def require(self) -> dict[str, Any]:
        release = await self.release()
        if release is None:
            raise NotFound(
                f"This master stores no agent release {self.version}.",
                hint="Build the wheel (python -m build --wheel) and start the master with "
                "--agent-wheel=<the wheel or its directory>.",
            )
        return release

    def wheel_url(self, release: dict[str, Any]) -> str:
        return f"/api/agent/releases/{release['version']}/{release['wheel']}"

    async def upgrade_for(self, agent_version: str) -> dict[str, Any] | None:
        """What an agent of ``agent_version`` should install, or None when it is current."""
        release = await self.release()
        if release is None or not is_older(agent_version, release["version"]):
            return None
        return {
            "version": release["version"],
            "url": self.wheel_url(release),
            "sha256": release["sha256"],
        }

    async def wheel_key(self, version: str, name: str) -> str:
        release = await self.release()
        if not release or version != release["version"] or name != release["wheel"]:
            raise NotFound(f"No agent release file {version}/{name}.")
        return self.prefix + name

    async def bootstrap(self, slug: str, master_url: str) -> str:
        """The bootstrap script for group ``slug``, pointing at ``master_url``."""
        release = await self.require()
        template = await asyncio.to_thread(self._read_text, self.prefix + "bootstrap.sh")
        values = {
            "@MASTER_URL@": shlex.quote(master_url.rstrip("/")),
            "@GROUP@": shlex.quote(slug),
            "@VERSION@": shlex.quote(release["version"]),
            "@WHEEL@": shlex.quote(release["wheel"]),
            "@SHA256@": shlex.quote(release["sha256"]),
        }
        for key, value in values.items():
            template = template.replace(key, value)
        return template

    def _read_text(self, key: str) -> str:
        if not self.ctx.artifacts.exists(key):
            return bootstrap_template()
        with self.ctx.artifacts.open(key) as f:
            return str(f.read().decode())
