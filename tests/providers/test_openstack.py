"""The openstack provider scales a group of tagged Nova servers up and down through openstacksdk
against the recording server (Keystone v3 and Nova's documented shapes); the test asserts each
request's method, path and body. No real OpenStack cloud is used.
"""

from __future__ import annotations

import base64

from master.scaling.providers.base import RUNNING
from master.scaling.providers.openstack import OpenStackProvider

from .conftest import TOKEN, cloud_group

SERVERS = "/compute/v2.1/servers"
IMAGE = "8a1f3e4b-0c2d-4e5f-9a8b-7c6d5e4f3a2b"
NETWORK = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
TAG = "jupyter-valohai-group=gpu-t4"


def provider_for(server) -> OpenStackProvider:
    return OpenStackProvider(
        {
            "auth": {
                "auth_url": f"{server.url}/identity/v3",
                "username": "scaler",
                "password": "s3cret-os-password",
                "project_name": "ml",
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": "RegionOne",
        }
    )


def group():
    return cloud_group(
        "openstack", instance_type="gpu.t4.large", image_id=IMAGE, network_id=NETWORK
    )


async def test_tagged_servers_up_and_down(openstack_server):
    provider = provider_for(openstack_server)
    g = group()
    try:
        await provider.ensure_group(g)
        await provider.set_desired(g, 3)
        instances = await provider.list_instances(g)
        assert [i.state for i in instances] == [RUNNING] * 3
        busy, idle = instances[0].id, instances[1].id  # server names, as the agents report them
        server_ids = {i.id: i.details["server_id"] for i in instances}
        await provider.set_protected(g, busy, True)
        await provider.terminate(g, idle)
        await provider.set_desired(g, 0)  # the protected, busy server stays
        left = await provider.list_instances(g)
        assert [(i.id, i.protected) for i in left] == [(busy, True)]
        await provider.delete_group(g)
        assert await provider.list_instances(g) == []
    finally:
        await provider.close()

    calls = openstack_server.calls
    # Keystone v3 password auth scoped to the project
    (auth,) = calls("POST", "/identity/v3/auth/tokens")
    assert auth.body["auth"]["identity"] == {
        "methods": ["password"],
        "password": {
            "user": {
                "name": "scaler",
                "password": "s3cret-os-password",
                "domain": {"name": "Default"},
            }
        },
    }
    assert auth.body["auth"]["scope"] == {"project": {"name": "ml", "domain": {"name": "Default"}}}
    # every Nova call carries the issued token (the catalog pointed compute back here)
    nova = [r for r in openstack_server.requests if r.path.startswith(SERVERS)]
    assert nova and all(r.headers.get("x-auth-token") for r in nova)

    # three servers created with the documented body
    creates = calls("POST", SERVERS)
    assert len(creates) == 3
    for create in creates:
        server = create.body["server"]
        assert server["name"].startswith("vh-agent-gpu-t4-")
        assert server["imageRef"] == IMAGE
        assert server["flavorRef"] == "g1"  # found by the flavor's name
        assert server["networks"] == [{"uuid": NETWORK}]
        assert server["metadata"] == {"jupyter-valohai-group": "gpu-t4"}
        assert server["tags"] == [TAG]
        script = base64.b64decode(server["user_data"]).decode()
        assert "bootstrap.sh?group=gpu-t4" in script and TOKEN in script
        assert f"export VH_AGENT_INSTANCE_ID={server['name']}" in script
    # listing filters by the group's tag
    lists = calls("GET", SERVERS + "/detail")
    assert lists and all(r.query["tags"] == TAG for r in lists)
    # protection is server metadata
    (protect,) = calls("POST", f"{SERVERS}/{server_ids[busy]}/metadata")
    assert protect.body == {"metadata": {"jupyter-valohai-protected": "true"}}
    # deletes: the chosen idle server, then the one unprotected left by set_desired(0), then the
    # busy one by delete_group
    deletes = [r.path.rsplit("/", 1)[-1] for r in calls("DELETE", SERVERS + "/.*")]
    assert deletes[0] == server_ids[idle] and deletes[-1] == server_ids[busy]
    assert len(deletes) == 3
    assert all(r.body is None for r in calls("DELETE", SERVERS + "/.*"))


async def test_a_failed_build_is_replaced(openstack_server):
    provider = provider_for(openstack_server)
    g = group()
    try:
        await provider.set_desired(g, 2)
        failed_id = next(iter(openstack_server.api.servers))
        openstack_server.api.servers[failed_id]["status"] = "ERROR"
        assert sorted(i.state for i in await provider.list_instances(g)) == ["running", "stopping"]
        await provider.set_desired(g, 2)
        servers = openstack_server.api.servers.values()
        assert failed_id not in openstack_server.api.servers
        assert [s["status"] for s in servers] == ["ACTIVE", "ACTIVE"]
        assert [r.path for r in openstack_server.calls("DELETE", SERVERS + "/.*")] == [
            f"{SERVERS}/{failed_id}"
        ]
    finally:
        await provider.close()
