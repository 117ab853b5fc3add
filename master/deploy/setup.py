"""Everything deployments add to one master: service, targets, front, rollout, builder loop."""

from __future__ import annotations

import asyncio
import contextlib

from ..context import Context
from .builder import Builder
from .front import Front
from .rollout import Rollout
from .service import DeploymentService
from .targets import make_targets


class Deployments:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.targets = make_targets(ctx.config.deploy_targets, owner=ctx.config.data_dir)
        self.service = DeploymentService(ctx, self.targets)
        self.front = Front(ctx)
        self.rollout = Rollout(ctx, self.service, self.front)
        self.builder = Builder(ctx, self.service, self.rollout)
        self._builder: asyncio.Task[None] | None = None

    async def start(self) -> list[asyncio.Task[None]]:
        """Create indexes, open the front, start the build loop (if this master builds).

        The build loop is not among the returned tasks: :meth:`stop` ends it between builds
        rather than cancelling it in the middle of a Redis call or a Docker build."""
        await self.service.setup()
        self.front.listen(self.ctx.config.deploy_port, self.ctx.config.deploy_ip)
        if self.ctx.config.builder:
            self._builder = asyncio.create_task(self.builder.run(), name="vh-builder")
        return []

    async def stop(self, timeout: float = 10.0) -> None:
        """Close the front, end the build loop, stop the endpoint processes this master ran
        (containers and cluster objects outlive the master; processes have no supervisor)."""
        self.front.stop()
        for target in self.targets.values():
            for endpoint_id, state in list(getattr(target, "processes", {}).items()):
                await asyncio.to_thread(target.stop, state)
                with contextlib.suppress(Exception):
                    await self.service.move(
                        endpoint_id,
                        "running",
                        status="stopped",
                        reason="The master that ran this endpoint as a process stopped.",
                    )
        self.builder.stopping.set()
        if self._builder is not None:
            done, _ = await asyncio.wait([self._builder], timeout=timeout)
            if not done:
                self._builder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._builder
