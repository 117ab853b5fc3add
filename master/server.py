"""Assemble a master in-process: backing clients, services, the Tornado application, loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

import redis.asyncio as aioredis
from tornado.httpserver import HTTPServer
from tornado.web import Application

from jupyter_valohai.stores import open_store

from .api.routes import build_routes
from .config import MasterConfig
from .context import Context
from .deploy.setup import Deployments
from .feed import ExecutionFeed
from .logs import LogService
from .proxy import ProxyHeadersServer
from .queue import ExecutionQueues, Notifier
from .scaling.binaries import AgentReleases
from .scaling.registry import ProviderRegistry
from .scaling.scaler import Scaler
from .scaling.workers import WorkerRegistry
from .scheduler import Scheduler
from .services.agent import AgentService
from .services.environments import EnvironmentService
from .services.executions import ExecutionService
from .services.lifecycle import Lifecycle
from .services.outputs import OutputService
from .services.projects import ProjectService
from .services.secrets import SecretService
from .services.users import UserService
from .web import web_routes, web_settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    users: UserService
    environments: EnvironmentService
    projects: ProjectService
    executions: ExecutionService
    lifecycle: Lifecycle
    agent: AgentService
    outputs: OutputService
    workers: WorkerRegistry
    scaler: Scaler


class Master:
    """One master process's state; :meth:`start` runs its background loops."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = ctx.config
        lifecycle = Lifecycle(ctx)
        environments = EnvironmentService(ctx)
        projects = ProjectService(ctx)
        agent = AgentService(ctx, lifecycle)
        provider_settings = {k: dict(v) for k, v in self.config.provider_settings.items()}
        local = provider_settings.setdefault("local", {})
        local.setdefault("work_dir", os.path.join(self.config.data_dir, "workers"))
        registry = ProviderRegistry(self.config.providers, provider_settings)
        self.scaler = Scaler(ctx, environments, registry)
        self.services = Services(
            users=UserService(ctx),
            environments=environments,
            projects=projects,
            executions=ExecutionService(ctx, projects, environments, lifecycle),
            lifecycle=lifecycle,
            agent=agent,
            outputs=OutputService(ctx, agent),
            workers=agent.workers,
            scaler=self.scaler,
        )
        self.scheduler = Scheduler(ctx, lifecycle)
        self.deployments = Deployments(ctx)
        api = build_routes(self.config.base_url)
        self.app = Application(
            # the API first (its paths are none of the pages'), its catch-all last
            api[:-1] + web_routes(self.config.base_url) + api[-1:],
            master=self,
            services=self.services,
            deployments=self.deployments,
            ctx=ctx,
            compress_response=True,
            **web_settings(self.config),
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._server: HTTPServer | None = None

    async def start(self) -> None:
        """Ensure indexes and initial secrets, rebuild queues, start loops and pub/sub."""
        await self.ctx.store.setup()
        await self.services.projects.members.setup()
        cfg = self.config
        await self.services.environments.ensure(cfg.default_environment, cfg.agent_token or None)
        if cfg.admin_token or cfg.admin_password:
            await self.services.users.ensure_user(
                "admin", cfg.admin_token or None, cfg.admin_password or None, is_admin=True
            )
        await self.ctx.notifier.start()
        await self.scheduler.reconcile()
        await self.services.workers.setup()
        for group in cfg.worker_groups:
            await self.services.environments.ensure_group(group)
        try:
            await AgentReleases(self.ctx).publish()
        except Exception:  # workers cannot bootstrap, but the master serves everything else
            log.exception("storing the agent release failed")
        self._tasks = [
            asyncio.create_task(self.scheduler.run_reaper(), name="vh-reaper"),
            asyncio.create_task(self.scheduler.run_reconciler(), name="vh-reconciler"),
            *await self.deployments.start(),  # the build loop: stopped by deployments.stop()
        ]
        if cfg.scaler_interval > 0:
            self._tasks.append(asyncio.create_task(self.scaler.run(), name="vh-scaler"))

    def listen(self, port: int, address: str = "127.0.0.1") -> HTTPServer:
        self._server = ProxyHeadersServer(  # Tornado's xheaders, paid only when sent
            self.app, max_body_size=self.config.max_package_bytes + (1 << 20)
        )
        self._server.listen(port, address)
        if not self.scaler.master_url:  # workers it starts need to reach us
            host = address if address not in ("", "0.0.0.0", "::") else "127.0.0.1"
            self.scaler.master_url = f"http://{host}:{port}{self.config.base_url.rstrip('/')}"
        return self._server

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.close_all_connections(), 2)
        await self.deployments.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.scaler.close()
        await self.ctx.notifier.stop()
        await self.ctx.redis.aclose()
        await self.ctx.store.close()


async def create_master(config: MasterConfig) -> Master:
    """Build a master from ``config`` (not started: call :meth:`Master.start`)."""
    from .store import Store

    redis = aioredis.Redis.from_url(config.redis_url)
    notifier = Notifier(redis)
    artifacts = open_store(config.resolved_store_url())
    await asyncio.to_thread(artifacts.check)  # a missing bucket fails here, not at first upload
    ctx = Context(
        config=config,
        store=Store(config.mongo_url, config.mongo_db, config.cache_seconds),
        redis=redis,
        notifier=notifier,
        queues=ExecutionQueues(redis, notifier),
        logs=LogService(redis, notifier, artifacts, config.max_log_events),
        artifacts=artifacts,
        feed=ExecutionFeed(redis, notifier),
    )
    ctx.secrets = SecretService(ctx)
    notifier.watch_cache(ctx.store.cache)  # invalidations between master processes
    ctx.logs.masker_for = ctx.secrets.masker  # every log event passes the execution's masker
    ctx.logs.count_events = ctx.store.count_log_events
    return Master(ctx)
