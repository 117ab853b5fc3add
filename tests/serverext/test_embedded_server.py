"""Acceptance: a real ``jupyter server`` with no valohai configuration runs the embedded default.

Also: the installed package enables the extension by itself (``jupyter_server_config.d``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from jupyter_core.paths import ENV_CONFIG_PATH
from jupyter_server.extension.config import ExtensionConfigManager

from jupyter_valohai.embedded import up_command
from jupyter_valohai.services import free_port

REPO = Path(__file__).parents[2]
HELLO = 'print("hello from the embedded default")\n'


def installed_config_enables_us() -> bool:
    """Whether the config installed with the package (sys.prefix/etc/jupyter) enables us."""
    return bool(ExtensionConfigManager(read_config_path=ENV_CONFIG_PATH).enabled("jupyter_valohai"))


def test_the_shipped_config_enables_the_extension() -> None:
    path = REPO / "jupyter-config" / "jupyter_server_config.d" / "jupyter_valohai.json"
    assert json.loads(path.read_text()) == {
        "ServerApp": {"jpserver_extensions": {"jupyter_valohai": True}}
    }


def test_the_installed_package_enables_the_extension() -> None:
    assert installed_config_enables_us(), (
        f"jupyter_valohai is not enabled by the config in {ENV_CONFIG_PATH}: is the package "
        "installed with its shared-data (etc/jupyter/jupyter_server_config.d)?"
    )


class JupyterServer:
    """A ``jupyter server`` child process in its own HOME, Jupyter dirs and VH_DATA_DIR."""

    def __init__(self, tmp: Path, data_dir: Path | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.token = "serverext-acceptance-token"
        self.root = tmp / "root"
        self.data_dir = data_dir or tmp / "vh-data"
        self.log_path = tmp / "jupyter.log"
        self.url = f"http://127.0.0.1:{self.port}/"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.tmp.mkdir(exist_ok=True)
        self.root.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VH_", "JUPYTER"))}
        env["VH_AGENT_RUNTIME"] = "local"  # the tests' agents never pull images (no registry)
        env.update(
            HOME=str(self.tmp / "home"),
            JUPYTER_CONFIG_DIR=str(self.tmp / "jupyter-config"),
            JUPYTER_DATA_DIR=str(self.tmp / "jupyter-data"),
            JUPYTER_RUNTIME_DIR=str(self.tmp / "jupyter-runtime"),
            VH_DATA_DIR=str(self.data_dir),
            JUPYTER_TOKEN=self.token,
        )
        argv = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        if not installed_config_enables_us():  # until the package's config is installed
            argv.append("--ServerApp.jpserver_extensions=jupyter_valohai=True")
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace")[-6000:]
        embedded = self.data_dir / "logs" / "embedded.log"
        if embedded.exists():
            text += "\n--- embedded.log\n" + embedded.read_text(errors="replace")[-4000:]
        return text

    def stack(self) -> list[psutil.Process]:
        """Every process below the server (the embedded default, if it started one)."""
        assert self.popen is not None
        return list(psutil.Process(self.popen.pid).children(recursive=True))

    def http(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            for child in psutil.Process(self.popen.pid).children(recursive=True):
                child.kill()
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
async def jupyter(tmp_path: Path) -> AsyncIterator[JupyterServer]:
    server = JupyterServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def _ready(server: JupyterServer, http: httpx.AsyncClient) -> dict:
    """Wait until the extension's master is ready; a route meanwhile answers 503 'starting'."""
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        assert server.popen is not None and server.popen.poll() is None, server.log()
        assert asyncio.get_running_loop().time() < deadline, server.log()
        try:
            answer = await http.get("valohai/connection")
        except httpx.TransportError:
            await asyncio.sleep(0.1)
            continue
        assert answer.status_code == 200, answer.text
        state = answer.json()
        if state["state"] == "ready":
            return dict(state)
        assert state["state"] == "starting", (state, server.log())
        projects = await http.get("valohai/projects")
        if projects.status_code == 503:
            assert projects.json()["code"] == "starting" and projects.json()["hint"]
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_jupyter_without_configuration_runs_the_embedded_default(
    jupyter: JupyterServer,
) -> None:
    (jupyter.root / "hello.py").write_text(HELLO)
    headers = {"Authorization": f"token {jupyter.token}"}
    async with httpx.AsyncClient(base_url=jupyter.url, headers=headers, timeout=60) as http:
        state = await _ready(jupyter, http)
        assert state["embedded"] is True and state["source"] == "embedded default"
        assert (jupyter.data_dir / "connection.json").exists()

        created = await http.post("valohai/executions", json={"path": "hello.py"})
        assert created.status_code == 201, created.text
        ref = created.json()["id"]
        lines: list[str] = []
        async with http.stream("GET", f"valohai/executions/{ref}/events", timeout=120) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                lines.append(line)
                if line.startswith("event: end"):
                    break
        text = "\n".join(lines)
        assert "hello from the embedded default" in text, text
        final = await http.get(f"valohai/executions/{ref}")
        assert final.json()["status"] == "complete", jupyter.log()

    assert jupyter.popen is not None
    stack = psutil.Process(jupyter.popen.pid).children(recursive=True)
    names = " ".join(" ".join(p.cmdline()) for p in stack)
    assert "up" in names and "master" in names and "agent" in names, names

    jupyter.popen.send_signal(signal.SIGTERM)
    await asyncio.to_thread(jupyter.popen.wait, 60)
    _, alive = await asyncio.to_thread(psutil.wait_procs, stack, 30)
    left = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left running: {left}\n{jupyter.log()}"
    assert not (jupyter.data_dir / "connection.json").exists()


