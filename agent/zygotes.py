"""The local runtime's fork servers for cold notebook runners (see :mod:`agent.forkserver`).

:class:`NotebookZygotes` starts two long-lived processes beside the agent: a runner zygote
(``nbrun.py --zygote``: papermill imported, nbformat's validator compiled) and a kernel zygote
(``forkserver.py kernel``: IPython and ipykernel imported). A notebook that finds no warm runner
gets a runner forked from the first, which forks its kernel from the second: every execution
still has its own runner and its own kernel, each a new process that ran nothing before, in the
execution's directory and environment; only the imports are done ahead.

Both start with the agent's environment without its secrets, from a thread that lives as long
as the runtime (``PR_SET_PDEATHSIG`` fires when the thread that forked the child ends), so they
die with the agent and every process forked from them dies with them. Until they are ready, or
if they fail, notebooks start cold as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from . import forkserver, nbrun

log = logging.getLogger(__name__)


class NotebookZygotes:
    """The runner and kernel fork servers of one local runtime."""

    def __init__(
        self,
        env: dict[str, str],
        python: str = sys.executable,
        start_timeout: float = 120.0,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.python = python
        self.start_timeout = start_timeout
        self.preexec_fn = preexec_fn
        self.dir = tempfile.mkdtemp(prefix="vh-zygotes-")  # 0700: only this user connects
        self.runner_socket = os.path.join(self.dir, "runner.sock")
        self.kernel_socket = os.path.join(self.dir, "kernel.sock")
        self._procs: list[subprocess.Popen] = []
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notebook-zygotes", daemon=True)

    def start(self) -> NotebookZygotes:
        self._thread.start()
        return self

    def ready(self) -> bool:
        """Whether the runner zygote answers (the kernel zygote may still be importing)."""
        return self._ready.is_set() and all(p.poll() is None for p in self._procs[:1])

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout) and self.ready()

    def spawn(
        self, args: list[str], env: dict[str, str], cwd: str, nonce: str
    ) -> forkserver.ForkedProcess | None:
        """A runner forked for ``nbrun.py ARGS`` (stdout and stderr piped), or None."""
        if not self.ready():
            return None
        request = {"args": args, "env": env, "cwd": cwd, "nonce": nonce}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            proc = forkserver.spawn(self.runner_socket, request, [devnull, out_w, err_w])
        except OSError as exc:
            log.info("Starting the notebook runner cold: %s", exc)
            os.close(out_r)
            os.close(err_r)
            return None
        finally:
            for fd in (devnull, out_w, err_w):
                os.close(fd)
        proc.stdout = os.fdopen(out_r, "rb")
        proc.stderr = os.fdopen(err_r, "rb")
        return proc

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the thread that starts (and so parents) the zygotes --------------------------------------

    def _run(self) -> None:
        here = os.path.dirname(os.path.abspath(nbrun.__file__))
        preload = self._kernel_preload()
        commands = [
            [self.python, f"{here}/nbrun.py", "--zygote", self.runner_socket, self.kernel_socket],
            [self.python, f"{here}/forkserver.py", "kernel", self.kernel_socket, *preload],
        ]
        try:
            for argv in commands:
                self._procs.append(
                    subprocess.Popen(
                        argv,
                        cwd=self.dir,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        start_new_session=True,
                        preexec_fn=self.preexec_fn,
                    )
                )
            if self._wait_line(self._procs[0]):
                self._ready.set()
                log.info("Notebook runner fork server ready (pid %d)", self._procs[0].pid)
            else:
                log.warning("The notebook runner fork server did not start; notebooks start cold")
            self._closed.wait()
        except OSError as exc:
            log.warning("Could not start the notebook fork servers: %s", exc)
        finally:
            self._ready.clear()
            for proc in self._procs:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()

    def _kernel_preload(self) -> list[str]:
        """This platform's IPython startup file loads the ``%valohai`` magics into every kernel
        (unless ``JUPYTER_VALOHAI_AUTOLOAD`` is off); their imports (jsonschema's format
        checkers compile a grammar) are a second of each kernel's start."""
        off = ("0", "false", "no", "off")
        if self.env.get("JUPYTER_VALOHAI_AUTOLOAD", "1").lower() in off:
            return []
        return ["jupyter_valohai.magics"]

    def _wait_line(self, proc: subprocess.Popen) -> bool:
        assert proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        while not self._closed.is_set() and proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
            if readable:
                return proc.stdout.readline().strip() == forkserver.READY.encode()
        return False
