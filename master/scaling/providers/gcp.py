"""The ``gcp`` provider: a worker group is a zonal managed instance group (google-cloud-compute).

An instance template carries the machine type, GPUs, boot image and the bootstrap script as the
``startup-script`` metadata; templates are immutable, so each spec gets its own (the name ends with
a hash of it) and the group moves to it with ``setInstanceTemplate``. The MIG's ``targetSize`` is
the group's desired size; the scaler's chosen idle instance goes through ``deleteInstances``, which
also lowers the target size. Compute Engine has no per-instance scale-in protection:
``set_protected`` is a no-op, so scale-in goes through :meth:`terminate` of idle instances, never
through ``resize`` down past busy ones (``resize`` lets Compute Engine choose). Experimental.

Settings (environment or provider): ``project`` (required), ``zone`` (default ``<region>-a``),
``image`` (default Debian 12), ``network``, ``subnetwork``, ``external_ip`` (default true),
``disk_size_gb``, ``accelerator_type`` (required when the environment has GPUs), ``spot``,
``service_account``. Connection (provider settings): ``credentials_file`` (a service-account JSON)
or application-default credentials; ``api_endpoint`` and ``anonymous`` point the SDK elsewhere
(tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from typing import Any

from jupyter_valohai.errors import InvalidInput, ServiceUnavailable

from ._cloud import (
    GCE_INSTANCE_NAME,
    GROUP_LABEL,
    bootstrap_script,
    required,
    resource_name,
    setting,
)
from .base import PENDING, RUNNING, STOPPING, GroupSpec, Instance, WorkerGroupProvider

DEFAULT_IMAGE = "projects/debian-cloud/global/images/family/debian-12"


class GcpProvider(WorkerGroupProvider):
    """Worker groups as Compute Engine managed instance groups."""

    name = "gcp"
    experimental = True
    expected_start_seconds = 90.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._clients: dict[str, Any] = {}

    def clients(self) -> dict[str, Any]:
        """Return the REST clients (templates, migs, zone_ops, global_ops), built once."""
        if not self._clients:
            from google.api_core.client_options import ClientOptions
            from google.cloud import compute_v1

            kwargs: dict[str, Any] = {"transport": "rest", "credentials": self._credentials()}
            if self.settings.get("api_endpoint"):
                kwargs["client_options"] = ClientOptions(api_endpoint=self.settings["api_endpoint"])
            self._clients = {
                "templates": compute_v1.InstanceTemplatesClient(**kwargs),
                "migs": compute_v1.InstanceGroupManagersClient(**kwargs),
                "zone_ops": compute_v1.ZoneOperationsClient(**kwargs),
                "global_ops": compute_v1.GlobalOperationsClient(**kwargs),
            }
        return self._clients

    def _credentials(self) -> Any:
        if self.settings.get("anonymous"):
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        if self.settings.get("credentials_file"):
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_file(
                self.settings["credentials_file"],
                scopes=["https://www.googleapis.com/auth/compute"],
            )
        return None  # application-default credentials

    def where(self, group: GroupSpec) -> tuple[str, str]:
        project = str(required(self, group, "project"))
        zone = setting(self, group, "zone") or (f"{group.region}-a" if group.region else None)
        if not zone:
            raise InvalidInput(
                f"The gcp worker group {group.slug!r} has no zone.",
                hint="Set settings.zone (e.g. europe-west4-a) or the environment's region.",
            )
        return project, str(zone)

    def mig_name(self, group: GroupSpec) -> str:
        return resource_name(group.slug, max_length=63)

    def template(self, group: GroupSpec) -> dict[str, Any]:
        """Return the instance template (REST field names) for the group's current spec."""
        if not group.instance_type:
            raise InvalidInput(
                f"The gcp worker group {group.slug!r} has no instance type.",
                hint="Set the environment's instance type to a machine type, e.g. n1-standard-8.",
            )
        interface: dict[str, Any] = {
            "network": setting(self, group, "network", "global/networks/default")
        }
        if setting(self, group, "subnetwork"):
            interface["subnetwork"] = setting(self, group, "subnetwork")
        if setting(self, group, "external_ip", True):
            interface["accessConfigs"] = [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]
        script = bootstrap_script(group, instance_id_python=GCE_INSTANCE_NAME)
        properties: dict[str, Any] = {
            "machineType": group.instance_type,
            "labels": {GROUP_LABEL: resource_name(group.slug, prefix="", max_length=63)},
            "disks": [
                {
                    "boot": True,
                    "autoDelete": True,
                    "type": "PERSISTENT",
                    "initializeParams": {
                        "sourceImage": setting(self, group, "image", DEFAULT_IMAGE),
                        "diskSizeGb": str(int(setting(self, group, "disk_size_gb", 50))),
                    },
                }
            ],
            "networkInterfaces": [interface],
            "metadata": {"items": [{"key": "startup-script", "value": script}]},
            "scheduling": {"onHostMaintenance": "TERMINATE" if group.gpus else "MIGRATE"},
        }
        if group.gpus:
            properties["guestAccelerators"] = [
                {
                    "acceleratorType": str(required(self, group, "accelerator_type")),
                    "acceleratorCount": group.gpus,
                }
            ]
        if setting(self, group, "spot", False):
            properties["scheduling"].update(
                provisioningModel="SPOT", instanceTerminationAction="DELETE"
            )
        if setting(self, group, "service_account"):
            properties["serviceAccounts"] = [
                {
                    "email": setting(self, group, "service_account"),
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                }
            ]
        digest = hashlib.sha256(json.dumps(properties, sort_keys=True).encode()).hexdigest()
        name = f"{resource_name(group.slug, max_length=54)}-{digest[:8]}"
        return {"name": name, "properties": properties}

    # --- calls -------------------------------------------------------------------------------

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _mutate(self, fn: Any, **kwargs: Any) -> None:
        """Start an operation and wait for it (``operations.wait``) in a thread."""
        await asyncio.to_thread(self._mutate_blocking, fn, kwargs)

    def _mutate_blocking(self, fn: Any, kwargs: dict[str, Any]) -> None:
        from google.cloud import compute_v1

        op = fn(**kwargs)
        project, zone = kwargs["project"], kwargs.get("zone")
        done = compute_v1.Operation.Status.DONE
        for _ in range(100):  # each wait blocks up to two minutes at the server
            if op.status == done:
                break
            if zone:
                op = self.clients()["zone_ops"].wait(project=project, zone=zone, operation=op.name)
            else:
                op = self.clients()["global_ops"].wait(project=project, operation=op.name)
        errors = list(op.error.errors) if op.error else []
        if errors or op.status != done:
            raise ServiceUnavailable(
                f"Compute Engine operation {op.name} failed: "
                + "; ".join(e.message for e in errors),
                hint="See the operation in the Google Cloud console.",
            )

    # --- the interface -----------------------------------------------------------------------

    async def ensure_group(self, group: GroupSpec) -> None:
        from google.api_core.exceptions import NotFound
        from google.cloud import compute_v1

        project, zone = self.where(group)
        c = self.clients()
        template = self.template(group)
        template_url = f"projects/{project}/global/instanceTemplates/{template['name']}"
        try:
            await self._run(c["templates"].get, project=project, instance_template=template["name"])
        except NotFound:
            resource = compute_v1.InstanceTemplate.from_json(json.dumps(template))
            await self._mutate(
                c["templates"].insert, project=project, instance_template_resource=resource
            )
        try:
            mig = await self._run(
                c["migs"].get,
                project=project,
                zone=zone,
                instance_group_manager=self.mig_name(group),
            )
        except NotFound:
            resource = compute_v1.InstanceGroupManager(
                name=self.mig_name(group),
                base_instance_name=self.mig_name(group)[:54],
                instance_template=template_url,
                target_size=0,
            )
            await self._mutate(
                c["migs"].insert,
                zone=zone,
                project=project,
                instance_group_manager_resource=resource,
            )
            return
        if not mig.instance_template.endswith(template_url):
            request = compute_v1.InstanceGroupManagersSetInstanceTemplateRequest(
                instance_template=template_url
            )
            await self._mutate(
                c["migs"].set_instance_template,
                zone=zone,
                project=project,
                instance_group_manager=self.mig_name(group),
                instance_group_managers_set_instance_template_request_resource=request,
            )

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        project, zone = self.where(group)
        await self._mutate(
            self.clients()["migs"].resize,
            zone=zone,
            project=project,
            instance_group_manager=self.mig_name(group),
            size=max(0, int(size)),
        )

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        from google.api_core.exceptions import NotFound

        project, zone = self.where(group)
        migs = self.clients()["migs"]
        try:
            managed = await self._run(
                lambda: list(
                    migs.list_managed_instances(
                        project=project, zone=zone, instance_group_manager=self.mig_name(group)
                    )
                )
            )
        except NotFound:
            return []
        out = []
        for item in managed:
            action = item.current_action or "NONE"
            status = item.instance_status or ""
            if action in ("DELETING", "ABANDONING") or status in ("STOPPING", "TERMINATED"):
                state = STOPPING
            elif status == "RUNNING" and action == "NONE":
                state = RUNNING
            else:
                state = PENDING
            out.append(
                Instance(
                    id=item.instance.rsplit("/", 1)[-1],
                    state=state,
                    details={"status": status, "action": action, "gce_id": str(item.id)},
                )
            )
        return out

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        from google.cloud import compute_v1

        project, zone = self.where(group)
        request = compute_v1.InstanceGroupManagersDeleteInstancesRequest(
            instances=[f"zones/{zone}/instances/{instance_id}"]
        )
        await self._mutate(
            self.clients()["migs"].delete_instances,
            zone=zone,
            project=project,
            instance_group_manager=self.mig_name(group),
            instance_group_managers_delete_instances_request_resource=request,
        )

    async def delete_group(self, group: GroupSpec) -> None:
        from google.api_core.exceptions import NotFound

        project, zone = self.where(group)
        c = self.clients()
        with contextlib.suppress(NotFound):
            await self._mutate(
                c["migs"].delete,
                zone=zone,
                project=project,
                instance_group_manager=self.mig_name(group),
            )
        with contextlib.suppress(NotFound):
            await self._mutate(
                c["templates"].delete,
                project=project,
                instance_template=self.template(group)["name"],
            )

    async def close(self) -> None:
        for client in self._clients.values():
            await asyncio.to_thread(client.transport.close)
        self._clients = {}
