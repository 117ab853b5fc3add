"""The master's side of direct uploads on a real S3 (seaweedfs): prepare, register, download."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests

from jupyter_valohai.models import new_token
from master.config import MasterConfig
from tests.master.mastertest import MasterClient, serving

BIG = 12 * 1000 * 1000  # above the tests' 5 MiB multipart threshold: three parts


@pytest.fixture
async def master(
    tmp_path: Any, mongo_url: str, mongo_db_name: str, redis_url: str, s3_url: str
) -> AsyncIterator[MasterClient]:
    config = MasterConfig(
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        data_dir=str(tmp_path / "master"),
        store_url=s3_url,
        admin_token=new_token(),
        agent_token=new_token(),
    )
    async with serving(config) as client:
        yield client


async def claim(master: MasterClient) -> tuple[str, int]:
    project, commit = await master.setup_commit()
    await master.submit(project["id"], commit["identifier"])
    spec = (await master.claim()).json()
    return spec["id"], spec["attempt"]


async def prepare(master: MasterClient, eid: str, attempt: int, **sizes: int) -> dict[str, Any]:
    files = [{"name": n.replace("_", "."), "size": s} for n, s in sizes.items()]
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/outputs/prepare",
        json={"attempt": attempt, "files": files},
    )
    assert resp.status_code == 200, resp.text
    return {u["name"]: u for u in resp.json()["uploads"]}


async def register(master: MasterClient, eid: str, attempt: int, **item: Any) -> requests.Response:
    return await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/outputs",
        json={"attempt": attempt, "outputs": [item]},
    )


def put_parts(upload: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    done = []
    for part in upload["multipart"]["parts"]:
        chunk = data[part["offset"] : part["offset"] + part["size"]]
        resp = requests.put(part["url"], data=chunk, headers=part["headers"])
        assert resp.status_code == 200, resp.text
        done.append({"number": part["number"], "etag": resp.headers["ETag"]})
    return done


async def test_direct_single_and_multipart_uploads_then_signed_download(
    master: MasterClient,
) -> None:
    eid, attempt = await claim(master)
    small, big = os.urandom(1024), os.urandom(BIG)
    uploads = await prepare(master, eid, attempt, small_txt=len(small), big_bin=len(big))
    assert uploads["small.txt"]["url"].startswith("http://127.0.0.1:")
    assert "X-Amz-Signature=" in uploads["small.txt"]["url"]
    assert "/api/agent/" not in uploads["small.txt"]["url"]
    assert len(uploads["big.bin"]["multipart"]["parts"]) == 3

    assert requests.put(uploads["small.txt"]["url"], data=small).status_code == 200
    parts = put_parts(uploads["big.bin"], big)
    for name, data, extra in (("small.txt", small, {}), ("big.bin", big, {"parts": parts})):
        sha = hashlib.sha256(data).hexdigest()
        reg = await register(master, eid, attempt, name=name, size=len(data), sha256=sha, **extra)
        assert reg.status_code == 201, reg.text
        again = await register(master, eid, attempt, name=name, size=len(data), sha256=sha, **extra)
        assert again.json() == reg.json()  # registered twice: one datum
        datum_id = reg.json()["datums"][0]["id"]
        datum = (await master.api("GET", f"/api/v0/data/{datum_id}/")).json()
        assert (datum["size"], datum["sha256"]) == (len(data), sha)
        path = f"/api/v0/data/{datum_id}/download/"
        resp = await master.api("GET", path, allow_redirects=False)
        assert resp.status_code == 302
        assert "X-Amz-Signature=" in resp.headers["Location"]
        assert requests.get(resp.headers["Location"]).content == data


async def test_registration_refuses_what_the_store_does_not_hold(master: MasterClient) -> None:
    eid, attempt = await claim(master)
    data = os.urandom(BIG)
    sha = hashlib.sha256(data).hexdigest()
    uploads = await prepare(master, eid, attempt, a_txt=100, big_bin=BIG)

    # Nothing uploaded yet.
    resp = await register(master, eid, attempt, name="a.txt", size=100, sha256="0" * 64)
    assert resp.status_code == 400 and "was not uploaded" in resp.json()["message"]
    # Fewer bytes than announced.
    requests.put(uploads["a.txt"]["url"], data=b"x" * 50)
    resp = await register(master, eid, attempt, name="a.txt", size=100, sha256="0" * 64)
    assert resp.status_code == 400 and "50 bytes" in resp.json()["message"]
    # No SHA-256: the store does not hash, so the agent must say.
    resp = await register(master, eid, attempt, name="a.txt", size=50)
    assert resp.status_code == 400 and "sha256" in resp.json()["message"]
    # Parts uploaded but not reported; then one part missing.
    parts = put_parts(uploads["big.bin"], data)
    resp = await register(master, eid, attempt, name="big.bin", size=BIG, sha256=sha)
    assert resp.status_code == 400 and "parts" in resp.json()["message"]
    resp = await register(
        master, eid, attempt, name="big.bin", size=BIG, sha256=sha, parts=parts[:2]
    )
    assert resp.status_code == 400, resp.text
    resp = await register(master, eid, attempt, name="big.bin", size=BIG, sha256=sha, parts=parts)
    assert resp.status_code == 201, resp.text


async def test_a_size_less_file_streams_through_the_master(master: MasterClient) -> None:
    eid, attempt = await claim(master)
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/outputs/prepare",
        json={"attempt": attempt, "files": [{"name": "n.txt"}]},
    )
    url = resp.json()["uploads"][0]["url"]
    assert url.startswith("/api/agent/uploads/")
    put = await master.agent("PUT", url, data=b"hello")
    assert put.status_code == 201
    reg = await register(master, eid, attempt, name="n.txt", size=5)
    assert reg.status_code == 201, reg.text
    datum_id = reg.json()["datums"][0]["id"]
    resp = await master.api("GET", f"/api/v0/data/{datum_id}/download/")
    assert resp.content == b"hello"


async def test_preparing_again_abandons_the_earlier_multipart_upload(master: MasterClient) -> None:
    eid, attempt = await claim(master)
    first = (await prepare(master, eid, attempt, big_bin=BIG))["big.bin"]
    second = (await prepare(master, eid, attempt, big_bin=BIG))["big.bin"]
    part = first["multipart"]["parts"][0]
    assert requests.put(part["url"], data=b"x" * part["size"]).status_code == 404
    part = second["multipart"]["parts"][0]
    assert requests.put(part["url"], data=b"x" * part["size"]).status_code == 200
