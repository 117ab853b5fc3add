"""Inputs from a master whose store is S3 (seaweedfs): an `s3://` input naming a datum, and a
repeated datum input that transfers 0 bytes (a proxy in front of the master counts them)."""

from __future__ import annotations

import copy

import pytest

from tests.e2e.stack import Stack
from tests.stores.conftest import s3_url, seaweedfs  # noqa: F401  (fixtures)

from .conftest import CountingProxy
from .test_e2e import FILES, output_of, run

pytestmark = pytest.mark.slow


def test_s3_datum_inputs_and_the_cache(
    tmp_path,
    mongo_url: str,
    mongo_db_name: str,
    redis_url: str,
    s3_url: str,  # noqa: F811
) -> None:
    s = Stack(
        str(tmp_path / "s3"),
        mongo_url,
        mongo_db_name,
        redis_url,
        master_args=["--store-url", s3_url],
    )
    proxy: CountingProxy | None = None
    try:
        s.start_master()
        proxy = CountingProxy(s.url).start()
        via_proxy = copy.copy(s)  # shares the agents list: s.stop() ends the agent too
        via_proxy.port = int(proxy.url.rsplit(":", 1)[1])
        via_proxy.start_agent()
        project = s.create_project()["id"]
        commit = s.import_package(project, FILES)["identifier"]
        producer = run(s, project, commit, "produce", "complete")
        datums = s.api("GET", "/api/v0/data/", params={"output_execution": producer["id"]})
        (model,) = [d for d in datums.json()["results"] if d["name"] == "model.bin"]
        assert model["uri"].startswith("s3://")

        first = run(s, project, commit, "read", "complete", inputs={"data": [model["uri"]]})
        assert f"got data/model.bin {model['sha256']}" in output_of(s, first["id"])
        # The master read it from seaweedfs and sent it once.
        assert (proxy.datum_requests, proxy.datum_bytes) == (1, 9000)

        inputs = {"data": [f"datum://{model['id']}"]}
        second = run(s, project, commit, "read", "complete", inputs=inputs)
        assert f"got data/model.bin {model['sha256']}" in output_of(s, second["id"])
        assert (proxy.datum_requests, proxy.datum_bytes) == (1, 9000)  # 0 bytes: the cache
    finally:
        s.stop()
        if proxy is not None:
            proxy.stop()
