"""The ``azure`` provider: a worker group is a VM scale set (azure-mgmt-compute), experimental.

The scale set's ``sku.capacity`` is the group's desired size; each VM runs the bootstrap script from
its ``customData`` (cloud-init runs it on first boot). Busy VMs get ``protectFromScaleIn``; the
scaler's chosen idle VM goes through ``delete_instances``, which also lowers the capacity.

Settings (environment or provider): ``subscription_id``, ``resource_group``, ``subnet_id`` and
``ssh_public_key`` (required); ``location`` (default: the group's region), ``image`` (an
``imageReference`` mapping or a ``Publisher:Offer:Sku:Version`` URN; default Ubuntu 24.04 LTS),
``admin_username``, ``priority`` (``Regular`` or ``Spot``), ``os_disk_type``. Credentials (provider
settings): ``tenant_id`` + ``client_id`` + ``client_secret``, or ``access_token`` (a bearer token
you renew), else azure-identity's ``DefaultAzureCredential``; ``base_url`` and
``connection_verify`` point the SDK elsewhere (tests use a local recording server).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

from ._cloud import AZURE_VM_NAME, GROUP_LABEL, bootstrap_script, required, resource_name, setting
from .base import PENDING, RUNNING, STOPPING, GroupSpec, Instance, WorkerGroupProvider

DEFAULT_IMAGE = "Canonical:ubuntu-24_04-lts:server:latest"


class StaticTokenCredential:
    """An azure-core TokenCredential that hands out one bearer token (``access_token`` setting)."""

    def __init__(self, token: str, expires_in: float = 3600.0) -> None:
        self._token = token
        self._expires_on = int(time.time() + expires_in)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, self._expires_on)


class AzureProvider(WorkerGroupProvider):
    """Worker groups as Azure virtual machine scale sets."""

    name = "azure"
    experimental = True
    expected_start_seconds = 150.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._clients: dict[str, Any] = {}

    def client(self, group: GroupSpec) -> Any:
        """Return the ComputeManagementClient of the group's subscription (one per subscription)."""
        subscription = str(required(self, group, "subscription_id"))
        if subscription not in self._clients:
            from azure.mgmt.compute import ComputeManagementClient

            kwargs: dict[str, Any] = {}
            for key in ("base_url", "connection_verify", "polling_interval"):
                if key in self.settings:
                    kwargs[key] = self.settings[key]
            self._clients[subscription] = ComputeManagementClient(
                self._credential(), subscription, **kwargs
            )
        return self._clients[subscription]

    def _credential(self) -> Any:
        s = self.settings
        if s.get("access_token"):
            return StaticTokenCredential(str(s["access_token"]))
        if s.get("client_secret"):
            from azure.identity import ClientSecretCredential

            return ClientSecretCredential(s["tenant_id"], s["client_id"], s["client_secret"])
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    def scale_set_name(self, group: GroupSpec) -> str:
        return resource_name(group.slug, max_length=64)

    def scale_set(self, group: GroupSpec, capacity: int) -> dict[str, Any]:
        """Return the scale set's REST body (``PUT .../virtualMachineScaleSets/{name}``)."""
        name = self.scale_set_name(group)
        user = str(setting(self, group, "admin_username", "vhagent"))
        image = setting(self, group, "image", DEFAULT_IMAGE)
        if isinstance(image, str):
            publisher, offer, sku, version = image.split(":")
            image = {"publisher": publisher, "offer": offer, "sku": sku, "version": version}
        script = bootstrap_script(group, instance_id_python=AZURE_VM_NAME)
        custom_data = base64.b64encode(script.encode()).decode()
        profile: dict[str, Any] = {
            "osProfile": {
                "computerNamePrefix": name[:50],
                "adminUsername": user,
                "customData": custom_data,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {
                                "path": f"/home/{user}/.ssh/authorized_keys",
                                "keyData": str(required(self, group, "ssh_public_key")),
                            }
                        ]
                    },
                },
            },
            "storageProfile": {
                "imageReference": dict(image),
                "osDisk": {
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {
                        "storageAccountType": setting(
                            self, group, "os_disk_type", "StandardSSD_LRS"
                        )
                    },
                },
            },
            "networkProfile": {
                "networkInterfaceConfigurations": [
                    {
                        "name": name,
                        "properties": {
                            "primary": True,
                            "ipConfigurations": [
                                {
                                    "name": name,
                                    "properties": {
                                        "subnet": {"id": str(required(self, group, "subnet_id"))}
                                    },
                                }
                            ],
                        },
                    }
                ]
            },
        }
        priority = setting(self, group, "priority", "Regular")
        if priority != "Regular":
            profile["priority"] = priority
            profile["evictionPolicy"] = "Delete"
        return {
            "location": str(setting(self, group, "location", group.region)),
            "tags": {GROUP_LABEL: group.slug},
            "sku": {"name": group.instance_type, "tier": "Standard", "capacity": capacity},
            "properties": {
                "overprovision": False,
                "upgradePolicy": {"mode": "Manual"},
                "virtualMachineProfile": profile,
            },
        }

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _wait(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Start a long-running operation and wait for it in a thread."""
        return await asyncio.to_thread(lambda: fn(*args, **kwargs).result())

    async def _current(self, group: GroupSpec) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        sets = self.client(group).virtual_machine_scale_sets
        rg = required(self, group, "resource_group")
        try:
            return await self._call(sets.get, rg, self.scale_set_name(group))
        except ResourceNotFoundError:
            return None

    # --- the interface -----------------------------------------------------------------------

    async def ensure_group(self, group: GroupSpec) -> None:
        current = await self._current(group)
        capacity = int(current.sku.capacity or 0) if current is not None else 0
        sets = self.client(group).virtual_machine_scale_sets
        await self._wait(
            sets.begin_create_or_update,
            required(self, group, "resource_group"),
            self.scale_set_name(group),
            self.scale_set(group, capacity),
        )

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        sets = self.client(group).virtual_machine_scale_sets
        await self._wait(
            sets.begin_update,
            required(self, group, "resource_group"),
            self.scale_set_name(group),
            {"sku": {"capacity": max(0, int(size))}},
        )

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        from azure.core.exceptions import ResourceNotFoundError

        vms = self.client(group).virtual_machine_scale_set_vms
        rg = required(self, group, "resource_group")
        try:
            listed = await self._call(lambda: list(vms.list(rg, self.scale_set_name(group))))
        except ResourceNotFoundError:
            return []
        out = []
        for vm in listed:
            props = vm.properties
            state = (props.provisioning_state if props else None) or "Creating"
            policy = props.protection_policy if props else None
            out.append(
                Instance(
                    # the VM's name ("<scale set>_<instance id>") is what the VM itself reads from
                    # the metadata service and reports as its agent's instance id
                    id=str(vm.name),
                    state={"Succeeded": RUNNING, "Deleting": STOPPING}.get(state, PENDING),
                    protected=bool(policy and policy.protect_from_scale_in),
                    details={"instance_id": vm.instance_id, "provisioning_state": state},
                )
            )
        return out

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        sets = self.client(group).virtual_machine_scale_sets
        await self._wait(
            sets.begin_delete_instances,
            required(self, group, "resource_group"),
            self.scale_set_name(group),
            {"instanceIds": [_vmss_instance_id(instance_id)]},
        )

    async def set_protected(self, group: GroupSpec, instance_id: str, protected: bool) -> None:
        vms = self.client(group).virtual_machine_scale_set_vms
        await self._wait(
            vms.begin_update,
            required(self, group, "resource_group"),
            self.scale_set_name(group),
            _vmss_instance_id(instance_id),
            {"properties": {"protectionPolicy": {"protectFromScaleIn": bool(protected)}}},
        )

    async def delete_group(self, group: GroupSpec) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        sets = self.client(group).virtual_machine_scale_sets
        with contextlib.suppress(ResourceNotFoundError):
            await self._wait(
                sets.begin_delete,
                required(self, group, "resource_group"),
                self.scale_set_name(group),
            )

    async def close(self) -> None:
        for client in self._clients.values():
            await asyncio.to_thread(client.close)
        self._clients.clear()


def _vmss_instance_id(vm: str) -> str:
    """Return the scale-set instance id of a VM name ``<scale set>_<instance id>`` (or an id)."""
    return vm.rsplit("_", 1)[-1]
