"""The gcp provider scales a managed instance group up and down through google-cloud-compute (REST
transport) against the recording server (Compute Engine's documented REST shapes); the test asserts
each request's method, path and body. No real Google Cloud project is used.
"""

from __future__ import annotations

from master.scaling.providers.base import RUNNING
from master.scaling.providers.gcp import GcpProvider

from .conftest import TOKEN, cloud_group

ZONE = "/compute/v1/projects/ml-project/zones/europe-west4-a"
MIG = ZONE + "/instanceGroupManagers/vh-agent-gpu-t4"
TEMPLATES = "/compute/v1/projects/ml-project/global/instanceTemplates"


def provider_for(server) -> GcpProvider:
    return GcpProvider({"api_endpoint": server.url, "anonymous": True})


def group(**settings):
    return cloud_group(
        "gcp",
        instance_type="n1-standard-8",
        region="europe-west4",
        project="ml-project",
        accelerator_type="nvidia-tesla-t4",
        **settings,
    )


async def test_managed_instance_group_up_and_down(gcp_server):
    provider = provider_for(gcp_server)
    g = group()
    try:
        await provider.ensure_group(g)
        await provider.set_desired(g, 3)
        instances = await provider.list_instances(g)
        assert [i.state for i in instances] == [RUNNING] * 3
        idle = instances[1].id
        await provider.terminate(g, idle)
        assert idle not in [i.id for i in await provider.list_instances(g)]
        await provider.set_desired(g, 0)
        assert await provider.list_instances(g) == []
        await provider.delete_group(g)
        assert await provider.list_instances(g) == []
    finally:
        await provider.close()

    calls = gcp_server.calls
    # the instance template: machine type, GPU, boot image and the startup-script metadata
    (insert_template,) = calls("POST", TEMPLATES)
    template = insert_template.body
    assert template["name"].startswith("vh-agent-gpu-t4-")
    props = template["properties"]
    assert props["machineType"] == "n1-standard-8"
    assert props["guestAccelerators"] == [
        {"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": 1}
    ]
    assert props["scheduling"] == {"onHostMaintenance": "TERMINATE"}
    assert props["labels"] == {"jupyter-valohai-group": "gpu-t4"}
    (item,) = props["metadata"]["items"]
    assert item["key"] == "startup-script"
    assert "bootstrap.sh?group=gpu-t4" in item["value"] and TOKEN in item["value"]
    assert "computeMetadata/v1/instance/name" in item["value"]  # the agent's instance id
    disk = props["disks"][0]
    assert disk["boot"] is True and disk["type"] == "PERSISTENT"
    assert disk["initializeParams"] == {
        "sourceImage": "projects/debian-cloud/global/images/family/debian-12",
        "diskSizeGb": "50",
    }
    # the MIG, created empty on that template
    (insert_mig,) = calls("POST", ZONE + "/instanceGroupManagers")
    assert insert_mig.body == {
        "name": "vh-agent-gpu-t4",
        "baseInstanceName": "vh-agent-gpu-t4",
        "instanceTemplate": f"projects/ml-project/global/instanceTemplates/{template['name']}",
        "targetSize": 0,
    }
    # resize up then down: size is a query parameter, no body
    resizes = calls("POST", MIG + "/resize")
    assert [(r.query["size"], r.body) for r in resizes] == [("3", None), ("0", None)]
    (delete_instances,) = calls("POST", MIG + "/deleteInstances")
    assert delete_instances.body == {"instances": [f"zones/europe-west4-a/instances/{idle}"]}
    assert len(calls("POST", MIG + "/listManagedInstances")) == 4
    assert len(calls("DELETE", MIG)) == 1
    assert len(calls("DELETE", f"{TEMPLATES}/{template['name']}")) == 1
    # every mutation was waited for through the documented operations.wait
    waits = calls(
        "POST", r"/compute/v1/projects/ml-project/(zones/europe-west4-a|global)/operations/.*/wait"
    )
    assert len(waits) == 7


async def test_a_changed_spec_moves_the_group_to_a_new_template(gcp_server):
    provider = provider_for(gcp_server)
    try:
        await provider.ensure_group(group())
        await provider.ensure_group(group())  # unchanged: nothing inserted
        assert len(gcp_server.calls("POST", TEMPLATES)) == 1
        await provider.ensure_group(group(disk_size_gb=200))
        first, second = (r.body["name"] for r in gcp_server.calls("POST", TEMPLATES))
        assert first != second
        (switch,) = gcp_server.calls("POST", MIG + "/setInstanceTemplate")
        assert switch.body == {
            "instanceTemplate": f"projects/ml-project/global/instanceTemplates/{second}"
        }
    finally:
        await provider.close()
