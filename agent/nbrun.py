"""Run one notebook with papermill and report each code cell's start and end on stdout.

``python nbrun.py INPUT OUTPUT --parameters-file P --cwd DIR`` does what
``papermill INPUT OUTPUT -f P --cwd DIR --stdout-file - --stderr-file /dev/stderr`` does (cell
output is printed as it comes; the executed notebook is written to OUTPUT, also when a cell
fails) and, when ``$VH_PROGRESS_NONCE`` is set, prints one marker line per cell event::

    @@vh-progress:<nonce>@@ {"type": "cell", "state": "start", "index": 3, ...}

Markers go through the same stdout as the cell output, so the agent sees them in order with it;
the agent turns them into ``progress`` events and never shows them as log lines. The nonce is
removed from the environment before the kernel starts, so the notebook cannot print a marker
by accident. A marker may follow a cell's partial last line on the same line.

This module needs only papermill (and nbclient) and the standard library, so a container
runtime can mount it into an image and run it as a plain script (``python -m agent.nbrun`` works
too). Run as a script, its own directory is dropped from ``sys.path`` before papermill is
imported, so the agent's modules beside it shadow nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
from typing import Any, TextIO

NONCE_ENV = "VH_PROGRESS_NONCE"
SOURCE_CHARS = 80


def marker(nonce: str) -> str:
    """Return the text that starts a progress line for ``nonce``."""
    return f"@@vh-progress:{nonce}@@ "


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def first_line(source: str) -> str:
    """Return the first non-blank line of a cell's source, at most ``SOURCE_CHARS`` long."""
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:SOURCE_CHARS]
    return ""


class CellReporter:
    """nbclient cell hooks that print a start and an end marker for every code cell.

    A code cell nbclient skips (blank, or tagged to skip) ends ``ok`` at once; one that never
    got its reply (kernel died, timeout, stop) ends ``error`` when :meth:`close` runs.
    """

    def __init__(self, nonce: str, out: TextIO) -> None:
        self.prefix = marker(nonce)
        self.out = out
        self.positions: dict[int, int] = {}
        self.total = 0
        self.pending: tuple[int, Any, float] | None = None  # (index, cell, monotonic start)
        self.executing = False

    def hooks(self) -> dict[str, Any]:
        """The keyword arguments that install the hooks on papermill's NotebookClient."""
        return {
            "on_notebook_start": self.on_notebook_start,
            "on_cell_start": self.on_cell_start,
            "on_cell_execute": self.on_cell_execute,
            "on_cell_executed": self.on_cell_executed,
        }

    def on_notebook_start(self, notebook: Any, **_: Any) -> None:
        # The notebook as executed: papermill's injected-parameters cell is one of its cells.
        code = [i for i, c in enumerate(notebook.cells) if c.get("cell_type") == "code"]
        self.positions = {index: n + 1 for n, index in enumerate(code)}
        self.total = len(code)

    def on_cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.close()
        if cell.get("cell_type") != "code":
            return
        self.pending, self.executing = (cell_index, cell, time.monotonic()), False
        self._emit("start", cell_index, cell)

    def on_cell_execute(self, **_: Any) -> None:
        self.executing = True

    def on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any, **_: Any) -> None:
        content = (execute_reply or {}).get("content") or {}
        self._end("ok" if content.get("status") == "ok" else "error")

    def close(self) -> None:
        """End the cell still open: ``error`` if it was running, ``ok`` if it was skipped."""
        if self.pending is not None:
            self._end("error" if self.executing else "ok")

    def _end(self, status: str) -> None:
        if self.pending is None:
            return
        index, cell, started = self.pending
        self.pending = None
        self._emit("end", index, cell, duration=round(time.monotonic() - started, 6), status=status)

    def _emit(self, state: str, index: int, cell: Any, **extra: Any) -> None:
        event = {
            "type": "cell",
            "state": state,
            "index": index,
            "total": self.total,
            "position": self.positions.get(index, 0),
            "source": first_line(str(cell.get("source", ""))),
            "time": _now(),
            **extra,
        }
        try:
            self.out.write(f"{self.prefix}{json.dumps(event)}\n")
            self.out.flush()
        except (OSError, ValueError):  # stdout closed: the agent is gone; keep running
            pass


