"""Fork servers: start a fresh process per request by forking one that has done its imports.

A cold notebook spends most of its start-up importing: papermill (nbformat's schema validator and
the format checkers behind it alone take seconds on a busy machine) in the runner, IPython and
ipykernel in the kernel. A fork server (a "zygote") is a long-lived process that did those imports
and nothing else: it runs no user code, has no thread but its own and no zmq context, so every
process forked from it is as fresh as a newly started one, minus the imports.

Protocol (one Unix stream connection per process, the socket in a directory only this user can
open): the client sends a length-prefixed JSON request with the new process's stdin, stdout and
stderr attached (``SCM_RIGHTS``); the server forks, answers ``pid N`` and, when the process has
exited, ``exit CODE`` (``-SIGNAL`` when a signal ended it, as :class:`subprocess.Popen` does).
A client that closes its connection early takes its process with it: the server SIGKILLs the
process group. The child leads a session of its own, gets ``PR_SET_PDEATHSIG`` (it dies with the
server, which dies with the agent) and runs the server's handler on the request in the request's
directory and environment (replacing the server's entirely).

What a forked process shares with its server, and so with its siblings: the imported modules'
code and the interpreter's start-up state (``sys.path``, ``sys.flags``, the str hash seed, the
memory layout). The server refuses (``refused ...``; the client raises :class:`Refused` and the
caller starts a process the usual way) when the request's environment sets what Python reads at
start-up (``PYTHON*``, ``LD_*``) differently from the server's own.

``python forkserver.py kernel SOCKET [MODULE ...]`` runs the ipykernel zygote (IPython, ipykernel
and the named modules imported): each request (the kernel command jupyter_client would run, its
environment and directory) becomes a fresh kernel process, as ``python -m ipykernel_launcher -f
CONNECTION_FILE`` would be. Standard library only, like
:mod:`agent.nbrun`, which runs the notebook runner zygote with the same server.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

READY = "@@vh-zygote-ready@@"
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 64 * 1024 * 1024
PR_SET_PDEATHSIG = 1


class Refused(OSError):
    """The server would not fork for this request; start the process the usual way."""


def startup_env(env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` a Python interpreter (or the loader) reads when it starts."""
    return {k: v for k, v in env.items() if k.startswith(("PYTHON", "LD_"))}


# --- client -------------------------------------------------------------------------------------


