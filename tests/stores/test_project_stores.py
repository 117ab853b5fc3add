"""Per-project stores: a project names one of the master's configured stores for its outputs."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests

from jupyter_valohai.models import new_token
from jupyter_valohai.stores import open_store
from master.config import MasterConfig
from tests.master.mastertest import MasterClient, serving

from .test_master_direct import prepare, register


@pytest.fixture
async def master(
    tmp_path: Any,
    mongo_url: str,
    mongo_db_name: str,
    redis_url: str,
    s3_url: str,
    azure_url: str,
) -> AsyncIterator[MasterClient]:
    config = MasterConfig(
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        data_dir=str(tmp_path / "master"),
        store_url="file://" + str(tmp_path / "artifacts"),
        named_stores={"team-a": s3_url, "blob": azure_url},
        admin_token=new_token(),
        agent_token=new_token(),
    )
    async with serving(config) as client:
        yield client


async def run_one_output(master: MasterClient, store: str | None, data: bytes) -> dict[str, Any]:
    """Create a project (on ``store``), run an execution that outputs ``data``; its datum."""
    body = {"name": f"p-{store}"} | ({"store": store} if store else {})
    project = (await master.api("POST", "/api/v0/projects/", json=body)).json()
    assert project["store"] == store
    resp = await master.import_package(project["id"])
    await master.submit(project["id"], resp.json()["identifier"])
    spec = (await master.claim()).json()
    eid, attempt = spec["id"], spec["attempt"]
    upload = (await prepare(master, eid, attempt, out_bin=len(data)))["out.bin"]
    if upload["url"].startswith("/api/agent/"):  # the file store: through the master
        assert (await master.agent("PUT", upload["url"], data=data)).status_code == 201
    else:
        resp = requests.put(upload["url"], data=data, headers=upload["headers"])
        assert resp.status_code == 201 if store == "blob" else 200, resp.text
    sha = hashlib.sha256(data).hexdigest()
    reg = await register(master, eid, attempt, name="out.bin", size=len(data), sha256=sha)
    assert reg.status_code == 201, reg.text
    datum_id = reg.json()["datums"][0]["id"]
    datum = (await master.api("GET", f"/api/v0/data/{datum_id}/")).json()
    got = await master.api("GET", f"/api/v0/data/{datum_id}/download/")
    assert got.content == data
    return {**datum, "execution": eid, "attempt": attempt}


async def test_each_project_writes_to_its_named_store(
    master: MasterClient, s3_url: str, azure_url: str
) -> None:
    on_s3 = await run_one_output(master, "team-a", b"to s3")
    on_blob = await run_one_output(master, "blob", b"to azure")
    default = await run_one_output(master, None, b"to the default")
    assert on_s3["uri"].startswith(s3_url.split("?")[0] + "/outputs/")
    assert on_blob["uri"].startswith(azure_url.split("?")[0] + "/outputs/")
    assert default["uri"].startswith("file://")
    for url, datum, data in ((s3_url, on_s3, b"to s3"), (azure_url, on_blob, b"to azure")):
        key = f"outputs/{datum['execution']}/{datum['attempt']}/out.bin"
        with open_store(url).open(key) as fp:
            assert fp.read() == data


async def test_a_project_cannot_name_an_unconfigured_store(master: MasterClient) -> None:
    for store in ("elsewhere", "s3://attacker/bucket", 3):
        resp = await master.api("POST", "/api/v0/projects/", json={"name": "x", "store": store})
        assert resp.status_code == 400, resp.text
        assert "blob, team-a" in resp.json()["hint"]


async def test_agents_read_a_datum_from_its_projects_store(master: MasterClient) -> None:
    """Inputs: the agent's datum download reads the bytes from the store the datum is in."""
    datum = await run_one_output(master, "team-a", b"an input from s3")
    resp = await master.agent(
        "GET",
        f"/api/agent/data/{datum['id']}/download",
        params={"execution": datum["execution"], "attempt": datum["attempt"]},
    )
    assert resp.status_code == 200
    assert resp.content == b"an input from s3"
