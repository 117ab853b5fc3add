"""Execution loop figures, from one run of a fresh embedded stack (``jupyter valohai up --no-lab``).

Prints:
  * submit -> started latency (p50, p99) of N trivial executions on the local runtime;
  * a small notebook step's total time on the platform (submit -> complete, executed notebook among
    the outputs) divided by bare ``python -m papermill`` on the same notebook.

Usage: ``python bench/bench_execution_loop.py [--n 30]`` (needs the master and agent installed).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import requests

VALOHAI_YAML = """
- step:
    name: trivial
    image: python:3.11
    command: echo hi
- step:
    name: notebook
    image: python:3.11
    command: echo notebook
    source-path: tiny.ipynb
    parameters:
      - name: x
        type: integer
        default: 1
"""


def _notebook() -> dict:
    def cell(src: str, tags: list[str] | None = None) -> dict:
        return {
            "cell_type": "code",
            "execution_count": None,
            "outputs": [],
            "metadata": {"tags": tags or []},
            "source": src,
        }

    return {
        "cells": [cell("x = 1", ["parameters"]), cell("print(x * 2)")],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _package() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("valohai.yaml", VALOHAI_YAML), ("tiny.ipynb", json.dumps(_notebook()))):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """A fresh embedded stack in a temporary data dir."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = Path(data_dir)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_valohai.app",
                "up",
                "--no-lab",
                "--port",
                str(_free_port()),
                "--data-dir",
                data_dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        conn = self.data_dir / "connection.json"
        deadline = time.monotonic() + 120
        while not conn.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the stack did not start; see {self.data_dir / 'logs'}")
            time.sleep(0.1)
        info = json.loads(conn.read_text())
        self.url = info["url"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {info['token']}"

    def api(self, method: str, path: str, **kw: object) -> dict:
        resp = self.http.request(method, f"{self.url}/api/v0/{path}", timeout=30, **kw)
        if resp.status_code >= 400:
            raise SystemExit(f"{method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp.json()

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _wait(stack: Stack, exec_id: str, until: set[str], poll: float = 0.01) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        doc = stack.api("GET", f"executions/{exec_id}/")
        if doc["status"] in until:
            return doc
        if doc["status"] in {"error", "crashed", "stopped"}:
            raise SystemExit(f"execution {exec_id} ended {doc['status']}")
        time.sleep(poll)
    raise SystemExit(f"execution {exec_id} did not reach {until} in 300 s")


def _outputs(stack: Stack, exec_id: str) -> list[str]:
    page = stack.api("GET", "data/", params={"output_execution": exec_id, "limit": 1000})
    return [d["name"] for d in page.get("results", [])]


def _seconds(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="trivial executions to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vh-bench-") as tmp:
        t0 = time.perf_counter()
        stack = Stack(os.path.join(tmp, "data"))
        print(f"stack up in {time.perf_counter() - t0:.1f} s at {stack.url}")
        try:
            project = stack.api("POST", "projects/", json={"name": "bench"})
            commit = stack.api(
                "POST",
                f"projects/{project['id']}/import-package/",
                files={"data": ("data.tgz", _package(), "application/gzip")},
            )
            body = {"project": project["id"], "commit": commit["identifier"]}

            latencies: list[float] = []
            server: list[float] = []
            for _ in range(args.n):
                start = time.perf_counter()
                ex = stack.api("POST", "executions/", json={**body, "step": "trivial"})
                _wait(stack, ex["id"], {"started", "complete"})
                latencies.append(time.perf_counter() - start)
                done = _wait(stack, ex["id"], {"complete"})
                # The master's own clock: submit (ctime) -> claimed (started_at), no polling error.
                server.append(_seconds(done["started_at"]) - _seconds(done["ctime"]))

            start = time.perf_counter()
            ex = stack.api(
                "POST", "executions/", json={**body, "step": "notebook", "parameters": {"x": 2}}
            )
            _wait(stack, ex["id"], {"complete"}, poll=0.05)
            outputs = _outputs(stack, ex["id"])
            platform = time.perf_counter() - start
            if "tiny.ipynb" not in outputs:
                raise SystemExit(f"the executed notebook is not among the outputs: {outputs}")
        finally:
            stack.close()

        nb = Path(tmp) / "tiny.ipynb"
        nb.write_text(json.dumps(_notebook()))
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "papermill",
                "--no-progress-bar",
                str(nb),
                str(Path(tmp) / "out.ipynb"),
                "-p",
                "x",
                "2",
            ],
            check=True,
            capture_output=True,
        )
        bare = time.perf_counter() - start

    ms = [v * 1000 for v in latencies]
    print(
        f"submit -> started, local runtime, n={len(ms)}: "
        f"p50 {_pct(ms, 0.5):.0f} ms, p99 {_pct(ms, 0.99):.0f} ms, "
        f"mean {statistics.mean(ms):.0f} ms"
    )
    sv = [v * 1000 for v in server]
    print(
        f"  same, by the master's timestamps (ctime -> started_at): "
        f"p50 {_pct(sv, 0.5):.0f} ms, p99 {_pct(sv, 0.99):.0f} ms"
    )
    print(f"notebook on the platform (submit -> complete + output listed): {platform:.2f} s")
    print(f"bare `python -m papermill` on the same notebook:              {bare:.2f} s")
    print(f"platform / bare papermill: {platform / bare:.2f}x")


if __name__ == "__main__":
    main()
