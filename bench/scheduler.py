"""The same 3-cell notebook through jupyter-scheduler, the peer users pick instead.

jupyter-scheduler is installed from PyPI into the bench's own environment (``bench/.venv``,
created on the first run and reused; never into the project's environment), then
``jupyter server`` runs with it and the bench drives its REST API: ``POST /scheduler/jobs``,
then ``GET /scheduler/jobs/{id}`` every 100 ms until ``COMPLETED``. The runner divides its p50 by
ours (the notebook benchmark of the same run) for the ratios.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv

import requests

from jupyter_valohai.models import new_token
from jupyter_valohai.services import wait_for_port

from .common import Bench, free_port, main_for, pct, tiny_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
PACKAGES = ["jupyter-scheduler", "ipykernel"]


def ensure_venv() -> str:
    """bench/.venv with jupyter-scheduler; returns its bin directory."""
    bindir = os.path.join(VENV, "bin")
    marker = os.path.join(VENV, ".bench-ready")
    if not os.path.exists(marker):
        if not os.path.exists(os.path.join(bindir, "python")):
            venv.EnvBuilder(with_pip=True).create(VENV)
        subprocess.run(
            [os.path.join(bindir, "python"), "-m", "pip", "install", "-q", *PACKAGES],
            check=True,
        )
        with open(marker, "w") as f:
            f.write("ok\n")
    return bindir


def run(ctx: Bench) -> None:
    runs = 3 if ctx.quick else 7
    bindir = ensure_venv()
    root = os.path.join(ctx.tmp, "root")
    os.makedirs(root)
    with open(os.path.join(root, "tiny.ipynb"), "w") as f:
        json.dump(tiny_notebook(), f)
    port, token = free_port(), new_token()
    ours = ("PYTHON", "VIRTUAL_ENV", "JUPYTER")  # nothing of the project's environment
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PATH=f"{bindir}:{env.get('PATH', '')}",
        JUPYTER_DATA_DIR=os.path.join(ctx.tmp, "data"),
        JUPYTER_RUNTIME_DIR=os.path.join(ctx.tmp, "runtime"),
        HOME=ctx.tmp,
    )
    for d in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        os.makedirs(env[d], exist_ok=True)  # jupyter-scheduler's SQLite database lives there
    with open(os.path.join(ctx.tmp, "server.log"), "wb") as log:
        server = subprocess.Popen(
            [
                os.path.join(bindir, "jupyter"),
                "server",
                "--no-browser",
                "--allow-root",
                f"--port={port}",
                "--ip=127.0.0.1",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={token}",
            ],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ctx.cleanup(lambda: (server.terminate(), server.wait(20)))
    wait_for_port("127.0.0.1", port, 60, server)
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.headers["Authorization"] = f"token {token}"
    deadline = time.monotonic() + 60
    while True:  # the extension loads after the port opens
        resp = http.get(f"{base}/scheduler/runtime_environments", timeout=10)
        if resp.status_code == 200:
            break
        if time.monotonic() > deadline:
            with open(os.path.join(ctx.tmp, "server.log"), errors="replace") as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"jupyter-scheduler did not answer: {resp.status_code}\n{tail}")
        time.sleep(0.2)
    names = [e["name"] for e in resp.json()]
    kernel = "python3" if "python3" in names else names[0]
    totals, starts = [], []
    for i in range(runs + 1):
        start = time.time()
        resp = http.post(
            f"{base}/scheduler/jobs",
            json={
                "name": f"bench-{i}",
                "input_uri": "tiny.ipynb",
                "runtime_environment_name": kernel,
                "output_formats": ["ipynb"],
                "parameters": {"x": "2"},
            },
            timeout=60,
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"POST /scheduler/jobs: {resp.status_code} {resp.text[:300]}")
        job_id = resp.json()["job_id"]
        started = None
        while True:
            job = http.get(f"{base}/scheduler/jobs/{job_id}", timeout=30).json()
            # jupyter-scheduler 2.x reports a new job STOPPED until its process starts.
            if started is None and job["status"] in ("IN_PROGRESS", "COMPLETED"):
                started = time.time() - start
            if job["status"] in ("COMPLETED", "FAILED") or (started and job["status"] == "STOPPED"):
                break
            if time.time() - start > 300:
                raise RuntimeError("the jupyter-scheduler job did not finish in 300 s")
            time.sleep(0.1)
        if job["status"] != "COMPLETED":
            message = job.get("status_message")
            raise RuntimeError(f"jupyter-scheduler job {job['status']}: {message}")
        if i == 0:
            continue  # warm-up
        totals.append(time.time() - start)
        starts.append(started or 0.0)
    ctx.figure("jupyter-scheduler: submit -> complete p50", pct(totals, 0.5) * 1000, "ms")
    ctx.figure("jupyter-scheduler: submit -> job running p50", pct(starts, 0.5) * 1000, "ms")
    code = "import jupyter_scheduler; print(jupyter_scheduler.__version__)"
    version = subprocess.run(
        [os.path.join(bindir, "python"), "-c", code],
        capture_output=True,
        text=True,
    ).stdout.strip()
    ctx.note(f"jupyter-scheduler {version} (bench/.venv), {runs} runs after one warm-up, p50")


if __name__ == "__main__":
    if sys.prefix == VENV:
        raise SystemExit("run with the project's Python, not bench/.venv's")
    main_for("scheduler", run)
