"""`jupyter valohai agent` as a process: its token, backoff while the master is down, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from jupyter_valohai.services import free_port


def _agent(tmp_path, *args: str, token: str | None = "s3cret-token-value") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "VH_AGENT_TOKEN"}
    if token is not None:
        env["VH_AGENT_TOKEN"] = token
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "agent",
            "--work-dir",
            str(tmp_path / "w"),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_no_token_is_refused(tmp_path) -> None:
    proc = _agent(tmp_path, "--master-url", "http://127.0.0.1:1", token=None)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "VH_AGENT_TOKEN" in out


def test_token_file_and_down_master_then_sigterm(tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-value\n")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = _agent(
        tmp_path, "--master-url", url, "--name", "a1", "--token-file", str(token_file), token=None
    )
    try:
        deadline = time.monotonic() + 20
        seen = ""
        while "Claim failed" not in seen:
            assert time.monotonic() < deadline, seen
            seen += proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = seen + out
    assert proc.returncode == 0, out
    assert "Agent a1" in out and "stopped" in out
    assert "file-token-value" not in out  # never logged
