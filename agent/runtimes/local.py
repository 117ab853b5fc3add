"""The local runtime: the execution's commands as a subprocess of the agent, no container.

Commands run in ``/bin/sh -e -c`` from the repository directory, in a session of their own so that
a stop reaches every process they started: SIGTERM to the process group, SIGKILL after
``stop_grace_seconds``. The time limit is enforced the same way. A notebook step then runs
papermill through the notebook runner (``python .../agent/nbrun.py``) in a second subprocess; the
executed notebook lands in ``outputs/``, cell output reaches the log as it is printed and each code
cell's start and end become ``progress`` events (the runner's marker lines, keyed by the job's
``progress_nonce``, which only that subprocess gets in its environment). With
``warm_notebook_runners`` (the default: one), that runner was started ahead with its kernel
(:mod:`agent.kernelpool`) and only gets the job's request; with none ready, a runner is forked from
a process that imported papermill ahead and forks its kernel from one that imported ipykernel
(``notebook_fork_servers``, :mod:`agent.zygotes`); failing both, it starts cold.
Whatever is left of the process group when the run ends is killed.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from traitlets import Bool, Int

from jupyter_valohai.processes import die_with_parent

from .. import nbrun
from ..io import scrubbed_env
from ..kernelpool import KernelPool
from ..logs import split_lines
from ..zygotes import NotebookZygotes
from .base import TIME_LIMIT, Job, Runtime

POLL = 0.05


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def notebook_argv(job: Job, python: str = sys.executable) -> list[str]:
    """Return the command line that runs the job's notebook with its parameters."""
    notebook = str(job.spec["notebook"])
    # Run as a script by its path, not ``-m agent.nbrun``: from the repository directory, a
    # user's own ``agent`` package would shadow ours.
    return [
        python,
        os.path.abspath(nbrun.__file__),
        os.path.join(job.repository, notebook),
        os.path.join(job.outputs, posixpath.basename(notebook.replace(os.sep, "/"))),
        "--parameters-file",
        os.path.join(job.config, "parameters.json"),
        "--cwd",
        job.repository,
    ]


class LocalRuntime(Runtime):
    """Run commands as local subprocesses (for machines with no Docker engine)."""

    agent_python_first = Bool(
        True,
        help="Put the agent's Python (its virtualenv's bin directory) first on the commands' "
        "PATH, so `python` and `pip` in a step mean the interpreter the agent runs on.",
    ).tag(config=True)

    warm_notebook_runners = Int(
        1,
        help="Notebook runners (papermill with a started kernel) kept warm for notebook steps; "
        "each serves one execution with a fresh kernel. 0: start every notebook cold.",
    ).tag(config=True)

    notebook_fork_servers = Bool(
        True,
        help="Fork notebook runners and their kernels from two processes that imported papermill "
        "and ipykernel ahead (each execution still gets a new runner and a new kernel), rather "
        "than start them from scratch, when no warm runner is ready.",
    ).tag(config=True)

    _pool: KernelPool | None = None
    _zygotes: NotebookZygotes | None = None

    def open(self) -> None:
        if self.warm_notebook_runners > 0 and self._pool is None:
            self._pool = KernelPool(
                self._with_path(scrubbed_env()),
                size=self.warm_notebook_runners,
                preexec_fn=die_with_parent,
            ).start()
        if self.notebook_fork_servers and self._zygotes is None:
            self._zygotes = NotebookZygotes(
                self._with_path(scrubbed_env()), preexec_fn=die_with_parent
            ).start()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._zygotes is not None:
            self._zygotes.close()
            self._zygotes = None

    @property
    def zygotes(self) -> NotebookZygotes | None:
        return self._zygotes

    @property
    def pool(self) -> KernelPool | None:
        return self._pool

    def execute(self, job: Job) -> int:
        deadline = time.monotonic() + job.time_limit if job.time_limit > 0 else None
        commands = [str(c) for c in job.spec.get("commands") or []]
        code = 0
        if commands:
            code = self.run(job, ["/bin/sh", "-e", "-c", "\n".join(commands)], deadline)
        if code == 0 and job.spec.get("kind") == "notebook" and not job.stop.is_set():
            env = {nbrun.NONCE_ENV: job.progress_nonce}
            try:
                code = self.run(job, notebook_argv(job), deadline, env, warm=True)
            finally:
                if self._pool is not None:
                    self._pool.replenish()
        return code

    def _with_path(self, env: dict[str, str]) -> dict[str, str]:
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.agent_python_first:
            bindir = os.path.dirname(sys.executable)
            path = env.get("PATH", os.defpath)
            if path.split(os.pathsep)[0] != bindir:
                env["PATH"] = bindir + os.pathsep + path
        return env

    def _warm_runner(self, job: Job, argv: list[str], env: dict[str, str]) -> Any:
        """A warm or forked runner that took the notebook's request, or None (start one cold)."""
        proc = self._pool.take() if self._pool is not None else None
        request_env = {k: v for k, v in env.items() if k != nbrun.NONCE_ENV}
        if proc is None:
            if self._zygotes is None:
                return None
            nonce = env.get(nbrun.NONCE_ENV, "")
            return self._zygotes.spawn(argv[2:], request_env, job.repository, nonce)
        try:
            KernelPool.send(proc, argv[2:], request_env, env.get(nbrun.NONCE_ENV, ""))
        except OSError as exc:
            self.log.info("A warm notebook runner was gone (%s); starting one cold", exc)
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        return proc

    def run(
        self,
        job: Job,
        argv: list[str],
        deadline: float | None,
        extra_env: dict[str, str] | None = None,
        warm: bool = False,
    ) -> int:
        """Run one process group to its end (or until stopped); return its exit code.

        ``warm``: ``argv`` is the notebook runner's; a warm one from the pool may run it.
        """
        if job.stop.is_set():  # stopped before it began: never start it
            return -signal.SIGTERM
        env = dict(job.env)
        env.update(extra_env or {})
        env = self._with_path(env)
        proc = self._warm_runner(job, argv, env) if warm else None
        if proc is None:
            proc = subprocess.Popen(
                argv,
                cwd=job.repository,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        readers = [
            threading.Thread(target=self._pump, args=(job, name, pipe), daemon=True)
            for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr))
        ]
        for reader in readers:
            reader.start()
        try:
            code = self._wait(job, proc, deadline)
        finally:
            # Background processes the commands left behind would hold the pipes open.
            _killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for reader in readers:
                reader.join(5)
        return code

    def _wait(self, job: Job, proc: Any, deadline: float | None) -> int:
        terminated_at: float | None = None
        while True:
            try:
                return proc.wait(POLL)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if deadline is not None and now >= deadline and not job.stop.is_set():
                self.log.info("Execution %s passed its time limit", job.id)
                job.stop.set(TIME_LIMIT)
            if not job.stop.is_set():
                continue
            if terminated_at is None:
                self.log.info("Stopping execution %s (%s)", job.id, job.stop.reason)
                _killpg(proc.pid, signal.SIGTERM)
                terminated_at = now
            elif now - terminated_at >= self.stop_grace_seconds:
                _killpg(proc.pid, signal.SIGKILL)

    @staticmethod
    def _pump(job: Job, stream: str, pipe: object) -> None:
        if job.pump is not None:
            job.pump(stream, pipe)
            return
        prefix = nbrun.marker(job.progress_nonce)
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            for kind, message in split_lines(stream, raw.decode("utf-8", "replace"), prefix):
                job.emit(kind, message)
        pipe.close()  # type: ignore[attr-defined]
