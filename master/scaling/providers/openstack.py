"""The ``openstack`` provider: a worker group is a set of Nova servers tagged with its slug.

OpenStack has no scaling group in Nova itself, so the provider keeps none: the group's servers carry
the tag and metadata ``jupyter-valohai-group=<slug>``, and the size is their count. ``set_desired``
creates servers (``user_data`` = the bootstrap script; a worker's instance id is its server's
name) or deletes the newest unprotected ones;
protection is the server metadata ``jupyter-valohai-protected=true``, so it survives a master
restart. Through openstacksdk's compute proxy (Keystone v3 auth). Experimental.

Settings (environment or provider): ``image_id`` (required), ``flavor_id`` (default: the flavor
named like the environment's instance type), ``network_id``, ``key_name``, ``security_groups``,
``availability_zone``. Connection (provider settings): ``cloud`` (a clouds.yaml entry) or ``auth``
(``auth_url``, ``username``, ``password``, ``project_name``, ``user_domain_name``,
``project_domain_name``), and ``region_name``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

from ._cloud import GROUP_LABEL, bootstrap_script, required, resource_name, setting
from .base import GONE, PENDING, RUNNING, STOPPING, GroupSpec, Instance, WorkerGroupProvider

PROTECTED = "jupyter-valohai-protected"
STATES = {"BUILD": PENDING, "ACTIVE": RUNNING, "DELETED": GONE, "SOFT_DELETED": GONE}


class OpenStackProvider(WorkerGroupProvider):
    """Worker groups as tagged OpenStack (Nova) servers."""

    name = "openstack"
    experimental = True
    expected_start_seconds = 120.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._conn: Any = None

    def connection(self) -> Any:
        """Return the (lazily made) ``openstack.connection.Connection``."""
        if self._conn is None:
            import openstack

            s = self.settings
            kwargs: dict[str, Any] = {"load_envvars": False}
            if s.get("cloud"):
                kwargs["cloud"] = s["cloud"]
            else:
                kwargs.update(load_yaml_config=False, auth_type="password", auth=dict(s["auth"]))
            if s.get("region_name"):
                kwargs["region_name"] = s["region_name"]
            self._conn = openstack.connect(**kwargs)
        return self._conn

    def tag(self, group: GroupSpec) -> str:
        return f"{GROUP_LABEL}={resource_name(group.slug, prefix='', max_length=36)}"

    def server_body(self, group: GroupSpec, flavor_id: str) -> dict[str, Any]:
        """Return the keyword arguments of ``compute.create_server`` for one new worker."""
        name = f"{resource_name(group.slug, max_length=54)}-{secrets.token_hex(4)}"
        body: dict[str, Any] = {
            "name": name,
            "image_id": str(required(self, group, "image_id")),
            "flavor_id": flavor_id,
            # the agent reports the server's name as its instance id (known before it exists)
            "user_data": base64.b64encode(
                bootstrap_script(group, instance_id=name).encode()
            ).decode(),
            "metadata": {GROUP_LABEL: group.slug},
            "tags": [self.tag(group)],
        }
        network = setting(self, group, "network_id")
        body["networks"] = [{"uuid": network}] if network else "auto"
        for key in ("key_name", "availability_zone"):
            if setting(self, group, key):
                body[key] = setting(self, group, key)
        if setting(self, group, "security_groups"):
            body["security_groups"] = [{"name": n} for n in setting(self, group, "security_groups")]
        return body

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _servers(self, group: GroupSpec) -> list[Any]:
        compute = self.connection().compute
        servers = compute.servers(details=True, tags=self.tag(group))
        # the tag finds them; the metadata confirms (a tag is easy to add by hand)
        return [s for s in servers if (s.metadata or {}).get(GROUP_LABEL) == group.slug]

    def _flavor_id(self, group: GroupSpec) -> str:
        if setting(self, group, "flavor_id"):
            return str(setting(self, group, "flavor_id"))
        flavor = self.connection().compute.find_flavor(group.instance_type, ignore_missing=False)
        return str(flavor.id)

    # --- the interface -----------------------------------------------------------------------

    async def ensure_group(self, group: GroupSpec) -> None:
        # Nothing to create: a group is its tagged servers. Check the settings and the flavor.
        required(self, group, "image_id")
        await self._run(self._flavor_id, group)

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        await self._run(self._set_desired, group, max(0, int(size)))

    def _set_desired(self, group: GroupSpec, size: int) -> None:
        compute = self.connection().compute
        servers = self._servers(group)
        for server in servers:
            if server.status == "ERROR":  # a failed build never becomes a worker: replace it
                compute.delete_server(server.id, ignore_missing=True)
        # count as the scaler does: building and active servers only
        live = [s for s in servers if STATES.get(s.status) in (PENDING, RUNNING)]
        if len(live) < size:
            flavor_id = self._flavor_id(group)
            for _ in range(size - len(live)):
                compute.create_server(**self.server_body(group, flavor_id))
            return
        unprotected = [s for s in live if (s.metadata or {}).get(PROTECTED) != "true"]
        unprotected.sort(key=lambda s: (s.created_at or "", s.name), reverse=True)
        for server in unprotected[: len(live) - size]:
            compute.delete_server(server.id, ignore_missing=True)

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        servers = await self._run(self._servers, group)
        out = []
        for s in servers:
            state = STATES.get(s.status, STOPPING)
            if state == GONE:
                continue
            out.append(
                Instance(
                    id=s.name,
                    state=state,
                    protected=(s.metadata or {}).get(PROTECTED) == "true",
                    details={"server_id": s.id, "status": s.status},
                )
            )
        return out

    def _server_id(self, group: GroupSpec, name: str) -> str | None:
        for server in self._servers(group):
            if server.name == name:
                return str(server.id)
        return None

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        compute = self.connection().compute
        server_id = await self._run(self._server_id, group, instance_id)
        if server_id is not None:  # already gone otherwise
            await self._run(compute.delete_server, server_id, ignore_missing=True)

    async def set_protected(self, group: GroupSpec, instance_id: str, protected: bool) -> None:
        compute = self.connection().compute
        server_id = await self._run(self._server_id, group, instance_id)
        if server_id is None:
            return
        value = "true" if protected else "false"
        await self._run(compute.set_server_metadata, server_id, **{PROTECTED: value})

    async def delete_group(self, group: GroupSpec) -> None:
        compute = self.connection().compute
        for server in await self._run(self._servers, group):
            await self._run(compute.delete_server, server.id, ignore_missing=True)

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None
