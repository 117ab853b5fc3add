"""The runtime plugin point: how an execution's commands are run on this machine.

A runtime follows jupyter-scheduler's ``ExecutionManager`` shape: the fixed :meth:`Runtime.process`
calls :meth:`~Runtime.before_start`, the abstract :meth:`~Runtime.execute` (which returns the exit
code), then :meth:`~Runtime.on_complete` or :meth:`~Runtime.on_failure`. The agent loop holds a
runtime (picked by ``AgentApp.runtime_class``); it never subclasses one.
"""

from __future__ import annotations

import secrets
import threading
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, MetaHasTraits
from traitlets.config import LoggingConfigurable

from jupyter_valohai.models import COMPLETE, ERROR, STOPPED

#: Why a run was asked to stop.
STOP_REQUESTED = "stop"  # the user asked (heartbeat or events answered ``stop: true``)
TIME_LIMIT = "time_limit"  # the spec's time limit passed
SHUTDOWN = "shutdown"  # the agent got SIGTERM/SIGINT
ABANDON = "abandon"  # the master answered 409: the attempt is no longer ours


class StopSignal:
    """A thread-safe, first-reason-wins stop request shared by the loop and the runtime."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


@dataclass
class Job:
    """Everything a runtime needs to run one attempt of an execution."""

    spec: dict[str, Any]
    repository: str
    inputs: str
    outputs: str
    config: str
    env: dict[str, str]
    #: ``emit(stream, line)`` receives the process output, line by line, as printed.
    emit: Callable[[str, str], None]
    #: Optional ``pump(stream, pipe)`` that reads a binary pipe until it closes (the log shipper's).
    pump: Callable[[str, Any], None] | None = None
    stop: StopSignal = field(default_factory=StopSignal)
    #: A per-attempt secret marking the notebook runner's progress lines (``agent.nbrun``).
    progress_nonce: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    @property
    def time_limit(self) -> float:
        return float(self.spec.get("time_limit") or 0)


@dataclass
class Result:
    """How an attempt ended: a final status for the master, its exit code and a message."""

    status: str
    exit_code: int | None
    message: str = ""


class _RuntimeMeta(MetaHasTraits, ABCMeta):
    """Lets a traitlets configurable be an abstract base class too."""


class Runtime(LoggingConfigurable, metaclass=_RuntimeMeta):
    """Run an execution's commands (and, for a notebook step, papermill) to completion."""

    stop_grace_seconds = Float(
        10.0, help="Seconds between SIGTERM and SIGKILL when stopping an execution."
    ).tag(config=True)

    def process(self, job: Job) -> Result:
        """Run ``job`` through the life cycle; never raises for a failing user program."""
        try:
            self.before_start(job)
            exit_code = self.execute(job)
        except Exception as exc:
            self.log.exception("Execution %s failed in the runtime", job.id)
            result = Result(ERROR, None, f"The runtime failed: {exc}")
            self.on_failure(job, result)
            return result
        result = self.result_for(job, exit_code)
        if result.status == COMPLETE:
            self.on_complete(job, result)
        else:
            self.on_failure(job, result)
        return result

    def open(self) -> None:
        """Get ready to run executions (e.g. warm things up); the default does nothing."""

    def close(self) -> None:
        """Release what :meth:`open` started; the default does nothing."""

    def before_start(self, job: Job) -> None:
        """Prepare to run (e.g. pull an image); the default does nothing."""

    @abstractmethod
    def execute(self, job: Job) -> int:
        """Run the job's commands; return the exit code (negative: killed by that signal)."""

    def on_failure(self, job: Job, result: Result) -> None:
        self.log.info("Execution %s ended: %s (%s)", job.id, result.status, result.message)

    def on_complete(self, job: Job, result: Result) -> None:
        self.log.info("Execution %s complete", job.id)

    def stop(self, job: Job, reason: str = STOP_REQUESTED) -> None:
        """Ask the running job to stop; ``execute`` sees it and terminates the process."""
        job.stop.set(reason)

    def result_for(self, job: Job, exit_code: int) -> Result:
        """Map an exit code and the stop reason (if any) to a final status."""
        reason = job.stop.reason
        if reason == STOP_REQUESTED:
            return Result(STOPPED, exit_code, "Stopped on request.")
        if reason == SHUTDOWN:
            return Result(STOPPED, exit_code, "Stopped: the agent running it was shut down.")
        if reason == ABANDON:
            return Result(STOPPED, exit_code, "Abandoned: the attempt lost its lease.")
        if reason == TIME_LIMIT:
            return Result(
                ERROR, exit_code, f"Stopped: the time limit of {job.time_limit:g} s was exceeded."
            )
        if exit_code == 0:
            return Result(COMPLETE, 0, "")
        if exit_code < 0:
            return Result(ERROR, exit_code, f"The process was killed by signal {-exit_code}.")
        return Result(ERROR, exit_code, f"The process exited with code {exit_code}.")
