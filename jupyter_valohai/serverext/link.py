"""The server extension's link to the master: where it is, and the embedded default's life cycle.

Where the master comes from, in order: ``c.Valohai.master_url`` (+ ``token``, or the token saved
for that URL); ``VH_MASTER_URL`` + ``VH_TOKEN`` or ``VH_CONNECTION_FILE`` (what ``jupyter valohai
up`` gives the Lab it starts); the ``%valohai login`` file; else, with ``c.Valohai.embedded``, a
``jupyter valohai up`` already answering on the data dir, or one started here as a child process
and stopped with Jupyter. Starting it never blocks the server: routes answer 503 ("starting")
until it is ready.

Once the master is known, its URL and token go to a 0600 file in Jupyter's runtime dir named by
``VH_CONNECTION_FILE`` in the server's environment, so the kernels this server starts find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from typing import Any

from tornado.ioloop import IOLoop

from ..client import AsyncClient
from ..connection import Connection, login_file, read_connection_file, resolve_connection
from ..embedded import up_command, write_secret
from ..errors import NotConfigured, ServiceUnavailable, ValohaiError
from ..services import free_port
from .config import Valohai

#: Seconds ``jupyter valohai up`` gets to stop its children before it is killed.
STOP_GRACE = 30.0


class Starting(ServiceUnavailable):
    """The embedded master is not ready yet."""

    code = "starting"


class EmbeddedStack:
    """A ``jupyter valohai up --no-lab`` child process of this server."""

    def __init__(self, data_dir: str, port: int, agents: int) -> None:
        self.data_dir = os.path.abspath(os.path.expanduser(data_dir))
        self.port = port or free_port()
        self.agents = agents
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def connection_file(self) -> str:
        return os.path.join(self.data_dir, "connection.json")

    @property
    def log_path(self) -> str:
        return os.path.join(self.data_dir, "logs", "embedded.log")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def locked(self) -> bool:
        """Whether another ``jupyter valohai up`` holds the data dir (it may still be starting)."""
        path = os.path.join(self.data_dir, "up.lock")
        if not os.path.exists(path):
            return False
        with open(path, "a+") as fp:
            try:
                fcntl.flock(fp, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fp, fcntl.LOCK_UN)
        return False

    def spawn(self) -> None:
        """Start the child (fast: the waiting happens in :meth:`wait_ready`)."""
        os.makedirs(os.path.dirname(self.log_path), mode=0o700, exist_ok=True)
        argv = up_command(self.data_dir, self.port, agents=self.agents, stop_with_parent=True)
        with open(self.log_path, "ab") as logf:
            # Its own session: a Ctrl-C in the terminal reaches Jupyter alone, which then stops it.
            self.popen = subprocess.Popen(
                argv,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float) -> Connection:
        """Wait (without blocking the event loop) for the child's connection.json."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise ServiceUnavailable(
                    f"The embedded jupyter-valohai stack exited with code {self.popen.returncode}"
                    " while starting.",
                    hint=f"See its log: {self.log_path}",
                )
            body = _read_json(self.connection_file)
            if body.get("pid") == self.popen.pid:
                return read_connection_file(self.connection_file, "embedded default")
            await asyncio.sleep(0.2)
        raise ServiceUnavailable(
            f"The embedded jupyter-valohai stack was not ready within {timeout:.0f} s.",
            hint=f"See its log: {self.log_path}",
        )

    async def stop(self) -> None:
        """SIGTERM (it stops its own children), then SIGKILL of its group after a grace."""
        popen = self.popen
        if popen is None:
            return
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        if popen.poll() is None:
            popen.wait(5)


async def _answering(path: str) -> Connection | None:
    """The connection in ``path`` if its master answers with that token, else None."""
    if not os.path.exists(path):
        return None
    try:
        conn = read_connection_file(path, "running embedded default")
        async with AsyncClient(conn.url, conn.token, timeout=5) as client:
            await client.me()
    except ValohaiError:
        return None
    return conn


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fp:
            body = json.load(fp)
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


