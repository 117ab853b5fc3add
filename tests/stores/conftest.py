"""Real object stores, one of each per pytest worker; each test gets a fresh bucket/container."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from jupyter_valohai.services import ManagedProcess
from jupyter_valohai.stores import ArtifactStore, open_store

from .servers import (
    S3_KEY,
    S3_SECRET,
    s3_client,
    start_azurite,
    start_gcs_emulator,
    start_seaweedfs,
)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    proc = start_seaweedfs(str(tmp_path_factory.mktemp("seaweedfs")))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    proc = start_azurite(str(tmp_path_factory.mktemp("azurite")))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    proc = start_gcs_emulator(str(tmp_path_factory.mktemp("gcs")))
    yield proc
    proc.stop()


def fresh_name() -> str:
    return f"vh-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def s3_url(seaweedfs: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the store URL (small multipart sizes so tests exercise parts)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    bucket = fresh_name()
    s3_client(seaweedfs.url).create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    sizes = "multipart_threshold=5242880&part_size=5242880"
    return f"s3://{bucket}/team/a?endpoint_url={seaweedfs.url}&{sizes}"


@pytest.fixture
def azure_url(azurite: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = azurite.extra["conn"]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
    container = fresh_name()
    BlobServiceClient.from_connection_string(conn).create_container(container)
    return f"azure://{container}/team/a?multipart_threshold=5242880&part_size=4194304"


@pytest.fixture
def gcs_url(gcs_emulator: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    bucket = fresh_name()
    storage.Client(project="local", credentials=AnonymousCredentials()).create_bucket(bucket)
    return f"gs://{bucket}/team/a"


@pytest.fixture(params=["s3", "azure", "gcs"])
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    """Each real object store in turn."""
    return open_store(request.getfixturevalue(f"{request.param}_url"))
