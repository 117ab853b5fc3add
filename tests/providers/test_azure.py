"""The azure provider scales a VM scale set up and down through azure-mgmt-compute against the
recording server (Azure's documented REST shapes); the test asserts each request's method, path and
body. No real Azure subscription is used.
"""

from __future__ import annotations

import base64

from master.scaling.providers.azure import AzureProvider
from master.scaling.providers.base import RUNNING

from .conftest import TOKEN, cloud_group

SUB = "00000000-0000-0000-0000-0000000000aa"
SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet"
    "/subnets/workers"
)
VMSS = (
    f"/subscriptions/{SUB}/resourceGroups/ml-workers/providers/Microsoft.Compute"
    "/virtualMachineScaleSets/vh-agent-gpu-t4"
)


def provider_for(server) -> AzureProvider:
    return AzureProvider(
        {
            "base_url": server.url,
            "connection_verify": server.cert_path,
            "access_token": "test-bearer-token",
            "polling_interval": 0,
        }
    )


def group():
    return cloud_group(
        "azure",
        subscription_id=SUB,
        resource_group="ml-workers",
        subnet_id=SUBNET,
        ssh_public_key="ssh-ed25519 AAAAC3Nza admin@example",
    )


async def test_scale_set_up_and_down(azure_server):
    provider = provider_for(azure_server)
    g = group()
    try:
        await provider.ensure_group(g)
        await provider.set_desired(g, 3)
        instances = await provider.list_instances(g)
        assert [i.state for i in instances] == [RUNNING] * 3
        # a VM's id is its name, "<scale set>_<instance id>", as the VM reads it from IMDS
        assert [i.id for i in instances] == [f"vh-agent-gpu-t4_{n}" for n in range(3)]
        busy, idle = instances[0].id, instances[2].id
        await provider.set_protected(g, busy, True)
        assert {i.id: i.protected for i in await provider.list_instances(g)}[busy] is True
        await provider.terminate(g, idle)
        await provider.set_desired(g, 1)
        left = await provider.list_instances(g)
        assert [i.id for i in left] == [busy]  # the protected VM survives the scale-in
        await provider.delete_group(g)
        assert await provider.list_instances(g) == []
    finally:
        await provider.close()

    calls = azure_server.calls
    # every request carries the bearer token and an api-version
    for r in azure_server.requests:
        assert r.headers["authorization"] == "Bearer test-bearer-token"
        assert r.query.get("api-version")

    # create: GET (none yet) then PUT of the documented scale-set body
    (put,) = calls("PUT", VMSS)
    body = put.body
    assert body["location"] == "westeurope"
    assert body["sku"] == {"name": "Standard_NC4as_T4_v3", "tier": "Standard", "capacity": 0}
    assert body["tags"] == {"jupyter-valohai-group": "gpu-t4"}
    assert body["properties"]["upgradePolicy"] == {"mode": "Manual"}
    profile = body["properties"]["virtualMachineProfile"]
    os_profile = profile["osProfile"]
    script = base64.b64decode(os_profile["customData"]).decode()
    assert script.startswith("#!/bin/sh")
    assert "169.254.169.254/metadata/instance/compute" in script  # the agent's instance id
    assert "bootstrap.sh?group=gpu-t4" in script and TOKEN in script
    assert os_profile["linuxConfiguration"]["disablePasswordAuthentication"] is True
    assert profile["storageProfile"]["imageReference"] == {
        "publisher": "Canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    }
    nic = profile["networkProfile"]["networkInterfaceConfigurations"][0]
    assert nic["properties"]["ipConfigurations"][0]["properties"]["subnet"] == {"id": SUBNET}

    # scale: PATCH sku.capacity, up to 3 then down to 1
    assert [r.body for r in calls("PATCH", VMSS)] == [
        {"sku": {"capacity": 3}},
        {"sku": {"capacity": 1}},
    ]
    # protection: PUT on the VM with the documented minimal body
    (protect,) = calls("PUT", VMSS + "/virtualMachines/0")
    assert protect.body == {"properties": {"protectionPolicy": {"protectFromScaleIn": True}}}
    # terminate one chosen VM: POST .../delete with its instance id
    (delete_instances,) = calls("POST", VMSS + "/delete")
    assert delete_instances.body == {"instanceIds": ["2"]}
    assert len(calls("GET", VMSS + "/virtualMachines")) == 4
    (delete,) = calls("DELETE", VMSS)
    assert delete.body is None
    # the SDK followed ARM's long-running operations to their end
    assert calls(
        "GET",
        r"/subscriptions/[^/]+/providers/Microsoft\.Compute/locations/westeurope/operations/.*",
    )


async def test_ensure_group_is_idempotent_and_keeps_capacity(azure_server):
    provider = provider_for(azure_server)
    g = group()
    try:
        await provider.ensure_group(g)
        await provider.set_desired(g, 2)
        await provider.ensure_group(g)  # the spec again: same capacity, no new VMs
        assert [r.body["sku"]["capacity"] for r in azure_server.calls("PUT", VMSS)] == [0, 2]
        assert len(await provider.list_instances(g)) == 2
        await provider.delete_group(g)
        await provider.delete_group(g)  # already gone
    finally:
        await provider.close()