class MasterLink:
    """The master this server talks to: ``state`` is starting, ready, failed or stopped."""

    def __init__(self, config: Valohai, runtime_file: str) -> None:
        self.config = config
        self.log = config.log
        self.runtime_file = runtime_file
        self.state = "starting"
        self.connection: Connection | None = None
        self.embedded: EmbeddedStack | None = None
        self.error: ValohaiError | None = None
        self._client: AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._saved_env: str | None = os.environ.get("VH_CONNECTION_FILE")
        self.active_streams = 0

    # -- where the master is ---------------------------------------------------------------

    def _configured(self) -> Connection | None:
        """The master given by configuration, environment or login; None: the embedded one."""
        c = self.config
        if c.master_url:
            if c.token:
                return Connection(c.master_url, c.token, "c.Valohai.master_url")
            return resolve_connection(url=c.master_url)  # the token saved for that URL
        env = os.environ
        if (env.get("VH_MASTER_URL") and env.get("VH_TOKEN")) or env.get("VH_CONNECTION_FILE"):
            return resolve_connection()
        if os.path.exists(login_file()):
            return read_connection_file(login_file())
        return None

    def start(self) -> None:
        """Resolve the master now; start (or reuse) the embedded one in the background."""
        try:
            conn = self._configured()
        except ValohaiError as exc:
            self._fail(exc)
            return
        os.environ["VH_CONNECTION_FILE"] = self.runtime_file
        if conn is not None:
            self._ready(conn)
        elif not self.config.embedded:
            self._fail(
                NotConfigured(
                    "No jupyter-valohai master is configured.",
                    hint="Set c.Valohai.master_url and c.Valohai.token, or "
                    "c.Valohai.embedded = True.",
                )
            )
        else:
            # The event loop may not run yet (extensions load before it starts).
            IOLoop.current().add_callback(self._launch)

    def _launch(self) -> None:
        if self.state == "starting":
            self._task = asyncio.ensure_future(self._start_embedded())

    async def _start_embedded(self) -> None:
        stack = EmbeddedStack(
            self.config.data_dir, self.config.embedded_port, self.config.embedded_agents
        )
        try:
            running = await self._running_up(stack)
            if running is not None:
                self.log.info(
                    "jupyter-valohai: using the running embedded master at %s", running.url
                )
                self._ready(running)
                return
            self.embedded = stack
            stack.spawn()
            self.log.info(
                "jupyter-valohai: starting the embedded master on port %d (log: %s)",
                stack.port,
                stack.log_path,
            )
            try:
                conn = await stack.wait_ready(self.config.startup_timeout)
            except ServiceUnavailable:
                if stack.alive() or not stack.locked():
                    raise
                # Another `up` took the data dir between our look and our start: use it.
                self.embedded = None
                running = await self._running_up(stack)
                if running is None:
                    raise
                conn = running
        except ValohaiError as exc:
            self._fail(exc)
            await stack.stop()
            return
        self.log.info("jupyter-valohai: the embedded master is ready at %s", conn.url)
        self._ready(conn)

    async def _running_up(self, stack: EmbeddedStack) -> Connection | None:
        """The connection of a ``jupyter valohai up`` on the data dir (waiting for one starting)."""
        deadline = time.monotonic() + self.config.startup_timeout
        while True:
            conn = await _answering(stack.connection_file)
            if conn is not None or not stack.locked():
                return conn
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"Another `jupyter valohai up` on {stack.data_dir} did not become ready.",
                    hint="Stop it, or set c.Valohai.data_dir to another folder.",
                )
            await asyncio.sleep(0.5)

    def _ready(self, conn: Connection) -> None:
        self.connection = conn
        self._client = AsyncClient(conn.url, conn.token)
        write_secret(self.runtime_file, json.dumps({"url": conn.url, "token": conn.token}))
        self.state = "ready"

    def _fail(self, exc: ValohaiError) -> None:
        self.log.error("jupyter-valohai: %s", exc)
        self.error = exc
        self.state = "failed"

    # -- for the handlers --------------------------------------------------------------------

    def client(self) -> AsyncClient:
        """The master's client, or the error explaining why there is none (yet)."""
        if self._client is not None:
            return self._client
        if self.error is not None:
            raise self.error
        if self.state == "stopped":
            raise ServiceUnavailable("The jupyter-valohai extension has stopped.")
        log = self.embedded.log_path if self.embedded else self.config.data_dir
        raise Starting(
            "The embedded jupyter-valohai master is starting.",
            hint=f"Try again in a few seconds (its log: {log}).",
        )

    def describe(self) -> dict[str, Any]:
        """What the browser may know about the link (never the token)."""
        body: dict[str, Any] = {
            "state": self.state,
            "url": self.connection.url if self.connection else None,
            "source": self.connection.source if self.connection else None,
            "embedded": self.embedded is not None,
            "default_project": self.config.default_project or None,
            "environment": self.config.environment or None,
            "image": self.config.image or None,
        }
        if self.error is not None:
            body["error"] = {
                "code": self.error.code,
                "message": self.error.message,
                "hint": self.error.hint,
            }
        return body

    async def stop(self) -> None:
        """Stop what we started and forget the connection file."""
        self.state = "stopped"
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.embedded is not None:
            await self.embedded.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.runtime_file)
        if os.environ.get("VH_CONNECTION_FILE") == self.runtime_file:
            if self._saved_env is None:
                del os.environ["VH_CONNECTION_FILE"]
            else:
                os.environ["VH_CONNECTION_FILE"] = self._saved_env
