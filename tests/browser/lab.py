"""A `jupyter lab` child process with the jupyter-valohai extensions, on a real master."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from jupyter_valohai.models import new_token
from jupyter_valohai.services import free_port, wait_for_port
from tests.e2e.stack import Stack

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension" / "dist"


class Lab:
    """A `jupyter lab` child process serving ``root``."""

    def __init__(self, root: Path, home: Path, master: Stack) -> None:
        self.root = root
        self.home = home
        self.master = master
        self.port = free_port()
        self.token = new_token()
        self.proc: subprocess.Popen | None = None
        self.log_path = home / "lab.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        """Jupyter's own dirs under ``home``; the extension under test first on JUPYTER_PATH."""
        path = self.home / "path"
        (path / "labextensions").mkdir(parents=True)
        (path / "labextensions" / "jupyter-valohai").symlink_to(LABEXTENSION)
        config = self.home / "config"
        config.mkdir()
        (config / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "ServerApp": {"jpserver_extensions": {"jupyter_valohai": True}},
                    "Valohai": {
                        "master_url": self.master.url,
                        "token": self.master.admin_token,
                        "embedded": False,
                        "default_project": "browser",
                    },
                }
            )
        )
        # No "get notified about Jupyter news?" toast over the page.
        settings = self.home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env = dict(os.environ)
        for name in ("VH_MASTER_URL", "VH_TOKEN", "VH_CONNECTION_FILE"):
            env.pop(name, None)
        env.update(
            JUPYTER_PATH=str(path),
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            "--LabApp.news_url=None",
            f"--LabApp.user_settings_dir={self.home / 'settings'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, env=self._environment(), stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port("127.0.0.1", self.port, 60, self.proc)
        deadline = time.monotonic() + 60
        while True:
            try:
                status = self.api("GET", "valohai/connection").json()
                if status.get("state") == "ready":
                    return
            except (requests.ConnectionError, ValueError):
                status = {}
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"jupyter lab did not get ready: {status}\n{self.log()}")
            time.sleep(0.2)

    def api(self, method: str, route: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.url}/{route}", headers=headers, timeout=30, **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