class ForkedProcess:
    """A process a fork server started, driven like a :class:`subprocess.Popen`.

    It is the server's child, not ours: its exit status arrives on the connection.
    """

    def __init__(self, conn: socket.socket, pid: int, args: Any = None) -> None:
        self.conn = conn
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None  # type: Any
        self._buffer = b""

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._read(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Forget the process; the server kills it if it still runs."""
        with contextlib.suppress(OSError):
            self.conn.close()

    def _read(self, timeout: float | None) -> None:
        if self.conn.fileno() < 0:
            self.returncode = -signal.SIGKILL
            return
        readable, _, _ = select.select([self.conn], [], [], timeout)
        if not readable:
            return
        try:
            data = self.conn.recv(256)
        except OSError:
            data = b""
        self._buffer += data
        if b"\n" in self._buffer:
            line = self._buffer.split(b"\n", 1)[0].decode()
            self.returncode = int(line.split()[1]) if line.startswith("exit ") else -9
        elif not data:  # the server is gone, and its children with it
            self.returncode = -signal.SIGKILL
        if self.returncode is not None:
            self.close()


def spawn(
    path: str, request: dict[str, Any], fds: list[int], timeout: float = 10.0
) -> ForkedProcess:
    """Ask the server at ``path`` for a process; ``fds`` become its stdin, stdout and stderr.

    Raises :class:`Refused` or another OSError when no process was started.
    """
    body = json.dumps(request).encode("utf-8")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(timeout)
        conn.connect(path)
        socket.send_fds(conn, [_HEADER.pack(len(body))], fds)
        conn.sendall(body)
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                raise ConnectionError("the fork server closed the connection")
            line += chunk
        conn.settimeout(None)
    except BaseException:
        conn.close()
        raise
    text = line.decode().strip()
    if not text.startswith("pid "):
        conn.close()
        raise Refused(text)
    return ForkedProcess(conn, int(text.split()[1]), request.get("args"))


# --- server -------------------------------------------------------------------------------------


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    conn.settimeout(10)
    head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
    if len(head) < _HEADER.size:
        head += _recv_exactly(conn, _HEADER.size - len(head))
    (size,) = _HEADER.unpack(head)
    if size > _MAX_REQUEST:
        raise ValueError("request too large")
    request = json.loads(_recv_exactly(conn, size))
    conn.settimeout(None)
    return request, fds


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("short request")
        data += chunk
    return data


def serve(
    path: str,
    handler: Callable[[dict[str, Any]], int],
    check: Callable[[dict[str, Any]], str | None] | None = None,
) -> None:
    """Serve forks on the Unix socket ``path`` forever; each child runs ``handler(request)``.

    ``check(request)``: a reason to refuse the request, or None to fork for it.
    """
    own_startup = startup_env(dict(os.environ))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}  # pid -> its client's connection
    print(READY, flush=True)
    while True:
        watched = {c.fileno(): (pid, c) for pid, c in children.items() if c.fileno() >= 0}
        try:
            readable, _, _ = select.select([listener, wake_r, *watched], [], [])
        except InterruptedError:
            continue
        for fd in readable:
            if fd is listener:
                own = [listener.fileno(), wake_r, wake_w]
                _accept(listener, own_startup, handler, check, children, own)
            elif fd == wake_r:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 4096)
            elif fd in watched:
                pid, conn = watched[fd]
                with contextlib.suppress(OSError):
                    if conn.recv(1):
                        continue  # clients send nothing after the request; ignore it
                # The client is gone: its process (and what that started) goes with it.
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                conn.close()
        _reap(children)


def _accept(
    listener: socket.socket,
    own_startup: dict[str, str],
    handler: Callable[[dict[str, Any]], int],
    check: Callable[[dict[str, Any]], str | None] | None,
    children: dict[int, socket.socket],
    own_fds: list[int],
) -> None:
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        request, fds = _receive(conn)
        env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        if len(fds) != 3:
            raise ValueError("a request brings stdin, stdout and stderr")
        reason = check(request) if check is not None else None
        if reason is None and startup_env(env) != own_startup:
            reason = "the environment sets Python's start-up differently"
        if reason is not None:
            conn.sendall(f"refused: {reason}\n".encode())
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            close = own_fds + [c.fileno() for c in children.values() if c.fileno() >= 0]
            _child(conn, close, request, env, fds, handler)
        children[pid] = conn
        conn.sendall(f"pid {pid}\n".encode())
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            conn.sendall(f"refused: {exc}\n".encode())
        conn.close()
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None and conn.fileno() >= 0:
            with contextlib.suppress(OSError):
                conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


def _child(  # pragma: no cover - runs in the forked child
    conn: socket.socket,
    close: list[int],
    request: dict[str, Any],
    env: dict[str, str],
    fds: list[int],
    handler: Callable[[dict[str, Any]], int],
) -> None:
    code = 1
    try:
        os.setsid()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        conn.close()
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(str(request.get("cwd") or "/"))
        os.environ.clear()
        os.environ.update(env)
        unbuffered = bool(env.get("PYTHONUNBUFFERED"))
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(write_through=unbuffered)  # type: ignore[union-attr]
        code = handler(request)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --- the ipykernel zygote -----------------------------------------------------------------------


def _run_kernel(request: dict[str, Any]) -> int:  # pragma: no cover - runs in the forked child
    """Be ``python -m ipykernel_launcher ARGS`` in this (forked) process."""
    import ipykernel_launcher
    from ipykernel import kernelapp

    # ipykernel read $JPY_PARENT_PID when the zygote imported it: say it again. It is the pid
    # to watch, and exit when it goes: the zygote's (the runner is watched by the zygote).
    parent = str(os.getppid())
    os.environ["JPY_PARENT_PID"] = parent
    args = [str(a) for a in request["args"][3:]]
    sys.argv = [ipykernel_launcher.__file__, f"--IPKernelApp.parent_handle={parent}", *args]
    kernelapp.launch_new_instance()
    return 0


def kernel_command(cmd: list[str]) -> bool:
    """Whether ``cmd`` is a kernel this interpreter's ipykernel zygote can fork."""
    return (
        len(cmd) >= 3
        and cmd[1:3] == ["-m", "ipykernel_launcher"]
        and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
    )


def kernel_zygote(path: str, preload: list[str]) -> None:
    """Import what every kernel imports (and the modules ``preload``), then fork kernels on
    ``path``. A preload that fails to import is left to the kernels."""
    import importlib

    import ipykernel.ipkernel
    import ipykernel.kernelapp  # noqa: F401
    import ipykernel_launcher  # noqa: F401
    import IPython  # noqa: F401

    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"forkserver: not preloading {name}: {exc}", file=sys.stderr, flush=True)

    def check(request: dict[str, Any]) -> str | None:
        args = [str(a) for a in request.get("args") or []]
        return None if kernel_command(args) else "not an ipykernel of this interpreter"

    serve(path, _run_kernel, check)


if __name__ == "__main__":
    # Like ipykernel_launcher: the script's directory is not the kernels' import path.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    if sys.argv[1:2] != ["kernel"] or len(sys.argv) < 3:
        sys.exit("usage: forkserver.py kernel SOCKET [MODULE_TO_PRELOAD ...]")
    kernel_zygote(sys.argv[2], sys.argv[3:])
