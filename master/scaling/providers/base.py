"""The interface every worker-group provider implements.

A provider owns the machines of worker groups of its kind (local processes, an on-prem pool, an
AWS Auto Scaling group, a Kubernetes Deployment, an Azure scale set, a GCP managed instance group,
OpenStack servers). The scaler decides sizes; the provider only makes them so. Providers whose
SDKs are synchronous (boto3, azure-mgmt-compute, google-cloud-compute, openstacksdk, kubernetes)
run their calls in a thread (:func:`asyncio.to_thread`); none of them holds state the master
cannot rebuild.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Instance states as the scaler sees them
PENDING = "pending"  # asked for, not yet running an agent
RUNNING = "running"
STOPPING = "stopping"
GONE = "gone"


@dataclass(frozen=True)
class GroupSpec:
    """What a provider needs to know about one worker group (an environment)."""

    slug: str  # the environment's slug; providers name their resources from it
    provider: str
    instance_type: str = ""
    region: str = ""
    cpus: float = 0.0
    memory_mb: int = 0
    gpus: int = 0
    min_size: int = 0
    max_size: int = 1
    # provider-specific settings from the environment document (AMI, subnets, namespace, image...)
    settings: dict[str, Any] = field(default_factory=dict)
    # how a new worker reaches the master and proves it belongs to its group (secret: never log it)
    master_url: str = ""
    token: str = field(default="", repr=False)
    bootstrap_url: str = ""  # <master>/api/agent/bootstrap.sh?group=<slug>


@dataclass(frozen=True)
class Instance:
    """One machine (or process, or pod) of a group, as the provider reports it."""

    id: str
    state: str = RUNNING
    protected: bool = False  # the provider will not pick it when scaling in
    details: dict[str, Any] = field(default_factory=dict)


class WorkerGroupProvider(abc.ABC):
    """Create, size and tear down a worker group on one kind of infrastructure."""

    name: ClassVar[str]
    experimental: ClassVar[bool] = False
    # the typical seconds from "size up" to an agent claiming; shown to users waiting for a worker
    expected_start_seconds: ClassVar[float] = 60.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})  # provider-wide settings from the master's config

    @abc.abstractmethod
    async def ensure_group(self, group: GroupSpec) -> None:
        """Create the group's resources if missing (idempotent); update them if the spec changed."""

    @abc.abstractmethod
    async def set_desired(self, group: GroupSpec, size: int) -> None:
        """Ask for ``size`` instances (``min_size <= size <= max_size`` is the scaler's job)."""

    @abc.abstractmethod
    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        """Return the group's instances that are not gone."""

    @abc.abstractmethod
    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        """Stop one idle instance and lower the desired size by one (scale in a chosen worker)."""

    async def set_protected(self, group: GroupSpec, instance_id: str, protected: bool) -> None:
        """Protect a busy instance from the provider's own scale-in; a no-op where none exists."""
        return None

    @abc.abstractmethod
    async def delete_group(self, group: GroupSpec) -> None:
        """Remove everything the provider created for the group."""

    async def close(self) -> None:
        """Release clients and threads; called when the master stops."""
        return None
