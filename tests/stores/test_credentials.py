"""Wrong credentials are refused by the real servers, and secrets never reach a message."""

from __future__ import annotations

import io

import pytest

from jupyter_valohai.errors import InvalidInput, NotConfigured, ServiceUnavailable
from jupyter_valohai.services import ManagedProcess
from jupyter_valohai.stores import open_store

from .servers import AZURITE_KEY, S3_KEY, S3_SECRET


def test_s3_wrong_secret_is_refused(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-123")
    store = open_store(s3_url)
    with pytest.raises(ServiceUnavailable) as info:
        store.put("a.txt", io.BytesIO(b"x"))
    assert "SignatureDoesNotMatch" in str(info.value)
    assert "not-the-secret-123" not in str(info.value) + str(info.value.hint)
    # A URL presigned with the wrong secret is refused by the server too.
    target = store.direct_upload("a.txt", 1)
    assert target is not None
    import requests

    assert requests.put(target.url, data=b"x").status_code == 403


def test_azure_wrong_key_is_refused(
    azure_url: str, azurite: ManagedProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "A" * len(AZURITE_KEY)
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", azurite.extra["conn"].replace(AZURITE_KEY, wrong)
    )
    store = open_store(azure_url)
    with pytest.raises(ServiceUnavailable) as info:
        store.put("a.txt", io.BytesIO(b"x"))
    assert wrong not in str(info.value)


@pytest.mark.parametrize("url_fixture", ["s3_url", "azure_url", "gcs_url"])
def test_check_finds_a_missing_bucket(request: pytest.FixtureRequest, url_fixture: str) -> None:
    url = request.getfixturevalue(url_fixture)
    open_store(url).check()  # the fixture made the bucket
    bucket = url.split("://", 1)[1].split("/", 1)[0]
    with pytest.raises(NotConfigured) as info:
        open_store(url.replace(bucket, "vh-no-such-bucket", 1)).check()
    assert "does not exist" in str(info.value)
    assert "Create" in str(info.value.hint)


def test_azure_without_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(NotConfigured) as info:
        open_store("azure://container/prefix")
    assert "AZURE_STORAGE_CONNECTION_STRING" in str(info.value.hint)


@pytest.mark.parametrize(
    "url",
    [
        "s3:///prefix",
        "s3://bucket/../up",
        "s3://bucket/p?part_size=nope",
        "s3://bucket/p?multipart_threshold=10",
        "ftp://host/x",
    ],
)
def test_bad_store_urls_are_refused_with_a_hint(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        open_store(url)
    assert info.value.hint


def test_credentials_in_a_store_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidInput) as info:
        open_store("s3://AKIDEXAMPLE:hunter2-secret@bucket/prefix")
    assert "hunter2-secret" not in str(info.value) + str(info.value.hint)


def test_s3_credentials_named_by_reference(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``credentials_env=TEAM`` reads TEAM_ACCESS_KEY_ID/TEAM_SECRET_ACCESS_KEY, nothing else."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-123")
    url = s3_url + "&credentials_env=TEAM_A"
    with pytest.raises(NotConfigured) as info:
        open_store(url)
    assert "TEAM_A_SECRET_ACCESS_KEY" in str(info.value.hint)
    monkeypatch.setenv("TEAM_A_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("TEAM_A_SECRET_ACCESS_KEY", S3_SECRET)
    store = open_store(url)
    store.put("a.txt", io.BytesIO(b"by reference"))
    with store.open("a.txt") as fp:
        assert fp.read() == b"by reference"
