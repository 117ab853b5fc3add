"""``jupyter valohai master``: the traitlets application that configures and runs a master."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import Application

from jupyter_valohai import __version__

from .config import MasterConfig


class MasterApp(Application):
    """Run the master: REST API, agent API, queues, reaper. Secrets come from the environment:
    ``VH_ADMIN_TOKEN`` (API token of user "admin"), ``VH_ADMIN_PASSWORD`` (its password) and
    ``VH_AGENT_TOKEN`` (worker-group token of the default environment); all stored hashed.
    ``VH_SECRET_KEY`` (a Fernet key) seals project secrets (default: a key file in the data dir)."""

    name = "jupyter-valohai-master"
    version = __version__
    description = "Run the jupyter-valohai master (Valohai API v0 subset, agent API, scheduler)."

    ip = Unicode("127.0.0.1", help="Address to listen on.").tag(config=True)
    port = Integer(8780, help="Port to listen on.").tag(config=True)
    base_url = Unicode("/", help="URL prefix of every route.").tag(config=True)
    public_url = Unicode(
        help="Absolute URL clients reach the master at (links in answers); default http://ip:port."
    ).tag(config=True)
    data_dir = Unicode(
        help="Directory for the master's files (default $VH_DATA_DIR or "
        "~/.local/share/jupyter-valohai)."
    ).tag(config=True)
    mongo_url = Unicode(
        help="MongoDB URL (default $VH_MONGO_URL or mongodb://127.0.0.1:27017/)."
    ).tag(config=True)
    mongo_db = Unicode("valohai", help="MongoDB database name.").tag(config=True)
    redis_url = Unicode(help="Redis URL (default $VH_REDIS_URL or redis://127.0.0.1:6379/0).").tag(
        config=True
    )
    store_url = Unicode(help="Artifact store URL (default file://<data_dir>/artifacts).").tag(
        config=True
    )
    named_stores = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Artifact stores a project may choose by name (name=URL; credentials by reference "
        "in the URL, e.g. credentials_env=TEAM_A; see docs/artifact-stores.md).",
    ).tag(config=True)
    default_environment = Unicode(
        "local", help="Slug of the environment used when a request names none."
    ).tag(config=True)
    lease_seconds = Float(10.0, help="Lease an agent holds on a claimed execution.").tag(
        config=True
    )
    heartbeat_seconds = Float(2.0, help="How often agents should heartbeat.").tag(config=True)
    max_attempts = Integer(2, help="Attempts per execution (one retry after a lost lease).").tag(
        config=True
    )
    reaper_interval = Float(2.0, help="Seconds between reaper passes.").tag(config=True)
    reconcile_interval = Float(30.0, help="Seconds between queue reconciles (Mongo -> Redis).").tag(
        config=True
    )
    max_claim_wait = Float(30.0, help="Longest claim long-poll, in seconds.").tag(config=True)
    max_upload_bytes = Integer(10 * 1024**3, help="Largest output upload.").tag(config=True)
    max_package_bytes = Integer(1024**3, help="Largest code package upload.").tag(config=True)
    max_log_events = Integer(100_000, help="Live log events kept per execution in Redis.").tag(
        config=True
    )
    max_request_bytes = Integer(
        16 * 1024**2, help="Largest JSON or form request body (uploads have their own limits)."
    ).tag(config=True)
    max_log_bytes = Integer(
        64 * 1024**2, help="stdout/stderr bytes kept per execution; later output is dropped."
    ).tag(config=True)
    max_in_flight_per_project = Integer(
        1000, help="Queued and running executions one project may have at a time."
    ).tag(config=True)
    deploy_targets = Dict(
        help="Deployment targets by name: {name: {kind: local|kubernetes, ...options}} "
        "(see docs/deployments.md); 'local' always exists.",
    ).tag(config=True)
    deploy_port = Integer(
        0, help="Port of the front of local endpoints (0: any free port, shown in endpoint URLs)."
    ).tag(config=True)
    deploy_ip = Unicode("127.0.0.1", help="Address the endpoint front listens on.").tag(config=True)
    deploy_public_url = Unicode(
        help="URL clients reach the endpoint front at (default http://deploy_ip:port)."
    ).tag(config=True)
    builder = Bool(True, help="Run the inference builder (build queue) in this master.").tag(
        config=True
    )
    scaler_interval = Float(
        5.0, help="Seconds between passes of the worker-group scaler (0: no scaler)."
    ).tag(config=True)
    providers = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Extra worker-group providers: name -> 'module:Class' (a WorkerGroupProvider).",
    ).tag(config=True)
    provider_settings = Dict(
        key_trait=Unicode(),
        value_trait=Dict(),
        help="Provider-wide settings by provider name (e.g. {'aws': {'endpoint_url': ...}}).",
    ).tag(config=True)
    worker_groups = List(
        Dict(),
        help="Worker groups (environments) created or updated at start: a list of objects as "
        "POST /api/v0/environments/ takes (slug, name, provider, min_size, max_size, ...).",
    ).tag(config=True)
    cache_seconds = Float(
        5.0,
        help="Longest life of an entry of the per-process read cache (tokens, users, projects, "
        "memberships, environments, executions; writes drop entries at once in every master "
        "process, this bounds what a write from outside the master leaves stale); 0: no cache.",
    ).tag(config=True)
    agent_wheel = Unicode(
        help="The agent release new workers install: a wheel of this package, or a directory "
        "holding one (stored under agent/<version>/ in the artifact store)."
    ).tag(config=True)

    aliases: dict[Any, Any] = {  # type: ignore[assignment]
        "ip": "MasterApp.ip",
        "port": "MasterApp.port",
        "base-url": "MasterApp.base_url",
        "public-url": "MasterApp.public_url",
        "data-dir": "MasterApp.data_dir",
        "mongo-url": "MasterApp.mongo_url",
        "mongo-db": "MasterApp.mongo_db",
        "redis-url": "MasterApp.redis_url",
        "store-url": "MasterApp.store_url",
        "log-level": "Application.log_level",
        "deploy-port": "MasterApp.deploy_port",
        "scaler-interval": "MasterApp.scaler_interval",
        "agent-wheel": "MasterApp.agent_wheel",
    }

    @default("public_url")
    def _public_url(self) -> str:
        host = self.ip if self.ip not in ("", "0.0.0.0", "::") else ""
        return f"http://{host}:{self.port}{self.base_url.rstrip('/')}" if host else ""

    @default("data_dir")
    def _data_dir(self) -> str:
        return os.environ.get("VH_DATA_DIR") or os.path.expanduser("~/.local/share/jupyter-valohai")

    @default("mongo_url")
    def _mongo_url(self) -> str:
        return os.environ.get("VH_MONGO_URL") or "mongodb://127.0.0.1:27017/"

    @default("redis_url")
    def _redis_url(self) -> str:
        return os.environ.get("VH_REDIS_URL") or "redis://127.0.0.1:6379/0"

    @default("store_url")
    def _store_url(self) -> str:
        return "file://" + os.path.join(self.data_dir, "artifacts")

    def master_config(self) -> MasterConfig:
        """Return the plain config :func:`master.server.create_master` takes."""
        return MasterConfig(
            mongo_url=self.mongo_url,
            mongo_db=self.mongo_db,
            redis_url=self.redis_url,
            data_dir=self.data_dir,
            store_url=self.store_url,
            named_stores=dict(self.named_stores),
            public_url=self.public_url,
            base_url=self.base_url,
            default_environment=self.default_environment,
            lease_seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            max_attempts=self.max_attempts,
            reaper_interval=self.reaper_interval,
            reconcile_interval=self.reconcile_interval,
            max_claim_wait=self.max_claim_wait,
            max_upload_bytes=self.max_upload_bytes,
            max_package_bytes=self.max_package_bytes,
            max_log_events=self.max_log_events,
            admin_token=os.environ.get("VH_ADMIN_TOKEN", ""),
            admin_password=os.environ.get("VH_ADMIN_PASSWORD", ""),
            agent_token=os.environ.get("VH_AGENT_TOKEN", ""),
            secret_key=os.environ.get("VH_SECRET_KEY", ""),
            max_request_bytes=self.max_request_bytes,
            max_log_bytes=self.max_log_bytes,
            max_in_flight_per_project=self.max_in_flight_per_project,
            deploy_targets=dict(self.deploy_targets),
            deploy_port=self.deploy_port,
            deploy_ip=self.deploy_ip,
            deploy_public_url=self.deploy_public_url,
            builder=self.builder,
            scaler_interval=self.scaler_interval,
            providers=dict(self.providers),
            provider_settings={k: dict(v) for k, v in self.provider_settings.items()},
            worker_groups=[dict(g) for g in self.worker_groups],
            agent_wheel=self.agent_wheel,
            cache_seconds=self.cache_seconds,
        )

    def start(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from .logs import install_inert_logs
        from .server import create_master

        os.makedirs(self.data_dir, exist_ok=True)
        install_inert_logs(self.log)
        master = await create_master(self.master_config())
        await master.start()
        master.listen(self.port, self.ip)
        self.log.info(
            "jupyter-valohai master listening on http://%s:%d%s", self.ip, self.port, self.base_url
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.log.info("shutting down")
        await master.stop()


main = MasterApp.launch_instance

if __name__ == "__main__":
    main()
