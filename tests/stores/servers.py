"""Start the real object stores the tests talk to: seaweedfs (S3), Azurite (Blob), GCS emulator.

Every port comes from ``free_port`` so parallel pytest workers never collide.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import boto3
from botocore.config import Config

from jupyter_valohai.errors import ServiceUnavailable
from jupyter_valohai.services import ManagedProcess, _spawn, free_port, wait_for_port

S3_KEY, S3_SECRET = "vh-test-key", "vh-test-secret"
AZURITE_KEY = (  # Azurite's published, well-known development account key (not a secret)
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_PREFIX = os.path.expanduser("~/.cache/jupyter-valohai/azurite")
# scripts/test installs it: npm install --prefix ~/.cache/jupyter-valohai/azurite azurite@3
# (azurite-blob is looked for in $AZURITE_BLOB, then that prefix, then PATH).


def _bin(name: str, *extra_dirs: str) -> str:
    for d in (os.path.dirname(sys.executable), *extra_dirs):
        path = os.path.join(d, name)
        if os.path.exists(path):
            return path
    found = shutil.which(name)
    if not found:
        raise ServiceUnavailable(f"{name} is not installed.", hint="See tests/stores/servers.py.")
    return found


def start_seaweedfs(data_dir: str) -> ManagedProcess:
    """``weed mini`` with every listening port chosen free; S3 answers with signature checks."""
    os.makedirs(data_dir, exist_ok=True)
    ports = {
        flag: free_port()
        for flag in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "webdav.port",
            "admin.port",
            "admin.port.grpc",
            "debug.port",
            "s3.debug.port",
            "metricsPort",
            "s3.port.iceberg",
            "s3.port.lance",
        )
    }
    argv = [
        _bin("weed"),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-master.telemetry=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    popen = _spawn("seaweedfs", argv, os.path.join(data_dir, "weed.log"), env)
    proc = ManagedProcess("seaweedfs", popen, url=f"http://127.0.0.1:{ports['s3.port']}")
    try:
        wait_for_port("127.0.0.1", ports["s3.port"], 60, popen)
        _wait_s3_ready(proc.url, popen)
    except BaseException:
        proc.stop()
        raise
    return proc


def s3_client(endpoint: str, secret: str = S3_SECRET) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _wait_s3_ready(endpoint: str, popen: object) -> None:
    # The S3 port opens before the filer behind it can store anything: wait for a real bucket.
    client = s3_client(endpoint)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket="vh-ready")  # type: ignore[attr-defined]
            return
        except Exception:
            if time.monotonic() > deadline or popen.poll() is not None:  # type: ignore[attr-defined]
                raise ServiceUnavailable("seaweedfs S3 never became ready.") from None
            time.sleep(0.2)


def start_azurite(data_dir: str) -> ManagedProcess:
    os.makedirs(data_dir, exist_ok=True)
    port = free_port()
    argv = [
        os.environ.get("AZURITE_BLOB")
        or _bin("azurite-blob", os.path.join(AZURITE_PREFIX, "node_modules", ".bin")),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        data_dir,
        "--silent",
        "--skipApiVersionCheck",
    ]
    popen = _spawn("azurite", argv, os.path.join(data_dir, "azurite.log"))
    wait_for_port("127.0.0.1", port, 60, popen)
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    return ManagedProcess("azurite", popen, url=f"http://127.0.0.1:{port}", extra={"conn": conn})


def start_gcs_emulator(data_dir: str) -> ManagedProcess:
    os.makedirs(data_dir, exist_ok=True)
    port = free_port()
    argv = [
        _bin("gcp-storage-emulator"),
        "-d",
        data_dir,
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "-q",
    ]
    popen = _spawn("gcs", argv, os.path.join(data_dir, "gcs.log"))
    wait_for_port("127.0.0.1", port, 60, popen)
    return ManagedProcess("gcs", popen, url=f"http://127.0.0.1:{port}")
