"""``jupyter_valohai.services``: the real nx-27017 and redis-server, started and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pymongo
import pytest
import redis

from jupyter_valohai import services
from jupyter_valohai.errors import ServiceUnavailable


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def test_mongo_data_survives_restart(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "mongo")
    proc = services.start_mongo(data_dir)
    try:
        client: pymongo.MongoClient = pymongo.MongoClient(proc.url, serverSelectionTimeoutMS=5000)
        coll = client["vh"]["things"]
        coll.create_index("name", unique=True)
        coll.insert_one({"name": "kept", "n": 1})
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            coll.insert_one({"name": "kept"})
        client.close()
    finally:
        proc.stop()
    assert not proc.alive()
    assert _refuses(proc.extra["port"])

    again = services.start_mongo(data_dir)
    try:
        client = pymongo.MongoClient(again.url, serverSelectionTimeoutMS=5000)
        doc = client["vh"]["things"].find_one({"name": "kept"})
        assert doc is not None and doc["n"] == 1
        client.close()
    finally:
        again.stop()


def test_redis_starts_and_stops(tmp_path: Path) -> None:
    proc = services.start_redis(str(tmp_path / "redis"))
    try:
        client = redis.Redis.from_url(proc.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.info("server")["redis_version"]
        client.close()
    finally:
        proc.stop()
    assert not proc.alive()
    assert _refuses(proc.extra["port"])


def test_binaries_exist() -> None:
    assert os.access(services.redis_executable(), os.X_OK)
    assert os.path.exists(services.mongo_executable()[0])


def test_wait_for_port_gives_up(tmp_path: Path) -> None:
    port = services.free_port()
    with pytest.raises(ServiceUnavailable, match=str(port)):
        services.wait_for_port("127.0.0.1", port, timeout=0.3)


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    popen = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert popen.stdout is not None and popen.stdout.readline() == b"ready\n"
    proc = services.ManagedProcess("stubborn", popen)
    proc.stop(grace=0.5)
    assert not proc.alive()
    popen.stdout.close()
