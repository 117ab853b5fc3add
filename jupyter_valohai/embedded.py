"""``jupyter valohai up``: the embedded default on one machine.

Starts, as child processes, a MongoDB-wire server (``nx-27017``) and Redis (unless URLs are given),
the master, N local agents and JupyterLab; writes ``connection.json`` for clients; and on Ctrl-C or
SIGTERM stops everything it started, in reverse order. Secrets travel to children through the
environment, never argv, and are never printed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from jupyter_core.application import JupyterApp, base_flags
from traitlets import Bool, Int, Unicode, default

from . import __version__, services
from .errors import ServiceUnavailable, ValohaiError
from .services import ManagedProcess

STARTUP_TIMEOUT = 60.0


def write_secret(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (readers never see half a file)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fp:
            fp.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_or_create_token(path: str) -> str:
    """Return the token kept in ``path``, generating it (mode 0600) on first use."""
    try:
        with open(path) as fp:
            token = fp.read().strip()
        if token:
            os.chmod(path, 0o600)
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    write_secret(path, token + "\n")
    return token


def wait_for_http(url: str, timeout: float, proc: ManagedProcess) -> None:
    """Wait until ``url`` gives any HTTP answer; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise ServiceUnavailable(
                f"The {proc.name} exited with code {proc.popen.returncode} while starting.",
                hint=f"See its log: {proc.log_path}",
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered: 401/404 still means the server is up
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise ServiceUnavailable(
        f"The {proc.name} did not answer on {url} within {timeout:.0f} s.",
        hint=f"See its log: {proc.log_path}",
    )


def _port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def default_data_dir() -> str:
    """The embedded default's data dir: ``$VH_DATA_DIR`` or ``~/.local/share/jupyter-valohai``."""
    return os.environ.get("VH_DATA_DIR") or os.path.expanduser("~/.local/share/jupyter-valohai")


def up_command(
    data_dir: str, port: int, *, agents: int = 1, lab: bool = False, stop_with_parent: bool = False
) -> list[str]:
    """The command line of ``jupyter valohai up`` (for whoever starts it as a child process)."""
    argv = [
        sys.executable,
        "-m",
        "jupyter_valohai.app",
        "up",
        "--lab" if lab else "--no-lab",
        "--data-dir",
        data_dir,
        "--port",
        str(port),
        "--agents",
        str(agents),
    ]
    if stop_with_parent:
        argv.append("--stop-with-parent")
    return argv


class _Interrupted(Exception):
    """Raised in the main thread by SIGINT/SIGTERM."""


class UpApp(JupyterApp):
    """Start the embedded default: MongoDB-wire server, Redis, master, agents and JupyterLab."""

    name = "jupyter-valohai-up"
    version = __version__
    description = (
        "Start the embedded jupyter-valohai stack on this machine: nx-27017 (MongoDB wire "
        "protocol), Redis, the master, local agents and JupyterLab. Ctrl-C stops it all."
    )
    aliases = {
        "port": "UpApp.port",
        "ip": "UpApp.ip",
        "data-dir": "UpApp.data_dir",
        "mongo-url": "UpApp.mongo_url",
        "redis-url": "UpApp.redis_url",
        "lab-port": "UpApp.lab_port",
        "agents": "UpApp.agents",
        "log-level": "Application.log_level",
    }
    flags = {
        **base_flags,
        "no-lab": ({"UpApp": {"lab": False}}, "Do not start JupyterLab."),
        "lab": ({"UpApp": {"lab": True}}, "Start JupyterLab (the default)."),
        "stop-with-parent": (
            {"UpApp": {"stop_with_parent": True}},
            "Stop everything when the process that started us exits (used by the server "
            "extension's embedded default).",
        ),
    }

    data_dir = Unicode(
        help="Directory for databases, artifacts, tokens, logs and connection.json "
        "(default: $VH_DATA_DIR or ~/.local/share/jupyter-valohai)."
    ).tag(config=True)
    port = Int(8780, help="Port of the master's HTTP API.").tag(config=True)
    ip = Unicode("127.0.0.1", help="Address the master and JupyterLab listen on.").tag(config=True)
    mongo_url = Unicode(
        "", help="MongoDB URL to use; empty starts our own nx-27017 in the data dir."
    ).tag(config=True)
    redis_url = Unicode("", help="Redis URL to use; empty starts our own redis-server.").tag(
        config=True
    )
    lab = Bool(True, help="Start JupyterLab too.").tag(config=True)
    lab_port = Int(8888, help="Port of JupyterLab.").tag(config=True)
    agents = Int(1, help="Number of local agents to start.").tag(config=True)
    stop_with_parent = Bool(
        False, help="Stop everything when the parent process exits, even if it was killed."
    ).tag(config=True)

    @default("data_dir")
    def _data_dir_default(self) -> str:
        return default_data_dir()

    # -- paths -------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return os.path.join(os.path.abspath(os.path.expanduser(self.data_dir)), *parts)

    @property
    def connection_file(self) -> str:
        return self._path("connection.json")

    @property
    def master_url(self) -> str:
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0", "::") else self.ip
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # -- starting children -------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        log_path = self._path("logs", f"{name}.log")
        with open(log_path, "ab") as logf, self._signals_deferred():
            popen = subprocess.Popen(
                argv,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
            proc = ManagedProcess(name, popen, log_path=log_path)
            self.children.append(proc)
        self.log.debug("started %s (pid %d): %s", name, popen.pid, " ".join(argv))
        return proc

    def _adopt_service(self, proc: ManagedProcess, log_path: str) -> None:
        """Track a service started by :mod:`services`, and link its log into logs/."""
        link = self._path("logs", f"{proc.name}.log")
        if not os.path.lexists(link):
            os.symlink(os.path.relpath(log_path, os.path.dirname(link)), link)
        proc.log_path = link
        self.children.append(proc)

    def start_services(self) -> tuple[str, str]:
        """Start nx-27017 and Redis unless URLs were given; return (mongo URL, redis URL)."""
        mongo_url, redis_url = self.mongo_url, self.redis_url
        if not mongo_url:
            with self._signals_deferred():
                proc = services.start_mongo(self._path("mongo"))
                self._adopt_service(proc, self._path("mongo", "nx-27017.out"))
            mongo_url = proc.url
        if not redis_url:
            with self._signals_deferred():
                proc = services.start_redis(self._path("redis"))
                self._adopt_service(proc, self._path("redis", "redis.log"))
            redis_url = proc.url
        return mongo_url, redis_url

    def start_master(self, mongo_url: str, redis_url: str) -> ManagedProcess:
        if _port_in_use(self.ip or "127.0.0.1", self.port):
            raise ServiceUnavailable(
                f"Port {self.port} is already in use.",
                hint="Stop what uses it, or pick another with --port.",
            )
        argv = [
            sys.executable,
            "-m",
            "jupyter_valohai.app",
            "master",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--data-dir",
            self._path(),
            "--mongo-url",
            mongo_url,
            "--redis-url",
            redis_url,
            "--store-url",
            "file://" + self._path("artifacts"),
        ]
        env = {"VH_ADMIN_TOKEN": self.admin_token, "VH_AGENT_TOKEN": self.agent_token}
        proc = self._spawn("master", argv, env)
        wait_for_http(self.master_url + "/api/v0/", STARTUP_TIMEOUT, proc)
        return proc

    def start_agents(self) -> None:
        for n in range(1, self.agents + 1):
            argv = [
                sys.executable,
                "-m",
                "jupyter_valohai.app",
                "agent",
                "--master-url",
                self.master_url,
                "--work-dir",
                self._path(f"agent-{n}"),
            ]
            # The embedded default runs executions in Docker when an engine answers, else as
            # local processes; VH_AGENT_RUNTIME (docker, local, auto) says otherwise.
            runtime = os.environ.get("VH_AGENT_RUNTIME") or "auto"
            env = {"VH_AGENT_TOKEN": self.agent_token, "VH_AGENT_RUNTIME": runtime}
            self._spawn(f"agent-{n}", argv, env)

    def start_lab(self) -> ManagedProcess:
        argv = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={self.lab_port}",
            f"--ServerApp.ip={self.ip}",
            "--ServerApp.port_retries=0",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        env = {
            "VH_MASTER_URL": self.master_url,
            "VH_CONNECTION_FILE": self.connection_file,
            "JUPYTER_TOKEN": self.lab_token,  # read by IdentityProvider; keeps it out of argv
        }
        proc = self._spawn("lab", argv, env)
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0", "::") else self.ip
        wait_for_http(f"http://{host}:{self.lab_port}/api/", STARTUP_TIMEOUT, proc)
        return proc

    def write_connection_file(self) -> None:
        body = {"url": self.master_url, "token": self.admin_token, "pid": os.getpid()}
        write_secret(self.connection_file, json.dumps(body, indent=2) + "\n")

    # -- the life cycle ----------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        """Refuse a second ``up`` on the same data dir (both would write one SQLite store)."""
        self._lock_fp = open(self._path("up.lock"), "a+")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(self._lock_fp, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServiceUnavailable(
                f"Another `jupyter valohai up` is running on {self._path()}.",
                hint="Stop it first, or pass another --data-dir.",
            ) from None

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._deferring:
            self._pending_signal = name
            return
        raise _Interrupted(name)

    @contextlib.contextmanager
    def _signals_deferred(self) -> Iterator[None]:
        """Hold SIGINT/SIGTERM while a child is being started, so none is left untracked."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending_signal:
            raise _Interrupted(self._pending_signal)

    def stop_all(self) -> None:
        """Stop every child we started, newest first; kill what is left of each process group."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in reversed(self.children):
            if proc.alive():
                self.log.info("stopping %s", proc.name)
            proc.stop(grace=10)
            # Children of the child (kernels, executions) share its session: leave none behind.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
        self.children.clear()
        if os.path.exists(self.connection_file):
            os.unlink(self.connection_file)

    def _banner(self) -> None:
        lines = [
            "",
            f"jupyter-valohai {__version__} is up.",
            f"  master:          {self.master_url}/api/v0/",
            f"  connection file: {self.connection_file}  (URL and admin token, mode 0600)",
            f"  agents:          {self.agents} local",
            f"  logs:            {self._path('logs')}/",
        ]
        if self.lab:
            host = "127.0.0.1" if self.ip in ("", "0.0.0.0", "::") else self.ip
            lines.append(
                f"  JupyterLab:      http://{host}:{self.lab_port}/lab  "
                f"(token in {self._path('lab_token')})"
            )
        lines += ["Press Ctrl-C to stop everything.", ""]
        print("\n".join(lines), flush=True)

    def _watch(self) -> int:
        """Wait for a signal (exit 0) or a child that dies on its own (exit 1)."""
        while True:
            if self.stop_with_parent and os.getppid() != self._parent_pid:
                self.log.info("The process that started us exited: stopping.")
                return 0
            for proc in self.children:
                if not proc.alive():
                    self.log.error(
                        "The %s exited unexpectedly (code %s); see its log: %s. Stopping the rest.",
                        proc.name,
                        proc.popen.returncode,
                        proc.log_path,
                    )
                    return 1
            time.sleep(0.5)

    def start(self) -> None:
        self.children: list[ManagedProcess] = []
        self._parent_pid = os.getppid()
        self._deferring = False
        self._pending_signal = ""
        os.makedirs(self._path("logs"), mode=0o700, exist_ok=True)
        os.chmod(self._path(), 0o700)
        self._lock_data_dir()
        self.admin_token = load_or_create_token(self._path("admin_token"))
        self.agent_token = load_or_create_token(self._path("agent_token"))
        if self.lab:
            self.lab_token = load_or_create_token(self._path("lab_token"))
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        code = 0
        try:
            mongo_url, redis_url = self.start_services()
            self.start_master(mongo_url, redis_url)
            self.start_agents()
            self.write_connection_file()
            if self.lab:
                self.start_lab()
            self._banner()
            code = self._watch()
        except _Interrupted as exc:
            self.log.info("%s received: stopping.", exc)
        except ValohaiError as exc:
            self.log.error("%s", exc)
            code = 1
        finally:
            self.stop_all()
        self.exit(code)


main = launch_new_instance = UpApp.launch_instance

if __name__ == "__main__":
    main()
