"""``jupyter valohai agent``: claim executions from a master and run them on this machine.

The worker-group token comes from ``VH_AGENT_TOKEN`` or ``--token-file``, never from the command
line (it would show in ``ps``), and is never logged.

Signals: the first SIGTERM or SIGINT stops claiming. An idle agent exits at once (an in-flight
claim is dropped; the master re-queues anything it handed out through the lease reaper). A running
execution is stopped like a user stop (SIGTERM to its process group, SIGKILL after
``stop_grace_seconds``), its outputs are uploaded and it is reported ``stopped`` with a message
saying the agent was shut down; then the agent exits. Executions are not handed back for retry:
the protocol has no such call, and a stop is what the person shutting the worker down asked for.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
from typing import Any

from traitlets import Bool, Enum, Float, Int, List, Type, Unicode, default
from traitlets.config import Application

from jupyter_valohai import __version__

from .runtimes import select_runtime
from .runtimes.base import Runtime
from .runtimes.docker import DockerRuntime
from .runtimes.local import LocalRuntime


class AgentApp(Application):
    """Run an agent that claims and runs executions from a jupyter-valohai master."""

    name = "jupyter-valohai-agent"
    version = __version__
    description = (
        "Claim executions from a jupyter-valohai master and run them on this machine. "
        "The worker-group token is read from $VH_AGENT_TOKEN or --token-file."
    )
    classes = [LocalRuntime, DockerRuntime]
    aliases = {
        "master-url": "AgentApp.master_url",
        "work-dir": "AgentApp.work_dir",
        "name": "AgentApp.agent_name",
        "log-level": "Application.log_level",
        "token-file": "AgentApp.token_file",
        "runtime": "AgentApp.runtime",
    }
    flags = {
        "once": ({"AgentApp": {"once": True}}, "Run one execution, then exit."),
        "keep-work-dirs": (
            {"AgentApp": {"keep_work_dirs": True}},
            "Keep each execution's directory after it ends.",
        ),
    }

    master_url = Unicode(
        help="Base URL of the master ($VH_MASTER_URL; default http://127.0.0.1:8780)."
    ).tag(config=True)
    token_file = Unicode(
        "", help="File holding the worker-group token (used when $VH_AGENT_TOKEN is unset)."
    ).tag(config=True)
    work_dir = Unicode(
        help="Directory for execution files ($VH_AGENT_WORK_DIR; default "
        "~/.cache/jupyter-valohai/agent)."
    ).tag(config=True)
    # Application.name is the program's name (config file, logger), so the agent's is agent_name.
    agent_name = Unicode(help="Name this agent reports to the master (default: hostname-pid).").tag(
        config=True
    )
    runtime = Enum(
        ["auto", "docker", "local"],
        help="Where executions run: 'docker' (containers; fails when no engine answers), 'local' "
        "(subprocesses of the agent) or 'auto' (Docker when an engine answers, else local). "
        "Default: $VH_AGENT_RUNTIME, else 'docker' (the local fallback only when configured; "
        "`jupyter valohai up` configures 'auto').",
    ).tag(config=True)
    runtime_class = Type(
        default_value=None,
        klass=Runtime,
        allow_none=True,
        help="A runtime class (a subclass of agent.runtimes.base.Runtime); overrides --runtime.",
    ).tag(config=True)
    stop_grace_seconds = Float(
        10.0, help="Seconds between SIGTERM and SIGKILL when stopping an execution."
    ).tag(config=True)
    claim_wait = Float(25.0, help="Seconds one claim long-polls the master (at most 30).").tag(
        config=True
    )
    log_flush_interval = Float(
        0.02, help="Seconds a log line waits for others before it is sent."
    ).tag(config=True)
    log_batch_bytes = Int(64 * 1024, help="A log batch of this many bytes is sent at once.").tag(
        config=True
    )
    allowed_input_networks = List(
        Unicode(),
        help="CIDRs http(s) inputs may reach although they are loopback, private, link-local or "
        "otherwise not public (by default none: such inputs are refused).",
    ).tag(config=True)
    input_cache_dir = Unicode(
        help="Directory of the input cache (default: .input-cache in the work directory)."
    ).tag(config=True)
    input_cache_bytes = Int(
        10 * 1024**3, help="Size bound of the input cache; least recently used files go first."
    ).tag(config=True)
    instance_id = Unicode(
        help="The provider's id of this machine, process or pod ($VH_AGENT_INSTANCE_ID); lets "
        "the master's scaler tell which worker runs where."
    ).tag(config=True)
    gpus = Int(
        help="GPUs this worker offers ($VH_AGENT_GPUS; default: the NVIDIA devices in /dev)."
    ).tag(config=True)
    self_upgrade = Bool(
        False,
        help="Between executions, install the master's newer agent release into this venv and "
        "restart (set by the bootstrap script; never for a development install).",
    ).tag(config=True)
    once = Bool(False, help="Run one execution, then exit (for tests).").tag(config=True)
    keep_work_dirs = Bool(False, help="Keep each execution's directory after it ends.").tag(
        config=True
    )

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    @default("master_url")
    def _default_master_url(self) -> str:
        return os.environ.get("VH_MASTER_URL", "http://127.0.0.1:8780")

    @default("runtime")
    def _default_runtime(self) -> str:
        return os.environ.get("VH_AGENT_RUNTIME", "").strip() or "docker"

    @default("work_dir")
    def _default_work_dir(self) -> str:
        return os.environ.get("VH_AGENT_WORK_DIR") or os.path.expanduser(
            "~/.cache/jupyter-valohai/agent"
        )

    @default("instance_id")
    def _default_instance_id(self) -> str:
        return os.environ.get("VH_AGENT_INSTANCE_ID", "")

    @default("gpus")
    def _default_gpus(self) -> int:
        value = os.environ.get("VH_AGENT_GPUS", "").strip()
        if value.isdigit():
            return int(value)
        try:
            return sum(1 for n in os.listdir("/dev") if re.fullmatch(r"nvidia[0-9]+", n))
        except OSError:
            return 0

    @default("agent_name")
    def _default_agent_name(self) -> str:
        return f"{socket.gethostname()}-{os.getpid()}"

    def read_token(self) -> str:
        token = os.environ.get("VH_AGENT_TOKEN", "").strip()
        if not token and self.token_file:
            with open(os.path.expanduser(self.token_file)) as f:
                token = f.read().strip()
        return token

    def start(self) -> None:
        from jupyter_valohai.errors import ValohaiError
        from jupyter_valohai.netguard import NetGuard

        from .cache import InputCache, InputFetcher
        from .client import AgentClient
        from .loop import AgentLoop

        # Module loggers (agent.client, agent.io, ...) share the app's handlers and level.
        package_log = logging.getLogger("agent")
        package_log.handlers = list(self.log.handlers)
        package_log.setLevel(self.log.getEffectiveLevel())
        package_log.propagate = False

        token = self.read_token()
        if not token:
            self.log.critical("No worker-group token: set $VH_AGENT_TOKEN or pass --token-file.")
            self.exit(2)
        os.makedirs(self.work_dir, exist_ok=True)
        client = AgentClient(self.master_url, token)
        try:
            guard = NetGuard.from_strings(self.allowed_input_networks)
        except ValohaiError as exc:
            self.log.critical("%s", exc)
            self.exit(2)
        cache_dir = self.input_cache_dir or os.path.join(self.work_dir, ".input-cache")
        fetcher = InputFetcher(guard, InputCache(cache_dir, self.input_cache_bytes))
        try:
            runtime = select_runtime(self)
        except ValohaiError as exc:
            self.log.critical("%s", exc)
            self.exit(2)
        runtime_class = type(runtime)
        loop = AgentLoop(
            parent=self,
            client=client,
            runtime=runtime,
            work_dir=self.work_dir,
            name=self.agent_name,
            claim_wait=self.claim_wait,
            log_flush_interval=self.log_flush_interval,
            log_batch_bytes=self.log_batch_bytes,
            keep_work_dirs=self.keep_work_dirs,
            input_fetcher=fetcher,
            instance_id=self.instance_id,
            gpus=self.gpus,
            self_upgrade=self.self_upgrade,
        )

        def on_signal(signum: int, frame: Any) -> None:
            self.log.info("Got %s: shutting down", signal.Signals(signum).name)
            loop.request_shutdown(signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.log.info(
            "Agent %s (%s runtime) serving %s; work dir %s",
            self.agent_name,
            runtime_class.__name__,
            self.master_url,
            self.work_dir,
        )
        runtime.open()
        try:
            code = loop.run(once=self.once)
        finally:
            runtime.close()
            client.close()
        self.log.info("Agent %s stopped", self.agent_name)
        sys.exit(code)


main = launch_new_instance = AgentApp.launch_instance

if __name__ == "__main__":
    main()
