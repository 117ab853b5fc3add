"""Worker binary storage over HTTP: the bootstrap script and the agent release's wheel."""

from __future__ import annotations

from jupyter_valohai.errors import InvalidInput, PermissionDenied

from ..scaling.binaries import AgentReleases
from .base import BaseHandler


class BootstrapHandler(BaseHandler):
    """``GET /api/agent/bootstrap.sh?group=<slug>``, with the group's worker token."""

    auth = "agent"

    async def get(self) -> None:
        slug = self.arg("group") or self.environment["slug"]
        if slug != self.environment["slug"]:
            raise PermissionDenied(
                f"This token belongs to group {self.environment['slug']!r}, not {slug!r}.",
                hint="Fetch the bootstrap script with the token of the group it is for.",
            )
        if not self.base.startswith(("http://", "https://")):
            raise InvalidInput("The master does not know its own URL.", hint="Set public_url.")
        script = await AgentReleases(self.ctx).bootstrap(slug, self.base)
        self.set_header("Content-Type", "text/x-shellscript; charset=UTF-8")
        self.finish(script)


class ReleaseFileHandler(BaseHandler):
    """``GET /api/agent/releases/<version>/<file>``: the agent's wheel."""

    auth = "agent"

    async def get(self, version: str, name: str) -> None:
        key = await AgentReleases(self.ctx).wheel_key(version, name)
        await self.stream_object(key, name, "application/zip")
