"""``static``: a fixed pool of on-premises machines whose agents register with the group's token.

The master starts and stops nothing: agents are started on the machines themselves (for instance
by the bootstrap script, ``/api/agent/bootstrap.sh?group=<slug>``, run once per machine). The
scaler only reports the pool's state and the executions waiting for it; an administrator drains a
machine through the workers API before taking it away.
"""

from __future__ import annotations

from typing import ClassVar

from .base import GroupSpec, Instance, WorkerGroupProvider


class StaticProvider(WorkerGroupProvider):
    """On-premises machines; sizes are whatever registered."""

    name = "static"
    expected_start_seconds = 0.0
    #: The scaler reports on this group but never sizes it.
    scalable: ClassVar[bool] = False

    async def ensure_group(self, group: GroupSpec) -> None:
        return None

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        return None

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        return []

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        return None

    async def delete_group(self, group: GroupSpec) -> None:
        return None
