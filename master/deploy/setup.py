"""Everything deployments add to one master: service, targets, front, rollout, builder loop."""

from __future__ import annotations

import asyncio

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

    async def start(self) -> list[asyncio.Task[None]]:
        """Create indexes, open the front, start the build loop (if this master builds)."""
        await self.service.setup()
        self.front.listen(self.ctx.config.deploy_port, self.ctx.config.deploy_ip)
        if not self.ctx.config.builder:
            return []
        return [asyncio.create_task(self.builder.run(), name="vh-builder")]

    def stop(self) -> None:
        self.front.stop()
