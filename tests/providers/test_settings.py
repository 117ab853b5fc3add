"""Missing or bad settings of the cloud providers are clear InvalidInput errors (with a hint),
raised before any SDK call; the environment's settings win over the provider's.
"""

from __future__ import annotations

import pytest

from jupyter_valohai.errors import InvalidInput
from master.scaling.providers._cloud import setting
from master.scaling.providers.azure import AzureProvider
from master.scaling.providers.gcp import GcpProvider
from master.scaling.providers.kubernetes import KubernetesProvider
from master.scaling.providers.openstack import OpenStackProvider

from .conftest import cloud_group


@pytest.mark.parametrize(
    "call, missing",
    [
        (lambda: AzureProvider().client(cloud_group("azure")), "subscription_id"),
        (
            lambda: AzureProvider().scale_set(cloud_group("azure", subscription_id="s"), 0),
            "ssh_public_key",
        ),
        (lambda: GcpProvider().where(cloud_group("gcp")), "project"),
        (lambda: GcpProvider().template(cloud_group("gcp", project="p")), "accelerator_type"),
        (lambda: OpenStackProvider().server_body(cloud_group("openstack"), "f"), "image_id"),
        (lambda: KubernetesProvider().kube_settings(cloud_group("kubernetes")), "image"),
    ],
    ids=["azure-sub", "azure-ssh", "gcp-project", "gcp-gpu", "openstack-image", "k8s-image"],
)
def test_missing_setting_is_invalid_input(call, missing):
    with pytest.raises(InvalidInput) as err:
        call()
    assert repr(missing) in err.value.message and err.value.hint


def test_bad_kubernetes_values_are_invalid_input():
    provider = KubernetesProvider({"image": "agent:1"})
    with pytest.raises(InvalidInput):
        provider.kube_settings(cloud_group("kubernetes", node_selector=["not", "a", "mapping"]))
    with pytest.raises(InvalidInput):
        provider.mode(cloud_group("kubernetes", mode="daemonset"))


def test_environment_settings_win_over_the_providers():
    provider = GcpProvider({"zone": "us-central1-b", "project": "from-provider"})
    group = cloud_group("gcp", project="from-environment")
    assert provider.where(group) == ("from-environment", "us-central1-b")
    assert setting(provider, group, "nothing", "default") == "default"


@pytest.mark.parametrize(
    "cls, name",
    [
        (KubernetesProvider, "kubernetes"),
        (AzureProvider, "azure"),
        (GcpProvider, "gcp"),
        (OpenStackProvider, "openstack"),
    ],
)
def test_cloud_providers_are_marked_experimental(cls, name):
    assert cls.name == name and cls.experimental is True
    assert cls.expected_start_seconds > 0
