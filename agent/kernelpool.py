"""Warm notebook runners: a papermill process with its kernel started ahead of the execution.

Most of a small notebook's time under bare papermill is starting Python, importing papermill and
starting a kernel (~3 s here). A :class:`KernelPool` keeps ``size`` runners
(``python nbrun.py --warm KERNEL``) that did all of that and wait, with a live kernel, for one
request on stdin. The local runtime takes one for a notebook step, writes the request (the same
arguments a cold runner gets, the execution's environment, the progress nonce) and from then on
treats it like the process it would have started: same pipes, same process group, same stop.

Each runner serves exactly one execution and its kernel dies with it: nothing one notebook did is
seen by the next. The pool refills when told (:meth:`KernelPool.replenish`, after an execution
ends) rather than as soon as a runner is taken, so a warming runner does not compete for the CPU
with the notebook that is running. A runner that dies while waiting is dropped; an execution that
finds no ready runner starts a cold one, as before.

Runners start from a persistent thread of the pool: ``PR_SET_PDEATHSIG`` fires when the thread
that forked the child ends, not the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from . import nbrun

log = logging.getLogger(__name__)


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class KernelPool:
    """Keep up to ``size`` warm notebook runners for ``kernel`` kernels."""

    def __init__(
        self,
        env: dict[str, str],
        size: int = 1,
        kernel: str = "python3",
        python: str = sys.executable,
        start_timeout: float = 60.0,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.size = size
        self.kernel = kernel
        self.argv = [python, os.path.abspath(nbrun.__file__), "--warm", kernel]
        self.start_timeout = start_timeout
        self.preexec_fn = preexec_fn
        self.cwd = tempfile.gettempdir()
        self._ready: list[subprocess.Popen] = []
        self._cond = threading.Condition()
        self._wanted = False
        self._closed = False
        self._failures = 0
        self._thread = threading.Thread(target=self._fill, name="kernel-pool", daemon=True)

    def start(self) -> KernelPool:
        """Start warming the first runners in the background."""
        with self._cond:
            self._wanted = True
        self._thread.start()
        return self

    def take(self) -> subprocess.Popen | None:
        """A warm runner waiting for its request (its own process group), or None."""
        with self._cond:
            while self._ready:
                proc = self._ready.pop(0)
                if proc.poll() is None:
                    return proc
                log.info("A warm notebook runner exited while waiting (code %s)", proc.returncode)
        return None

    def ready(self) -> int:
        """How many runners are warm right now."""
        with self._cond:
            return sum(1 for p in self._ready if p.poll() is None)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the pool is full (for benchmarks and tests); tell whether it is."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._ready) < self.size:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._cond.wait(left)
        return True

    def replenish(self) -> None:
        """Warm runners up to ``size`` again (in the background)."""
        with self._cond:
            self._wanted = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop warming and end the waiting runners (each with its kernel)."""
        with self._cond:
            self._closed = True
            waiting, self._ready = self._ready, []
            self._cond.notify_all()
        for proc in waiting:
            self._end(proc)
        if self._thread.is_alive():
            self._thread.join(self.start_timeout + 5)

    @staticmethod
    def send(proc: subprocess.Popen, args: list[str], env: dict[str, str], nonce: str) -> None:
        """Hand ``proc`` its one request; raise OSError if it is gone."""
        request = {"args": args, "env": env, "nonce": nonce}
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
        proc.stdin.close()

    # --- the warming thread ---------------------------------------------------------------------

    def _fill(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if len(self._ready) >= self.size:
                        self._wanted = False  # full: wait for the next replenish()
                    elif self._wanted:
                        break
                    self._cond.wait()
            proc = self._spawn()
            with self._cond:
                if proc is not None and not self._closed:
                    self._ready.append(proc)
                    self._cond.notify_all()
                    log.info("Warm notebook runner ready (pid %d)", proc.pid)
                    continue
            if proc is not None:  # closed while it warmed
                self._end(proc)
                return
            self._failures += 1
            if self._failures >= 3:
                log.warning("Warm notebook runners keep failing; notebooks start cold")
                return
            time.sleep(1.0)

    def _spawn(self) -> subprocess.Popen | None:
        try:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=self.preexec_fn,
            )
        except OSError as exc:
            log.warning("Could not start a warm notebook runner: %s", exc)
            return None
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.start_timeout
        while not self._closed:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(min(left, 0.5), 0))
            if readable:
                # Nothing else is printed before the request, so this reads the one line only.
                line = proc.stdout.readline()
                if line.strip() == nbrun.WARM_READY.encode():
                    self._failures = 0
                    return proc
                break
            if left <= 0 or proc.poll() is not None:
                break
        if not self._closed:
            err = b""
            if proc.poll() is not None and proc.stderr is not None:
                err = proc.stderr.read()[-2000:]
            log.warning(
                "A warm notebook runner did not get ready: %s", err.decode("utf-8", "replace")
            )
        self._end(proc)
        return None

    def _end(self, proc: Any) -> None:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGTERM)  # it shuts its kernel down
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                proc.wait(5)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
