"""A real master on each object store and a real agent: outputs land in the store (S3 and Azure:
uploaded by the agent straight to signed URLs, in parts when large) and download byte-equal."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from urllib.parse import urlparse

import pymongo
import pytest

from jupyter_valohai.errors import ServiceUnavailable
from jupyter_valohai.stores import open_store
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

YAML = """\
- step:
    name: write
    image: python:3.11
    command:
      - python write.py
"""

# 1 KB and 12 MB of seeded random bytes: the large one crosses the tests' 5 MiB multipart threshold.
WRITE = """\
import os, random
out = os.environ["VH_OUTPUTS_DIR"]
os.makedirs(os.path.join(out, "sub"), exist_ok=True)
for name, size in (("small.bin", 1024), ("sub/big.bin", 12_000_000)):
    with open(os.path.join(out, name), "wb") as f:
        f.write(random.Random(name).randbytes(size))
"""


def expected(name: str, size: int) -> bytes:
    import random

    return random.Random(name).randbytes(size)


@pytest.fixture(params=["s3_url", "azure_url", "gcs_url"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def store_stack(
    tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str, store_url: str
) -> Iterator[Stack]:
    s = Stack(
        str(tmp_path / "stack"),
        mongo_url,
        mongo_db_name,
        redis_url,
        master_args=["--store-url", store_url],
    )
    try:
        s.start_master()
        s.start_agent()
        yield s
    finally:
        s.stop()


def test_outputs_land_in_the_store_and_download_byte_equal(
    store_stack: Stack, store_url: str
) -> None:
    stack = store_stack
    project = stack.create_project()
    commit = stack.import_package(project["id"], {"valohai.yaml": YAML, "write.py": WRITE})
    execution = stack.submit(project["id"], commit["identifier"], "write")
    final = stack.wait_status(execution["id"], timeout=120)
    assert final["status"] == "complete", stack.explain(execution["id"])

    data = stack.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]}).json()
    by_name = {d["name"]: d for d in data["results"]}
    assert set(by_name) == {"small.bin", "sub/big.bin"}, by_name
    store = open_store(store_url)
    scheme = urlparse(store_url).scheme
    for name, size in (("small.bin", 1024), ("sub/big.bin", 12_000_000)):
        want = expected(name, size)
        datum = by_name[name]
        assert datum["size"] == size
        assert datum["sha256"] == hashlib.sha256(want).hexdigest()
        assert datum["uri"].startswith(store_url.split("?")[0] + "/outputs/")
        # The bytes are in the store itself, under the store's prefix.
        key = f"outputs/{execution['id']}/{final['attempt']}/{name}"
        with store.open(key) as fp:
            assert fp.read() == want
        path = f"/api/v0/data/{datum['id']}/download/"
        first = stack.api("GET", path, allow_redirects=False)
        if scheme in ("s3", "azure"):  # a signed URL on the store, not the master
            assert first.status_code == 302
            assert urlparse(first.headers["Location"]).port != urlparse(stack.url).port
        else:  # gs://: the emulator cannot sign, the master streams
            assert first.status_code == 200
        got = stack.api("GET", path)
        assert got.status_code == 200
        assert got.content == want
    # S3 and Azure: the agent sent the bytes straight to the store; gs://: through the master.
    with pymongo.MongoClient(stack.mongo_url) as client:
        uploads = client[stack.mongo_db]["uploads"].find({"execution": execution["id"]})
        via = {u["name"]: u["via"] for u in uploads}
    direct = "store" if scheme in ("s3", "azure") else "master"
    assert via == {"small.bin": direct, "sub/big.bin": direct}
    logs = stack.logs()
    for secret in (os.environ.get("AWS_SECRET_ACCESS_KEY"), "AccountKey="):
        assert not secret or secret not in logs


def test_master_refuses_to_start_on_a_missing_bucket(
    tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str, s3_url: str
) -> None:
    bucket = s3_url.split("://", 1)[1].split("/", 1)[0]
    url = s3_url.replace(bucket, "vh-no-such-bucket", 1)
    s = Stack(str(tmp_path), mongo_url, mongo_db_name, redis_url, master_args=["--store-url", url])
    try:
        with pytest.raises(ServiceUnavailable):
            s.start_master()
    finally:
        s.stop()
    logs = s.logs()
    assert "S3 bucket 'vh-no-such-bucket'" in logs and "does not exist" in logs
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in logs