def ipc_kernel_manager(kernel_zygote: str | None = None) -> type:
    """A kernel manager whose kernel talks over Unix sockets (files only this user can open)
    rather than loopback TCP ports any local process can reach; ipykernel also warns on TCP.

    With ``kernel_zygote`` (the socket of an ipykernel fork server, :mod:`agent.forkserver`),
    a kernel that is this interpreter's ipykernel is forked from it rather than started; any
    other kernel, or one the server refuses, starts as usual.
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if kernel_zygote and _fork_kernel(self, kernel_zygote, kernel_cmd, kw):
                return
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return IPCKernelManager


def forkserver() -> Any:
    """The :mod:`agent.forkserver` module beside this file (loaded by path: run as a script,
    this module's directory is not on ``sys.path``)."""
    name = "_vh_forkserver"
    if name not in sys.modules:
        import importlib.util

        here = os.path.dirname(os.path.abspath(__file__))
        spec = importlib.util.spec_from_file_location(name, os.path.join(here, "forkserver.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _fork_kernel(km: Any, zygote: str, cmd: list[str], kw: dict[str, Any]) -> bool:
    """Fork ``km``'s kernel from the ipykernel zygote at ``zygote``; False to start it as usual.

    The kernel gets what jupyter_client would give the process it starts: the command's
    arguments, the environment and directory, this runner's stdout and stderr, its own session.
    """
    fs = forkserver()
    if not fs.kernel_command(cmd):
        return False
    cwd = str(kw.get("cwd") or os.getcwd())  # papermill changes into the directory instead
    request = {"args": cmd, "env": dict(kw.get("env") or os.environ), "cwd": cwd}
    with open(os.devnull, "rb") as devnull:
        try:
            proc = fs.spawn(zygote, request, [devnull.fileno(), 1, 2])
        except OSError as exc:
            logging.getLogger(__name__).info("Starting the kernel, not forking it: %s", exc)
            return False
    provisioner = km.provisioner
    provisioner.process = proc
    provisioner.pid = provisioner.pgid = proc.pid  # it leads a session of its own
    provisioner.cwd = cwd
    km._reconcile_connection_info(provisioner.connection_info)
    return True


def _warm_kernel_manager() -> type:
    """The IPC kernel manager of a warm runner: its ``client()`` hands out the client that
    already talked to the kernel once (``ready_client``), then new ones as usual."""

    class WarmKernelManager(ipc_kernel_manager()):  # type: ignore[misc]
        ready_client: Any = None

        def client(self, **kwargs: Any) -> Any:
            kc, self.ready_client = self.ready_client, None
            return kc if kc is not None else super().client(**kwargs)

    return WarmKernelManager


class _Stopped(BaseException):
    """Raised by the SIGTERM handler so the open cell is reported before the runner exits."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stopped


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nbrun", description="Run a notebook with papermill, reporting cell progress."
    )
    parser.add_argument("input", help="the notebook to run")
    parser.add_argument("output", help="where to write the executed notebook")
    parser.add_argument("--parameters-file", help="JSON object of parameters to inject")
    parser.add_argument("--cwd", help="working directory of the kernel")
    parser.add_argument("--kernel", help="kernel name (default: the notebook's own, else python3)")
    return parser.parse_args(argv)


def _kernel_defaults(path: str) -> tuple[str | None, str | None]:
    """``(kernel, language)`` for papermill: None where the notebook names its own, else
    ``python3`` / ``python`` (a notebook written by a script names neither, and papermill would
    refuse to run or parameterize it)."""
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f).get("metadata", {})
        spec = metadata.get("kernelspec") or {}
        info = metadata.get("language_info") or {}
        kernel = None if spec.get("name") else "python3"
        language = None if spec.get("language") or info.get("name") else "python"
    except (OSError, ValueError, AttributeError):
        return None, None  # papermill reports an unreadable notebook itself
    return kernel, language


def main(argv: list[str] | None = None) -> int:
    """Run the notebook; return 0, or 1 when a cell or papermill failed."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--warm"]:
        return warm_main(argv[1] if len(argv) > 1 else "python3")
    if argv[:1] == ["--zygote"] and len(argv) in (2, 3):
        return zygote_main(argv[1], argv[2] if len(argv) > 2 else None)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    nonce = os.environ.pop(NONCE_ENV, "")  # the kernel inherits os.environ: keep it out
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        import papermill  # noqa: F401
    except ImportError as exc:
        print(
            f"This image cannot run notebooks: {exc}. Notebook steps need python3 with papermill "
            "and ipykernel in the image (pick one with them, e.g. `%valohai run --image ...`).",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return _execute(args, nonce, {"kernel_manager_class": ipc_kernel_manager()})


def _execute(args: argparse.Namespace, nonce: str, engine: dict[str, Any]) -> int:
    """Run papermill on ``args`` with the engine arguments ``engine``; return the exit code."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    parameters: dict[str, Any] = {}
    reporter = CellReporter(nonce, sys.stdout) if nonce else None
    kernel, language = _kernel_defaults(args.input)
    try:
        if args.parameters_file:
            with open(args.parameters_file, encoding="utf-8") as f:
                parameters = json.load(f) or {}
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=parameters,
            cwd=args.cwd,
            kernel_name=args.kernel or kernel,
            language=language,
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
            # The kernel served this one notebook: kill it when done (or stopped) rather than
            # ask it to shut down and wait, which on a busy machine outlasts a stop's grace.
            shutdown_kernel="immediate",
            **engine,
            **(reporter.hooks() if reporter else {}),
        )
    except PapermillExecutionError as exc:
        _finish(reporter)
        print(str(exc).strip(), file=sys.stderr, flush=True)
        return 1
    except _Stopped:
        _finish(reporter)
        return 128 + signal.SIGTERM
    except Exception as exc:
        _finish(reporter)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    _finish(reporter)
    return 0


#: The line a warm runner prints once its kernel answers (see :func:`warm_main`).
WARM_READY = "@@vh-warm-ready@@"


def _kernel_name(args: argparse.Namespace) -> str:
    """The kernel papermill will ask for: ``--kernel``, else the notebook's own, else python3."""
    if args.kernel:
        return str(args.kernel)
    try:
        with open(args.input, encoding="utf-8") as f:
            spec = json.load(f).get("metadata", {}).get("kernelspec") or {}
        return str(spec.get("name") or "python3")
    except (OSError, ValueError, AttributeError):
        return "python3"


def _run_in_kernel(kc: Any, code: str, timeout: float = 30) -> None:
    """Run ``code`` silently in the kernel of ``kc`` and wait for its reply."""
    from jupyter_core.utils import run_sync

    msg_id = kc.execute(code, silent=True, store_history=False)
    deadline = time.monotonic() + timeout
    while True:
        reply = run_sync(kc.get_shell_msg)(timeout=max(deadline - time.monotonic(), 0.01))
        if reply["parent_header"].get("msg_id") == msg_id:
            if reply["content"].get("status") != "ok":
                raise RuntimeError(f"preparing the kernel failed: {reply['content']}")
            return


def _kill_kernel(km: Any) -> None:
    """End the kernel now: it ran its one notebook (a graceful shutdown takes ~0.3 s more)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None:
        return
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)  # the kernel leads a session of its own
    with contextlib.suppress(Exception):
        process.wait(5)


async def _already_ready(timeout: float | None = None) -> None:
    return None


def warm_main(kernel_name: str) -> int:
    """Start ahead: import papermill, start a ``kernel_name`` kernel, print :data:`WARM_READY`,
    then read one request (a JSON line: ``args`` as for :func:`main`, ``env``, ``nonce``) from
    stdin and run it, on that kernel when the notebook asks for that kernel, else on a new one.

    The kernel started before the request knew its directory and environment, so they are set
    in it (``os.chdir``, ``os.environ``) before the first cell; everything else about it is fresh:
    one runner, one kernel, one notebook. The runner's own environment carries no secrets of the
    agent (the pool scrubs it), and the request's environment replaces it entirely.
    """
    import shutil
    import tempfile

    from jupyter_core.utils import run_sync

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, _on_sigterm)
    tmp = tempfile.mkdtemp(prefix="vh-kernel-")
    km: Any = None
    kc: Any = None
    try:
        import nbformat
        import papermill  # noqa: F401 (most of a cold start is this import)

        # Compile nbformat's schema validator now rather than while the user waits.
        nbformat.validate(nbformat.v4.new_notebook())

        km = _warm_kernel_manager()(
            kernel_name=kernel_name, connection_file=os.path.join(tmp, "kernel.json")
        )
        run_sync(km.start_kernel)(cwd=tmp)
        kc = km.client()
        kc.start_channels(hb=False)  # nbclient starts the heartbeat when it takes this client
        run_sync(kc.wait_for_ready)(timeout=60)
        print(WARM_READY, flush=True)
        line = sys.stdin.readline()
        if not line.strip():  # the pool closed us without work
            return 0
        request = json.loads(line)
        args = parse_args([str(a) for a in request["args"]])
        env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        os.environ.clear()
        os.environ.update(env)
        engine: dict[str, Any] = {"kernel_manager_class": ipc_kernel_manager()}
        if _kernel_name(args) == kernel_name:
            cwd = os.path.abspath(args.cwd or os.getcwd())
            _run_in_kernel(
                kc,
                f"__import__('os').chdir({cwd!r}); "
                f"__import__('os').environ.clear(); __import__('os').environ.update({env!r})",
            )
            # nbclient takes the running client; its handshake (and the 0.2 s of IOPub quiet
            # that ends one) happened before the request.
            kc.wait_for_ready = _already_ready
            km.ready_client = kc
            engine = {"km": km}
        return _execute(args, str(request.get("nonce") or ""), engine)
    except _Stopped:
        return 128 + signal.SIGTERM
    finally:
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()
        if km is not None:
            _kill_kernel(km)
        shutil.rmtree(tmp, ignore_errors=True)


def zygote_main(path: str, kernel_zygote: str | None) -> int:
    """Serve cold notebook runners by fork on ``path`` (see :mod:`agent.forkserver`).

    Imports papermill (and compiles nbformat's validator) once; each request (``args`` as for
    :func:`main`, ``env``, ``cwd``, ``nonce``) becomes a runner forked from here, which forks its
    kernel from ``kernel_zygote`` when it can.
    """
    import IPython  # noqa: F401 (jupyter_client imports it to find kernel specs)
    import nbformat
    import papermill
    import papermill.engines  # noqa: F401

    nbformat.validate(nbformat.v4.new_notebook())
    ipc_kernel_manager()

    def run(request: dict[str, Any]) -> int:  # pragma: no cover - runs in the forked child
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        signal.signal(signal.SIGTERM, _on_sigterm)
        argv = [str(a) for a in request["args"]]
        sys.argv = [sys.argv[0], *argv]
        args = parse_args(argv)
        engine = {"kernel_manager_class": ipc_kernel_manager(kernel_zygote)}
        return _execute(args, str(request.get("nonce") or ""), engine)

    forkserver().serve(path, run)
    return 0


def _finish(reporter: CellReporter | None) -> None:
    if reporter is not None:
        reporter.close()
    sys.stdout.flush()


if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    exit_code = main()
    # Everything is written and the kernel is gone: skip the interpreter's teardown, which waits
    # seconds here for zmq contexts and channel threads to wind down (the execution's end waits
    # for this process to exit).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
