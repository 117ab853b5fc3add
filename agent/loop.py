"""The agent loop: claim an execution, run it, report it; forever, or once.

While an execution runs, a heartbeat thread renews its lease every ``heartbeat_seconds`` of the
spec. ``stop: true`` in a heartbeat or events answer asks the runtime to stop (reported
``stopped``). Between executions the agent checks in (``POST /api/agent/worker``): a drained agent
claims nothing more until the drain is lifted (or its machine is stopped), and an agent older than
the master's release installs that release and restarts itself (with ``self_upgrade``).
A ``409`` from any fenced call means the attempt is no longer ours: the process is killed and
nothing more is uploaded or reported. Outputs are registered before the final status.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from typing import Any

from traitlets import Bool, Float, Instance, Int, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_valohai import __version__
from jupyter_valohai.errors import NotAuthenticated, StaleAttempt, ValohaiError
from jupyter_valohai.models import ERROR

from . import io, upgrade
from .cache import InputFetcher
from .client import AgentClient, MasterUnreachable
from .logs import LogShipper
from .runtimes.base import ABANDON, SHUTDOWN, STOP_REQUESTED, Job, Result, Runtime

Json = dict[str, Any]


class _Interrupted(Exception):
    """Raised by the signal handler to break out of an idle long poll."""


class AgentLoop(LoggingConfigurable):
    """Claim -> run -> report, holding one runtime and one protocol client."""

    client = Instance(AgentClient)
    runtime = Instance(Runtime)  # type: ignore[type-abstract]
    work_dir = Unicode(help="Directory under which each execution gets its own directory.")
    name = Unicode(help="This agent's name, shown by the master.")
    claim_wait = Float(25.0, help="Seconds a claim long-polls the master.")
    log_flush_interval = Float(0.02, help="Seconds a log line may wait for company.")
    log_batch_bytes = Int(64 * 1024, help="A log batch this large is sent at once.")
    keep_work_dirs = Bool(False, help="Keep each execution's directory after it ends.")
    input_fetcher = Instance(InputFetcher, allow_none=True, help="Input cache and SSRF guard.")
    max_backoff = Float(5.0, help="Longest pause between claims while the master is down.")
    status_retry_seconds = Float(
        60.0, help="How long the final status is retried while the master cannot be reached."
    )
    instance_id = Unicode(help="The provider's id of this machine (or process, or pod).")
    gpus = Int(0, help="GPUs this worker has (reported to the master).")
    self_upgrade = Bool(False, help="Install the master's newer agent release between executions.")
    drain_poll = Float(5.0, help="Seconds between check-ins while drained.")
    check_in_interval = Float(
        10.0,
        help="Right after an execution, the next claim goes without a check-in when the last "
        "one is younger than this (the claim itself marks the worker alive and refuses a "
        "drained one); an idle agent checks in before every claim.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker_id = uuid.uuid4().hex
        self.shutdown = threading.Event()
        self._job: Job | None = None
        self._idle = False
        self._checked_in = float("-inf")  # monotonic time of the last check-in
        self._ran = False  # the last claim brought an execution

    @property
    def worker(self) -> Json:
        return {
            "id": self.worker_id,
            "name": self.name,
            "version": __version__,
            "instance_id": self.instance_id,
            "gpus": self.gpus,
        }

    # --- the outer loop ------------------------------------------------------------------------

    def run(self, once: bool = False) -> int:
        """Claim and run executions until shut down (or after one, with ``once``)."""
        delay = 0.5
        while not self.shutdown.is_set():
            try:
                if self._check_in_due() and not self._check_in():
                    self.shutdown.wait(self.drain_poll)
                    continue
                spec = self._claim()
                self._ran = spec is not None
            except _Interrupted:
                break
            except (MasterUnreachable, NotAuthenticated, ValohaiError) as exc:
                self.log.warning("Claim failed (%s); retrying in %.1f s", exc, delay)
                self.shutdown.wait(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            delay = 0.5
            if spec is None:
                continue
            try:
                self.run_execution(spec)
            except Exception:  # the agent outlives any one execution: its lease lapses and the
                # master queues it again (at-least-once), while this agent claims the next one
                self.log.exception("Execution %s ended in an agent error", spec.get("id"))
            if once:
                break
        return 0

    def _check_in_due(self) -> bool:
        """Whether to check in before this claim: always, unless an execution just ended and
        the last check-in is recent (a busy agent then checks in every ``check_in_interval``;
        a claim that brings nothing, as a drained agent's does, makes the next one due)."""
        return not self._ran or time.monotonic() - self._checked_in >= self.check_in_interval

    def _check_in(self) -> bool:
        """Tell the master we are idle; return whether to claim (False while drained)."""
        answer = self.client.check_in(self.worker)
        self._checked_in = time.monotonic()
        if answer.get("drain"):
            if not getattr(self, "_drained", False):
                self.log.info("Drained by the master: claiming nothing more")
            self._drained = True
            return False
        self._drained = False
        release = answer.get("upgrade")
        if release and self.self_upgrade:
            upgrade.install_and_restart(self.client, release, self.log)
        return True

    def _claim(self) -> Json | None:
        self._idle = True
        try:
            if self.shutdown.is_set():
                raise _Interrupted
            return self.client.claim(self.worker, self.claim_wait)
        finally:
            self._idle = False

    def request_shutdown(self, signum: int | None = None) -> None:
        """Stop claiming; stop a running execution (reported ``stopped``). Signal-handler safe."""
        self.shutdown.set()
        job = self._job
        if job is not None:
            self.runtime.stop(job, SHUTDOWN)
        elif self._idle and signum is not None:
            raise _Interrupted

    # --- one execution -------------------------------------------------------------------------

    def run_execution(self, spec: Json) -> Result | None:
        """Run one claimed attempt to its end; return its result (``None`` if abandoned)."""
        eid, attempt = str(spec["id"]), int(spec["attempt"])
        self.log.info("Claimed execution %s attempt %d", eid, attempt)
        layout = io.Layout.create(self.work_dir, eid)
        job = Job(
            spec=spec,
            repository=layout.repository,
            inputs=layout.inputs,
            outputs=layout.outputs,
            config=layout.config,
            env=io.execution_env(spec, layout),
            emit=lambda s, m: None,
        )
        shipper = LogShipper(
            lambda events, metadata: self.client.events(eid, attempt, events, metadata),
            flush_interval=self.log_flush_interval,
            batch_bytes=self.log_batch_bytes,
            on_stop=lambda: self.runtime.stop(job, STOP_REQUESTED),
            on_stale=lambda: self._abandon(job, stale),
            progress_nonce=job.progress_nonce,
        ).start()
        job.emit, job.pump = shipper.write, shipper.pump
        done, stale = threading.Event(), threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(job, attempt, done, stale),
            name="heartbeat",
            daemon=True,
        )
        self._job = job
        if self.shutdown.is_set():
            job.stop.set(SHUTDOWN)
        heartbeat.start()
        try:
            result = self._run(job, layout)
            shipper.close()
            if stale.is_set():
                self.log.warning("Abandoned execution %s attempt %d", eid, attempt)
                return None
            self._report(job, attempt, layout, result, stale)
            return result
        except StaleAttempt:
            self.log.warning("Execution %s attempt %d is stale; abandoned", eid, attempt)
            return None
        finally:
            self._job = None
            done.set()
            shipper.close(5)
            heartbeat.join(5)
            if not self.keep_work_dirs:
                layout.remove()

    def _run(self, job: Job, layout: io.Layout) -> Result:
        try:
            io.fetch_code(self.client, job.spec, layout, self.input_fetcher)
            inputs = io.fetch_inputs(self.client, job.spec, layout, self.input_fetcher)
            io.write_config(job.spec, layout, inputs)
        except StaleAttempt:
            raise
        except Exception as exc:
            self.log.warning("Preparing execution %s failed: %s", job.id, exc)
            self.log.debug("%s", traceback.format_exc())
            job.emit("stderr", f"jupyter-valohai agent: {exc}\n")
            return Result(ERROR, None, f"Could not prepare the execution: {exc}")
        if job.stop.is_set():
            return self.runtime.result_for(job, 0)
        return self.runtime.process(job)

    def _report(
        self, job: Job, attempt: int, layout: io.Layout, result: Result, stale: threading.Event
    ) -> None:
        try:
            files = io.collect_outputs(layout.outputs)
            datums = io.upload_outputs(self.client, job.id, attempt, files)
            self.log.info("Execution %s: %d outputs registered", job.id, len(datums))
        except StaleAttempt:
            raise
        except Exception as exc:
            self.log.warning("Uploading outputs of %s failed: %s", job.id, exc)
            if result.status != ERROR:
                result = Result(ERROR, result.exit_code, f"Could not upload outputs: {exc}")
        if stale.is_set():
            raise StaleAttempt("abandoned while uploading outputs")
        give_up = time.monotonic() + self.status_retry_seconds
        while True:  # a master restarting must not cost the result of a finished run
            try:
                self.client.status(job.id, attempt, result.status, result.exit_code, result.message)
                break
            except MasterUnreachable:
                if time.monotonic() > give_up or stale.is_set():
                    raise
                self.shutdown.wait(1.0)
        self.log.info(
            "Execution %s attempt %d: %s %s", job.id, attempt, result.status, result.message
        )

    def _abandon(self, job: Job, stale: threading.Event) -> None:
        stale.set()
        self.runtime.stop(job, ABANDON)

    def _heartbeat(
        self, job: Job, attempt: int, done: threading.Event, stale: threading.Event
    ) -> None:
        interval = float(job.spec.get("heartbeat_seconds") or 2)
        while not done.wait(interval):
            try:
                answer = self.client.heartbeat(job.id, attempt)
            except StaleAttempt:
                self._abandon(job, stale)
                return
            except Exception as exc:
                self.log.warning("Heartbeat for %s failed: %s", job.id, exc)
                continue
            if answer.get("stop"):
                self.runtime.stop(job, STOP_REQUESTED)