def _left(procs: list[psutil.Process], timeout: float = 30) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.slow
async def test_a_killed_jupyter_leaves_no_embedded_process(jupyter: JupyterServer) -> None:
    async with jupyter.http() as http:
        await _ready(jupyter, http)
    stack = jupyter.stack()
    assert stack
    assert jupyter.popen is not None
    jupyter.popen.kill()  # no clean-up hook runs: the embedded default notices on its own
    await asyncio.to_thread(jupyter.popen.wait, 10)
    left = await asyncio.to_thread(_left, stack)
    assert not left, f"left running: {left}\n{jupyter.log()}"


@pytest.mark.slow
async def test_two_servers_share_one_embedded_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared-data"
    first = JupyterServer(tmp_path / "first", data_dir)
    second = JupyterServer(tmp_path / "second", data_dir)
    try:
        first.start()
        second.start()  # at once: one starts the stack, the other waits for it and uses it
        async with first.http() as http1, second.http() as http2:
            states = [await _ready(first, http1), await _ready(second, http2)]
            assert states[0]["url"] == states[1]["url"]
            assert sorted(s["embedded"] for s in states) == [False, True], states
            owner, user = (first, second) if states[0]["embedded"] else (second, first)
            stack = owner.stack()
            assert not user.stack()

            # The server that only uses the stack stops; the stack stays for the other.
            assert user.popen is not None
            user.popen.send_signal(signal.SIGTERM)
            await asyncio.to_thread(user.popen.wait, 60)
            answer = await (http1 if owner is first else http2).get("valohai/projects")
            assert answer.status_code == 200, answer.text

        assert owner.popen is not None
        owner.popen.send_signal(signal.SIGTERM)
        await asyncio.to_thread(owner.popen.wait, 60)
        left = await asyncio.to_thread(_left, stack)
        assert not left, f"left running: {left}\n{owner.log()}"
    finally:
        first.kill()
        second.kill()


@pytest.mark.slow
async def test_the_lab_of_jupyter_valohai_up_uses_its_master(tmp_path: Path) -> None:
    """`jupyter valohai up` hands its master to the Lab it starts; the extension starts none."""
    data_dir, lab_port = tmp_path / "vh-data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VH_", "JUPYTER"))}
    env["VH_AGENT_RUNTIME"] = "local"  # the tests' agents never pull images (no registry)
    env.update(
        HOME=str(tmp_path / "home"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
    )
    if not installed_config_enables_us():  # until the package's config is installed
        (tmp_path / "jupyter-config").mkdir()
        (tmp_path / "jupyter-config" / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_valohai": True}}})
        )
    argv = [
        *up_command(str(data_dir), free_port()),
        "--lab",
        "--lab-port",
        str(lab_port),
    ]
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        while not (data_dir / "lab_token").exists() or "is up." not in log_path.read_text():
            assert up.poll() is None, log_path.read_text()
            await asyncio.sleep(0.2)
        lab_token = (data_dir / "lab_token").read_text().strip()
        conn = json.loads((data_dir / "connection.json").read_text())
        headers = {"Authorization": f"token {lab_token}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{lab_port}/", headers=headers, timeout=30
        ) as http:
            state = (await http.get("valohai/connection")).json()
            assert state["state"] == "ready", state
            assert (state["url"], state["embedded"]) == (conn["url"], False)
            assert "VH_CONNECTION_FILE" in state["source"]
            projects = await http.get("valohai/projects")
            assert projects.status_code == 200, projects.text
        stack = psutil.Process(up.pid).children(recursive=True)
        up.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(up.wait, 60) == 0, log_path.read_text()
        left = await asyncio.to_thread(_left, stack)
        assert not left, f"left running: {left}\n{log_path.read_text()}"
    finally:
        if up.poll() is None:
            for child in psutil.Process(up.pid).children(recursive=True):
                child.kill()
            up.kill()
            up.wait(10)
