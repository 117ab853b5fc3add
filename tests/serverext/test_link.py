"""Where the extension finds its master, and what it tells kernels (VH_CONNECTION_FILE)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
from traitlets.config import Config

from jupyter_valohai.services import free_port
from tests.e2e.stack import Stack

from .conftest import EXTENSIONS


@pytest.fixture
def valohai_config() -> dict:
    return {}


@pytest.fixture
def jp_server_config(valohai_config: dict, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The extension with only what each test gives; no master from the environment."""
    for name in ("VH_MASTER_URL", "VH_TOKEN", "VH_CONNECTION_FILE", "VH_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return Config(
        {"ServerApp": {"jpserver_extensions": EXTENSIONS}, "Valohai": dict(valohai_config)}
    )


def _link(serverapp):
    return serverapp.web_app.settings["valohai_link"]


@pytest.mark.parametrize(
    "valohai_config",
    [{"master_url": f"http://127.0.0.1:{free_port()}", "token": "down-master-token-1234"}],
)
async def test_a_master_that_is_down_is_a_503_with_a_hint(api, jp_root_dir: Path) -> None:
    (jp_root_dir / "hello.py").write_text("print('hi')\n")
    for method, parts, body in [
        ("GET", ("projects",), None),
        ("GET", ("executions",), None),
        ("POST", ("executions",), {"path": "hello.py"}),
    ]:
        status, error = await api(method, *parts, body=body)
        assert status == 503, (parts, error)
        assert error["code"] == "unavailable"
        assert "does not answer" in error["message"] and error["hint"]


@pytest.mark.parametrize("valohai_config", [{"embedded": False}])
async def test_nothing_configured_without_embedded(api, jp_serverapp) -> None:
    status, body = await api("GET", "connection")
    assert status == 200
    assert body["state"] == "failed"
    assert body["error"]["code"] == "not_configured" and body["error"]["hint"]
    status, error = await api("GET", "projects")
    assert (status, error["code"]) == (503, "not_configured")


@pytest.fixture
def env_master(master: Stack, jp_server_config: Config, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The master given by VH_MASTER_URL + VH_TOKEN (request it before the server's fixtures)."""
    monkeypatch.setenv("VH_MASTER_URL", master.url)
    monkeypatch.setenv("VH_TOKEN", master.admin_token)
    return master


@pytest.fixture
def config_master(master: Stack, jp_server_config: Config) -> Stack:
    """The master given by c.Valohai (request it before the server's fixtures)."""
    jp_server_config.Valohai.master_url = master.url
    jp_server_config.Valohai.token = master.admin_token
    return master


@pytest.fixture
def running_up(master: Stack, jp_server_config: Config, tmp_path: Path) -> Stack:
    """A data dir whose connection.json answers, as a running `jupyter valohai up` leaves it."""
    data_dir = tmp_path / "vh-data"
    data_dir.mkdir()
    (data_dir / "connection.json").write_text(
        json.dumps({"url": master.url, "token": master.admin_token, "pid": 1})
    )
    jp_server_config.Valohai.data_dir = str(data_dir)
    return master


async def test_environment_gives_the_master(env_master: Stack, api) -> None:
    status, body = await api("GET", "connection")
    assert (body["state"], body["url"], body["source"]) == (
        "ready",
        env_master.url,
        "VH_MASTER_URL and VH_TOKEN",
    )
    status, _ = await api("GET", "projects")
    assert status == 200


async def test_connection_file_for_kernels(config_master: Stack, api, jp_serverapp) -> None:
    _status, body = await api("GET", "connection")
    assert (body["state"], body["source"]) == ("ready", "c.Valohai.master_url")
    path = Path(os.environ["VH_CONNECTION_FILE"])
    assert path.parent == Path(jp_serverapp.runtime_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = config_master.admin_token
    assert json.loads(path.read_text()) == {"url": config_master.url, "token": token}
    await _link(jp_serverapp).stop()
    assert not path.exists()
    assert "VH_CONNECTION_FILE" not in os.environ


async def test_a_running_up_on_the_data_dir_is_reused(running_up: Stack, api, jp_serverapp) -> None:
    link = _link(jp_serverapp)
    while link.state == "starting":
        await asyncio.sleep(0.05)
    status, body = await api("GET", "connection")
    assert (body["state"], body["url"], body["embedded"]) == ("ready", running_up.url, False)
    status, _ = await api("GET", "projects")
    assert status == 200


async def test_a_kernel_started_by_the_server_finds_the_master(
    config_master: Stack, api, jp_serverapp
) -> None:
    """A real IPython kernel of this server resolves the master through VH_CONNECTION_FILE."""
    _, body = await api("GET", "connection")
    assert body["state"] == "ready"
    manager = jp_serverapp.kernel_manager
    kernel_id = await manager.start_kernel(kernel_name="python3")
    try:
        client = manager.get_kernel(kernel_id).blocking_client()
        client.start_channels()
        try:
            await asyncio.to_thread(client.wait_for_ready, 60)
            output: list[str] = []
            code = (
                "from jupyter_valohai.connection import resolve_connection\n"
                "import os\n"
                "c = resolve_connection()\n"
                "print(os.environ['VH_JUPYTER_ROOT_DIR'], os.environ['VH_JUPYTER_BASE_URL'])\n"
                "print(c.url, c.source)"
            )

            def run() -> None:
                client.execute_interactive(
                    code,
                    timeout=60,
                    output_hook=lambda msg: output.append(msg["content"].get("text", "")),
                )

            await asyncio.to_thread(run)
        finally:
            client.stop_channels()
    finally:
        await manager.shutdown_kernel(kernel_id, now=True)
    text = "".join(output)
    assert " " in text, text
    first, second = text.strip().splitlines()
    root, base_url = first.split(" ")
    assert (root, base_url) == (os.path.abspath(jp_serverapp.root_dir), jp_serverapp.base_url)
    url, source = second.split(" ", 1)
    assert url == config_master.url
    assert "VH_CONNECTION_FILE" in source
