"""``jupyter valohai up``: tokens, the start-up failure path, and (once master and agent exist)
the whole embedded stack end to end with ``--no-lab``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from jupyter_valohai.embedded import UpApp, load_or_create_token
from jupyter_valohai.services import free_port


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "admin_token"
    token = load_or_create_token(str(path))
    assert len(token) >= 32
    assert _mode(path) == 0o600
    assert load_or_create_token(str(path)) == token


def test_traits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VH_DATA_DIR", str(tmp_path))
    app = UpApp()
    app.parse_command_line(["--no-lab", "--port", "9999", "--ip", "0.0.0.0", "--agents", "2"])
    assert app.data_dir == str(tmp_path)
    assert (app.lab, app.port, app.agents) == (False, 9999, 2)
    assert app.master_url == "http://127.0.0.1:9999"
    assert UpApp().lab is True


def _up(data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "up",
            "--no-lab",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _all_gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_busy_port_stops_what_was_started(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = _up(tmp_path, port)
        seen: list[psutil.Process] = []
        while up.poll() is None:
            seen += [p for p in _descendants(up.pid) if p not in seen]
            time.sleep(0.05)
        out = up.stdout.read() if up.stdout else ""
    assert up.returncode == 1, out
    assert "already in use" in out
    assert not _all_gone(seen)
    assert not (tmp_path / "connection.json").exists()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path, int]]:
    port = free_port()
    up = _up(tmp_path, port)
    conn = tmp_path / "connection.json"
    deadline = time.monotonic() + 90
    while not conn.exists():
        if up.poll() is not None:
            out = up.stdout.read() if up.stdout else ""
            logs = "".join(
                f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                for p in sorted((tmp_path / "logs").glob("*.log"))
                if p.is_file()
            )
            pytest.fail(f"`jupyter valohai up` exited {up.returncode}:\n{out}{logs}")
        assert time.monotonic() < deadline, "connection.json did not appear within 90 s"
        time.sleep(0.2)
    yield up, tmp_path, port
    if up.poll() is None:
        children = _descendants(up.pid)
        up.kill()
        for child in children:
            child.kill()
    if up.stdout:
        up.stdout.close()


@pytest.mark.slow
def test_up_end_to_end(stack: tuple[subprocess.Popen, Path, int]) -> None:
    up, data_dir, port = stack
    conn_path = data_dir / "connection.json"
    assert _mode(conn_path) == 0o600
    conn = json.loads(conn_path.read_text())
    assert conn["url"] == f"http://127.0.0.1:{port}"
    assert conn["pid"] == up.pid
    for name in ("admin_token", "agent_token"):
        assert _mode(data_dir / name) == 0o600

    me = requests.get(
        f"{conn['url']}/api/v0/users/me/",
        headers={"Authorization": f"Token {conn['token']}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text
    anonymous = requests.get(f"{conn['url']}/api/v0/users/me/", timeout=10)
    assert anonymous.status_code == 401

    children = _descendants(up.pid)
    names = " ".join(" ".join(p.cmdline()) for p in children)
    assert "master" in names and "agent" in names and "nx" in names and "redis" in names
    for proc in children:  # secrets travel by environment, never argv
        assert conn["token"] not in " ".join(proc.cmdline())

    _run_readme_curl_example(conn_path, data_dir / "curl-demo")

    up.send_signal(signal.SIGINT)
    out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out
    assert conn["token"] not in out
    assert not _all_gone(children), "children left running after SIGINT"
    assert not conn_path.exists()
    assert (data_dir / "logs" / "master.log").exists()


@pytest.mark.slow
def test_up_reports_a_child_that_dies(stack: tuple[subprocess.Popen, Path, int]) -> None:
    up, data_dir, _ = stack
    children = _descendants(up.pid)
    agent = next(p for p in children if "agent" in p.cmdline())
    agent.kill()
    out, _ = up.communicate(timeout=60)
    assert up.returncode == 1
    assert "agent-1" in out and str(data_dir / "logs" / "agent-1.log") in out
    assert not _all_gone(children)


def test_sigterm_while_starting_stops_everything(tmp_path: Path) -> None:
    up = _up(tmp_path, free_port())
    # Wait until the MongoDB-wire server is up, then stop the launcher mid start-up.
    deadline = time.monotonic() + 60
    while not any("nx" in " ".join(p.cmdline()) for p in _descendants(up.pid)):
        assert up.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    seen = _descendants(up.pid)
    up.send_signal(signal.SIGTERM)
    out, _ = up.communicate(timeout=60)
    assert up.returncode in (0, 1), out
    assert not _all_gone(seen)
    os.stat(tmp_path / "logs")


def _run_readme_curl_example(conn_path: Path, workdir: Path) -> None:
    """Run README's curl example as written (with our connection.json); the execution completes."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Submit an execution with curl", 1)[1]
    script = section.split("```bash\n", 1)[1].split("```", 1)[0]
    script = re.sub(r"^CONN=.*$", f"CONN={conn_path}", script, count=1, flags=re.M)
    workdir.mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    execution = json.loads(done.stdout.strip().splitlines()[-1])
    conn = json.loads(conn_path.read_text())
    headers = {"Authorization": f"Token {conn['token']}"}
    url = f"{conn['url']}/api/v0/executions/{execution['id']}/"
    deadline = time.monotonic() + 60
    while (status := requests.get(url, headers=headers, timeout=10).json()["status"]) not in (
        "complete",
        "error",
        "stopped",
        "crashed",
    ):
        assert time.monotonic() < deadline, f"execution still {status} after 60 s"
        time.sleep(0.2)
    assert status == "complete"
    events = requests.get(url + "events/", headers=headers, timeout=10).json()["events"]
    assert any("hello you" in e["message"] for e in events), events
