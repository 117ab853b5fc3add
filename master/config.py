"""The master's settings as one plain object, filled from :class:`master.app.MasterApp` traits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class MasterConfig:
    """Everything :func:`master.server.create_master` needs; tests build one directly."""

    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = "valohai"
    redis_url: str = "redis://127.0.0.1:6379/0"
    data_dir: str = os.path.expanduser("~/.local/share/jupyter-valohai")
    store_url: str = ""
    named_stores: dict[str, str] = field(default_factory=dict)  # name -> URL projects may pick
    public_url: str = ""
    base_url: str = "/"
    default_environment: str = "local"
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 2.0
    max_attempts: int = 2
    reaper_interval: float = 2.0
    reconcile_interval: float = 30.0
    max_claim_wait: float = 30.0
    max_upload_bytes: int = 10 * 1024**3
    max_package_bytes: int = 1024**3
    max_log_events: int = 100_000
    admin_token: str = ""
    admin_password: str = ""
    agent_token: str = ""
    # The Fernet key sealing project secrets (VH_SECRET_KEY); empty: a key file in the data dir.
    secret_key: str = ""
    # Limits that keep the master alive under load; each refusal says which limit and how to fix.
    max_request_bytes: int = 16 * 1024**2  # a JSON or form body (uploads have their own limits)
    max_log_bytes: int = 64 * 1024**2  # stdout/stderr kept per execution; more is dropped
    max_in_flight_per_project: int = 1000  # queued + running executions of one project
    #: deployments (master/deploy): targets by name ({"kind": "local"|"kubernetes", ...}),
    #: the front of local endpoints (port 0: any free one), and whether this master builds
    deploy_targets: dict[str, dict] = field(default_factory=dict)
    deploy_port: int = 0
    deploy_ip: str = "127.0.0.1"
    deploy_public_url: str = ""
    builder: bool = True
    # worker groups (docs/worker-groups.md)
    scaler_interval: float = 5.0  # seconds between scaler passes; 0 turns the scaler off
    providers: dict[str, str] = field(default_factory=dict)  # extra provider name -> module:Class
    provider_settings: dict[str, dict] = field(default_factory=dict)  # provider name -> settings
    worker_groups: list[dict] = field(default_factory=list)  # groups ensured at start
    agent_wheel: str = ""  # the agent release's wheel (a file, or a directory holding it)
    # the per-process read cache (master/cache.py): seconds an entry lives at most (0: no cache)
    cache_seconds: float = 5.0

    def resolved_store_url(self) -> str:
        return self.store_url or "file://" + os.path.join(self.data_dir, "artifacts")
