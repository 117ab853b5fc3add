"""A real master and real agents as child processes, started through the `jupyter valohai` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from jupyter_valohai.models import TERMINAL_STATUSES, new_token
from jupyter_valohai.services import free_port, wait_for_port


@dataclass
class Stack:
    """One master and its agents; the test talks to it over HTTP like any client would."""

    root: str
    mongo_url: str
    mongo_db: str
    redis_url: str
    master_args: list[str] = field(default_factory=list)
    # The tests' own HTTP servers listen on loopback, which agents refuse for inputs by default.
    agent_args: list[str] = field(
        default_factory=lambda: ["--AgentApp.allowed_input_networks=127.0.0.0/8"]
    )
    admin_token: str = field(default_factory=new_token)
    agent_token: str = field(default_factory=new_token)
    port: int = 0
    master: subprocess.Popen | None = None
    agents: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VH_ADMIN_TOKEN"] = self.admin_token
        env["VH_AGENT_TOKEN"] = self.agent_token
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _log(self, name: str) -> Any:
        os.makedirs(os.path.join(self.root, "logs"), exist_ok=True)
        return open(os.path.join(self.root, "logs", f"{name}.log"), "ab")

    def start_master(self) -> None:
        self.port = self.port or free_port()
        argv = [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "master",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            os.path.join(self.root, "master"),
            "--mongo-url",
            self.mongo_url,
            "--mongo-db",
            self.mongo_db,
            "--redis-url",
            self.redis_url,
            *self.master_args,
        ]
        if not any(a.startswith("--store-url") for a in self.master_args):  # given only once
            argv += ["--store-url", "file://" + os.path.join(self.root, "artifacts")]
        with self._log("master") as logf:
            self.master = subprocess.Popen(
                argv, env=self._env(), stdout=logf, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port("127.0.0.1", self.port, 30, self.master)
        except BaseException:  # a master that never answered is not left running
            self.master.kill()
            self.master.wait(5)
            raise

    def start_agent(self, name: str | None = None, *extra: str) -> subprocess.Popen:
        name = name or f"agent-{len(self.agents)}"
        argv = [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "agent",
            "--master-url",
            self.url,
            "--name",
            name,
            "--work-dir",
            os.path.join(self.root, name),
            *self.agent_args,
            *extra,
        ]
        with self._log(name) as logf:
            proc = subprocess.Popen(argv, env=self._env(), stdout=logf, stderr=subprocess.STDOUT)
        self.agents.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*self.agents, self.master]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self.agents, self.master]:
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def events(self, execution_id: str) -> list[dict]:
        path = f"/api/v0/executions/{execution_id}/events/"
        return list(self.api("GET", path, params={"limit": 0}).json()["events"])

    def explain(self, execution_id: str) -> str:
        """The execution's own log and the processes' logs, for an assertion message."""
        lines = [f"{e['stream']}: {e['message']}" for e in self.events(execution_id)]
        return "\n".join(["==== execution events", *lines[-60:], self.logs()])

    def logs(self) -> str:
        out = []
        for name in sorted(os.listdir(os.path.join(self.root, "logs"))):
            with open(os.path.join(self.root, "logs", name), errors="replace") as f:
                out.append(f"==== {name}\n{f.read()[-4000:]}")
        return "\n".join(out)

    # --- the API, as a client sees it -------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        headers.setdefault("Authorization", f"Token {token or self.admin_token}")
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def wait_status(
        self,
        execution_id: str,
        statuses: set[str] | frozenset[str] = TERMINAL_STATUSES,
        timeout: float = 60,
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            data = self.api("GET", f"/api/v0/executions/{execution_id}/").json()
            if data["status"] in statuses:
                return data
            if time.monotonic() > deadline:
                status = data["status"]
                raise AssertionError(f"{execution_id} still {status}\n{self.explain(execution_id)}")
            time.sleep(0.1)

    def create_project(self, name: str = "demo") -> dict:
        resp = self.api("POST", "/api/v0/projects/", json={"name": name})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def import_package(self, project_id: str, files: dict[str, str | bytes]) -> dict:
        resp = self.api(
            "POST",
            f"/api/v0/projects/{project_id}/import-package/",
            files={"data": ("data.tgz", make_tarball(files), "application/gzip")},
        )
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def submit(self, project_id: str, commit: str, step: str, **body: Any) -> dict:
        resp = self.api(
            "POST",
            "/api/v0/executions/",
            json={"project": project_id, "commit": commit, "step": step, **body},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()


def make_tarball(files: dict[str, str | bytes]) -> bytes:
    """Return a gzipped tarball holding ``files`` (name -> content); same files, same bytes."""
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
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
