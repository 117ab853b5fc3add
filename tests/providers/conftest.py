"""Fixtures of the cloud-provider tests: the recording server with each fake compute API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from master.scaling.providers.base import GroupSpec
from tests.certs import self_signed

from .fake_azure import FakeAzureCompute
from .fake_gcp import FakeComputeEngine
from .fake_openstack import FakeOpenStack
from .recording_server import RecordingServer

TOKEN = "s3cret-group-token"


def cloud_group(provider: str, **settings) -> GroupSpec:
    """A GPU worker group of ``provider`` as the scaler would hand it over."""
    return GroupSpec(
        slug="gpu-t4",
        provider=provider,
        instance_type=settings.pop("instance_type", "Standard_NC4as_T4_v3"),
        region=settings.pop("region", "westeurope"),
        cpus=4,
        memory_mb=28672,
        gpus=1,
        max_size=4,
        settings=settings,
        master_url="https://master.example.com",
        token=TOKEN,
        bootstrap_url="https://master.example.com/api/agent/bootstrap.sh?group=gpu-t4",
    )


@pytest.fixture
def azure_server(tmp_path) -> Iterator[RecordingServer]:
    """Azure's compute API over TLS: azure-core refuses bearer tokens on plain http."""
    cert = self_signed(tmp_path, "127.0.0.1")
    with RecordingServer(FakeAzureCompute(), cert=cert) as server:
        server.cert_path = cert[0]
        yield server


@pytest.fixture
def gcp_server() -> Iterator[RecordingServer]:
    """Compute Engine's REST API over plain http (AnonymousCredentials need no TLS)."""
    with RecordingServer(FakeComputeEngine()) as server:
        yield server


@pytest.fixture
def openstack_server() -> Iterator[RecordingServer]:
    """Keystone v3 + Nova over plain http; the token's catalog points compute back here."""
    with RecordingServer(FakeOpenStack()) as server:
        yield server
