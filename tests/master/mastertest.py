"""Helpers for master tests: an in-process master, an HTTP client for it, code tarballs.

``master_config`` builds the :class:`~master.config.MasterConfig` (real nx-27017 and redis-server
from the session fixtures, a fresh database, a ``file://`` store in tmp_path, short leases);
``master`` starts :func:`master.server.create_master` and serves it with Tornado's HTTP server,
yielding a :class:`MasterClient` (``.url``, ``.api()``, ``.agent()``, ``.master``...).
Other test packages can use them with ``pytest_plugins = ["tests.master.conftest"]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import io
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from jupyter_valohai.models import new_token
from jupyter_valohai.services import free_port
from master.config import MasterConfig
from master.server import Master, create_master

VALOHAI_YAML = """\
- step:
    name: train
    image: python:3.11
    command:
      - python train.py {parameters}
    parameters:
      - name: epochs
        type: integer
        default: 2
      - name: lr
        type: float
        default: 0.1
    inputs:
      - name: data
        optional: true
- step:
    name: nb
    image: python:3.11
    source-path: notebooks/train.ipynb
    command:
      - pip list
"""


def make_tarball(files: dict[str, str | bytes]) -> bytes:
    """Return a gzipped tarball holding ``files`` (name -> content)."""
    buf = io.BytesIO()
    # mtime=0: the same files give the same bytes (and commit), whenever they are packed.
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class MasterClient:
    """A running in-process master and an HTTP client for it (requests, off the event loop)."""

    master: Master
    url: str
    admin_token: str
    agent_token: str

    async def request(
        self, method: str, path: str, token: str | None, **kw: Any
    ) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers.setdefault("Authorization", f"Token {token}")
        headers.setdefault("Accept", "application/json")
        url = path if path.startswith("http") else self.url + path
        return await asyncio.to_thread(
            requests.request, method, url, headers=headers, timeout=60, **kw
        )

    async def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        token = kw.pop("token", self.admin_token)
        return await self.request(method, path, token, **kw)

    async def agent(self, method: str, path: str, **kw: Any) -> requests.Response:
        token = kw.pop("token", self.agent_token)
        return await self.request(method, path, token, **kw)

    async def create_project(self, name: str = "demo") -> dict[str, Any]:
        resp = await self.api("POST", "/api/v0/projects/", data={"name": name})
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def import_package(
        self,
        project_id: str,
        files: dict[str, str | bytes] | None = None,
    ) -> requests.Response:
        data = make_tarball(files or {"valohai.yaml": VALOHAI_YAML, "train.py": "print(1)\n"})
        return await self.api(
            "POST",
            f"/api/v0/projects/{project_id}/import-package/",
            files={"data": ("data.tgz", data, "application/gzip")},
            data={"description": "test", "yaml_path": "valohai.yaml"},
        )

    async def setup_commit(self, name: str = "demo") -> tuple[dict[str, Any], dict[str, Any]]:
        project = await self.create_project(name)
        resp = await self.import_package(project["id"])
        assert resp.status_code == 201, resp.text
        return project, resp.json()

    async def submit(
        self, project_id: str, commit: str, step: str = "train", **body: Any
    ) -> dict[str, Any]:
        resp = await self.api(
            "POST",
            "/api/v0/executions/",
            json={"project": project_id, "commit": commit, "step": step, **body},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def claim(self, wait: float = 0) -> requests.Response:
        return await self.agent(
            "POST", "/api/agent/claim", json={"worker": {"id": "w1", "name": "w1"}, "wait": wait}
        )

    async def execution(self, execution_id: str) -> dict[str, Any]:
        resp = await self.api("GET", f"/api/v0/executions/{execution_id}/")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]


async def start_master(config: MasterConfig) -> tuple[Master, int]:
    """Create, start and serve a master on a free port; return it and the port."""
    master = await create_master(config)
    await master.start()
    port = free_port()
    master.listen(port, "127.0.0.1")
    return master, port


# --- fixtures (imported by tests/master/conftest.py and tests/security/conftest.py) ---


@pytest.fixture
def master_config(
    tmp_path: Any, mongo_url: str, mongo_db_name: str, redis_url: str
) -> MasterConfig:
    return MasterConfig(
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        data_dir=str(tmp_path / "master"),
        store_url="file://" + str(tmp_path / "artifacts"),
        lease_seconds=10,
        heartbeat_seconds=1,
        max_attempts=2,
        reaper_interval=0.2,
        admin_token=new_token(),
        agent_token=new_token(),
    )


@asynccontextmanager
async def serving(config: MasterConfig) -> AsyncIterator[MasterClient]:
    """A master started with ``config`` on a free port, as a client; stopped on leaving."""
    running, port = await start_master(config)
    try:
        yield MasterClient(
            running, f"http://127.0.0.1:{port}", config.admin_token, config.agent_token
        )
    finally:
        await running.stop()


@pytest.fixture
async def master(master_config: MasterConfig) -> AsyncIterator[MasterClient]:
    """A started master serving on a free port; stopped after the test."""
    async with serving(master_config) as client:
        yield client


@pytest.fixture
async def master_pair(
    master_config: MasterConfig,
) -> AsyncIterator[tuple[MasterClient, MasterClient]]:
    """Two masters on one database and one Redis, each with its own cache (TTL: an hour)."""
    config = dataclasses.replace(master_config, cache_seconds=3600)
    async with serving(config) as a, serving(config) as b:
        yield a, b
