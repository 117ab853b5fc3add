"""Every object store against its real server: round trips, direct URLs, refusals."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import requests

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.stores import ArtifactStore, DirectUpload

SIZES = {"1KB": 1024, "50MB": 50 * 1000 * 1000}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_round_trip_byte_for_byte(store: ArtifactStore, size: int) -> None:
    data = os.urandom(size)
    stored = store.put("outputs/e1/1/model.bin", io.BytesIO(data))
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists("outputs/e1/1/model.bin")
    assert store.size("outputs/e1/1/model.bin") == size
    with store.open("outputs/e1/1/model.bin") as fp:
        assert hashlib.sha256(fp.read()).hexdigest() == stored.sha256
    store.put("outputs/e1/1/model.bin", io.BytesIO(b"replaced"))
    with store.open("outputs/e1/1/model.bin") as fp:
        assert fp.read() == b"replaced"
    store.delete("outputs/e1/1/model.bin")
    assert not store.exists("outputs/e1/1/model.bin")
    store.delete("outputs/e1/1/model.bin")  # deleting nothing is fine


def test_missing_object_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFound):
        store.open("nothing/here")
    with pytest.raises(NotFound):
        store.size("nothing/here")


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "/abs", "a//b", "", "a\\b", "."])
def test_keys_escaping_the_prefix_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidInput):
        store.open(key)


def test_uri_names_bucket_prefix_and_key_without_options(store: ArtifactStore) -> None:
    uri = store.uri("outputs/e1/1/a.txt")
    assert uri.endswith("/team/a/outputs/e1/1/a.txt")
    assert "?" not in uri


def upload_direct(target: DirectUpload, data: bytes) -> list[tuple[int, str]]:
    """What an agent does with an outputs/prepare answer, with plain HTTP."""
    if not target.upload_id:
        resp = requests.request(target.method, target.url, data=data, headers=target.headers)
        assert resp.status_code in (200, 201), resp.text
        return []
    etags = []
    for part in target.parts:
        chunk = data[part.offset : part.offset + part.size]
        resp = requests.put(part.url, data=chunk, headers=part.headers)
        assert resp.status_code in (200, 201), resp.text
        etags.append((part.number, resp.headers.get("ETag", "")))
    return etags


@pytest.mark.parametrize("size", [1024, 12 * 1000 * 1000], ids=["single", "multipart"])
@pytest.mark.parametrize("url_fixture", ["s3_url", "azure_url"])
def test_direct_upload_and_download_with_plain_http(
    request: pytest.FixtureRequest, url_fixture: str, size: int
) -> None:
    from jupyter_valohai.stores import open_store

    store = open_store(request.getfixturevalue(url_fixture))
    data = os.urandom(size)
    target = store.direct_upload("outputs/e1/1/big.bin", size)
    assert target is not None
    assert bool(target.upload_id) == (size > 5 * 1024 * 1024)
    if target.upload_id:
        assert len(target.parts) == len(range(0, size, target.parts[0].size)) > 1
    etags = upload_direct(target, data)
    if target.upload_id:
        store.complete_upload("outputs/e1/1/big.bin", target.upload_id, etags)
        store.complete_upload("outputs/e1/1/big.bin", target.upload_id, etags)  # retried: fine
    assert store.size("outputs/e1/1/big.bin") == size
    url = store.download_url("outputs/e1/1/big.bin", "big.bin")
    assert url is not None
    resp = requests.get(url)
    assert resp.status_code == 200
    assert resp.content == data
    assert 'filename="big.bin"' in resp.headers["Content-Disposition"]


@pytest.mark.parametrize("url_fixture", ["s3_url", "azure_url"])
def test_tampered_signed_url_is_refused(request: pytest.FixtureRequest, url_fixture: str) -> None:
    from jupyter_valohai.stores import open_store

    store = open_store(request.getfixturevalue(url_fixture))
    store.put("a.txt", io.BytesIO(b"secret bytes"))
    url = store.download_url("a.txt", "a.txt")
    assert url is not None
    assert requests.get(url).content == b"secret bytes"
    # The same signature for another object: the signature covers the key.
    other = url.replace("/a.txt?", "/b.txt?")
    assert requests.get(other).status_code == 403
    target = store.direct_upload("c.txt", 3)
    assert target is not None
    assert (
        requests.put(
            target.url.replace("/c.txt?", "/d.txt?"), data=b"abc", headers=target.headers
        ).status_code
        == 403
    )


def test_gcs_streams_through_the_master(gcs_url: str) -> None:
    """The emulator has no service-account key to sign with: no direct URLs, say so by None."""
    from jupyter_valohai.stores import open_store

    store = open_store(gcs_url)
    assert store.direct_upload("a.bin", 10) is None
    assert store.download_url("a.bin", "a.bin") is None


def test_s3_presigns_for_the_public_endpoint(s3_url: str) -> None:
    """The master reaches S3 on 127.0.0.1; agents and clients by another name (here localhost)."""
    from jupyter_valohai.stores import open_store

    public = s3_url.split("endpoint_url=")[1].split("&")[0].replace("127.0.0.1", "localhost")
    store = open_store(f"{s3_url}&public_endpoint_url={public}")
    target = store.direct_upload("p.txt", 5)
    assert target is not None and target.url.startswith(public + "/")
    assert requests.put(target.url, data=b"hello").status_code == 200
    url = store.download_url("p.txt", "p.txt")
    assert url is not None and url.startswith(public + "/")
    assert requests.get(url).content == b"hello"
    with store.open("p.txt") as fp:  # the master itself still uses endpoint_url
        assert fp.read() == b"hello"
