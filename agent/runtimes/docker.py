"""The Docker runtime: each execution's commands, then its notebook, in a container of its image.

The execution's directories are bind-mounted where valohai-utils looks for them: ``repository/``
and ``outputs/`` read-write at ``/valohai/repository`` and ``/valohai/outputs``, ``inputs/`` and
``config/`` read-only, and the ``VH_*`` variables point there. Commands run in ``sh -e -c`` from
``/valohai/repository``; a notebook step then runs ``agent/nbrun.py`` (mounted read-only; the image
needs papermill) in a second container, which alone gets the progress nonce, as with the local
runtime's second subprocess.

Containers are never privileged: every capability is dropped, ``no-new-privileges`` is set, and
they run as a non-root user (the agent's own uid:gid, or nobody when the agent is root; the
writable directories are handed to that user first). ``docker-init`` is PID 1, so a stop reaches
the commands: ``docker stop`` with ``stop_grace_seconds`` (SIGTERM, then SIGKILL); the time limit
does the same. Each container carries this agent's labels and is removed when its run ends; ones
left by an agent that died are removed when an agent with the same work directory starts.

A missing image is pulled (progress as ``status`` log lines; ``spec["registry_auth"]`` is handed
to the engine as the pull's credentials and never logged); an image that cannot be had ends the
execution in ``error`` with a message saying so.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import posixpath
import threading
import time
from typing import Any

import docker
import docker.errors
import requests
from docker.types import DeviceRequest
from traitlets import Enum, Int, Unicode

from jupyter_valohai.errors import ServiceUnavailable, ValohaiError
from jupyter_valohai.models import ERROR

from .. import io as agent_io
from .. import nbrun
from ..logs import split_lines
from .base import TIME_LIMIT, Job, Result, Runtime
from .engine import ImageUnavailable, LogPipe, engine_client, ensure_image

LABEL = "org.jupyter-valohai"
LABEL_OWNER = f"{LABEL}.owner"  # the agent's work directory: its containers, across restarts
LABEL_EXECUTION = f"{LABEL}.execution"
LABEL_ATTEMPT = f"{LABEL}.attempt"
LABEL_ROLE = f"{LABEL}.role"  # "commands" or "notebook"
ROOT = "/valohai"
NBRUN = "/opt/jupyter-valohai/nbrun.py"
NOBODY = "65534:65534"
POLL = 0.1
NOTEBOOK_NEEDS = "notebook steps need an image with python3 and papermill."


class DockerRuntime(Runtime):
    """Run executions in containers of their images on a Docker engine."""

    docker_host = Unicode(
        "", help="The engine's URL (default: $DOCKER_HOST, else the local socket)."
    ).tag(config=True)
    user = Unicode(
        "",
        help="uid:gid the containers run as (never root). Default: the agent's own, or "
        f"{NOBODY} (nobody) when the agent runs as root.",
    ).tag(config=True)
    default_image = Unicode("", help="Image for executions that name none.").tag(config=True)
    pull = Enum(
        ["missing", "always", "never"],
        "missing",
        help="When to pull the image: when it is not on this machine, every time, or never.",
    ).tag(config=True)
    network_mode = Unicode(
        "", help="Network of the containers (e.g. 'none'); default: the engine's default bridge."
    ).tag(config=True)
    pids_limit = Int(4096, help="Most processes one container may run (0: no limit).").tag(
        config=True
    )
    owner = Unicode(
        "", help="Value of the containers' owner label (the agent sets its work directory)."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = engine_client(self.docker_host)
                self._client.ping()
            except (docker.errors.DockerException, requests.RequestException) as exc:
                self._client = None
                raise ServiceUnavailable(
                    f"No Docker engine answers ({exc}).",
                    hint="Start dockerd, set $DOCKER_HOST, or run the agent with --runtime local.",
                ) from exc
        return self._client

    def _labels(self) -> dict[str, str]:
        return {LABEL_OWNER: self.owner or "jupyter-valohai"}

    def remove_orphans(self) -> int:
        """Remove containers this agent's work directory left behind; return how many."""
        filters = {"label": f"{LABEL_OWNER}={self._labels()[LABEL_OWNER]}"}
        removed = 0
        for container in self.client.containers.list(all=True, filters=filters):
            self.log.info("Removing container %s left by an earlier run", container.name)
            try:
                container.remove(force=True)
                removed += 1
            except docker.errors.NotFound:
                pass
        return removed

    # --- the life cycle ------------------------------------------------------------------------

    def process(self, job: Job) -> Result:
        try:
            self.prepare_image(job)
        except ValohaiError as exc:
            job.emit("status", exc.message)
            result = Result(ERROR, None, str(exc))
            self.on_failure(job, result)
            return result
        return super().process(job)

    def before_start(self, job: Job) -> None:
        self._inputs_json_inside(job)
        uid, gid = self.container_user().split(":")
        if os.getuid() == 0 and uid != "0":
            # The agent (root) made the tree; the container user must be able to write in it.
            for top in (job.repository, job.outputs):
                for dirpath, dirnames, filenames in os.walk(top):
                    names = [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]
                    for name in names:
                        os.lchown(name, int(uid), int(gid))

    @staticmethod
    def _inputs_json_inside(job: Job) -> None:
        """Point ``config/inputs.json``'s file paths at ``/valohai/inputs`` (valohai-utils opens
        them as given; the agent wrote this machine's paths)."""
        path = os.path.join(job.config, "inputs.json")
        if not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            inputs = json.load(f)
        host = os.path.abspath(job.inputs)
        for entry in inputs.values() if isinstance(inputs, dict) else ():
            for file in (entry or {}).get("files") or []:
                given = str(file.get("path") or "")
                if given and os.path.commonpath([host, os.path.abspath(given)]) == host:
                    rest = os.path.relpath(given, host).replace(os.sep, "/")
                    file["path"] = posixpath.join(ROOT, "inputs", rest)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(inputs, f, indent=2)

    def execute(self, job: Job) -> int:
        deadline = time.monotonic() + job.time_limit if job.time_limit > 0 else None
        commands = [str(c) for c in job.spec.get("commands") or []]
        code = 0
        if commands:
            code = self.run(job, "commands", ["sh", "-e", "-c", "\n".join(commands)], deadline)
        if code == 0 and job.spec.get("kind") == "notebook" and not job.stop.is_set():
            env = {nbrun.NONCE_ENV: job.progress_nonce}
            code = self.run(job, "notebook", self.notebook_argv(job), deadline, env)
        return code

    # --- image ---------------------------------------------------------------------------------

    def image_of(self, job: Job) -> str:
        image = str(job.spec.get("image") or self.default_image)
        if not image:
            raise ImageUnavailable(
                "The execution names no Docker image.",
                hint="Give the step an `image:` in valohai.yaml, or set "
                "DockerRuntime.default_image.",
            )
        return image

    def prepare_image(self, job: Job) -> None:
        """Make sure the job's image is on this machine, pulling it as ``pull`` says."""
        ensure_image(
            self.client,
            self.image_of(job),
            self.pull,
            job.emit,
            job.stop,
            job.spec.get("registry_auth") or None,  # credentials: never logged
        )

    # --- one container -------------------------------------------------------------------------

    def container_user(self) -> str:
        if self.user:
            if self.user.split(":")[0] in ("0", "root"):
                raise ValueError("DockerRuntime.user must not be root.")
            return self.user if ":" in self.user else f"{self.user}:{self.user}"
        uid, gid = os.getuid(), os.getgid()
        return NOBODY if uid == 0 else f"{uid}:{gid}"

    def notebook_argv(self, job: Job) -> list[str]:
        notebook = str(job.spec["notebook"]).replace(os.sep, "/")
        return [
            "python3",
            NBRUN,
            posixpath.join(ROOT, "repository", notebook),
            posixpath.join(ROOT, "outputs", posixpath.basename(notebook)),
            "--parameters-file",
            posixpath.join(ROOT, "config", "parameters.json"),
            "--cwd",
            posixpath.join(ROOT, "repository"),
        ]

    def container_env(self, job: Job, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The container's environment: the spec's variables and ``VH_*`` pointing in /valohai."""
        env = {"HOME": "/tmp"}  # the user has no home in most images; Jupyter writes under it
        env.update(agent_io.execution_env(job.spec, agent_io.Layout(ROOT), base={}))
        env.update(extra or {})
        return env

    def container_config(
        self, job: Job, role: str, argv: list[str], extra_env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The keyword arguments of ``containers.create`` for one run."""
        mounts = {
            job.repository: {"bind": f"{ROOT}/repository", "mode": "rw"},
            job.outputs: {"bind": f"{ROOT}/outputs", "mode": "rw"},
            job.inputs: {"bind": f"{ROOT}/inputs", "mode": "ro"},
            job.config: {"bind": f"{ROOT}/config", "mode": "ro"},
        }
        if role == "notebook":
            mounts[os.path.abspath(nbrun.__file__)] = {"bind": NBRUN, "mode": "ro"}
        config: dict[str, Any] = {
            "image": self.image_of(job),
            "command": argv,
            "entrypoint": [],
            "working_dir": f"{ROOT}/repository",
            "environment": self.container_env(job, extra_env),
            "volumes": mounts,
            "user": self.container_user(),
            "privileged": False,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "init": True,
            "stdin_open": False,
            "tty": False,
            "labels": {
                **self._labels(),
                LABEL_EXECUTION: job.id,
                LABEL_ATTEMPT: str(job.spec.get("attempt", "")),
                LABEL_ROLE: role,
            },
            "name": f"vh-{job.id}-{job.spec.get('attempt', 0)}-{role}",
            **resource_limits(job.spec.get("environment") or {}),
        }
        if self.pids_limit > 0:
            config["pids_limit"] = self.pids_limit
        if self.network_mode:
            config["network_mode"] = self.network_mode
        return config

    def run(
        self,
        job: Job,
        role: str,
        argv: list[str],
        deadline: float | None,
        extra_env: dict[str, str] | None = None,
    ) -> int:
        """Run one container to its end (or until stopped); return its exit code."""
        if job.stop.is_set():
            return 143
        config = self.container_config(job, role, argv, extra_env)
        with contextlib.suppress(docker.errors.NotFound):  # an earlier attempt's, same name
            self.client.containers.get(config["name"]).remove(force=True)
        container = self.client.containers.create(**config)
        readers: list[threading.Thread] = []
        try:
            try:
                container.start()
            except docker.errors.APIError as exc:  # e.g. the image has no such program
                job.emit("status", f"The container could not start {argv[0]}: {exc.explanation}")
                return 127
            for stream in ("stdout", "stderr"):
                chunks = self.client.api.logs(
                    container.id,
                    stdout=stream == "stdout",
                    stderr=stream == "stderr",
                    stream=True,
                    follow=True,
                )
                pipe = io.BufferedReader(LogPipe(chunks))
                reader = threading.Thread(
                    target=self._pump, args=(job, stream, pipe), name=f"logs-{stream}", daemon=True
                )
                reader.start()
                readers.append(reader)
            code = self._wait(job, container, deadline)
            for reader in readers:
                reader.join(10)
            self._report_oom(job, container)
            if role == "notebook" and code == 127:
                job.emit("status", f"Image {config['image']} has no python3: {NOTEBOOK_NEEDS}")
            return code
        finally:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                self.log.warning("Could not remove container %s: %s", container.name, exc)

    def _wait(self, job: Job, container: Any, deadline: float | None) -> int:
        result: dict[str, Any] = {}
        ended = threading.Event()

        def wait() -> None:
            try:
                result.update(container.wait())
            except Exception as exc:  # re-raised in the waiting thread below
                result["error"] = exc
            finally:
                ended.set()

        threading.Thread(target=wait, name="container-wait", daemon=True).start()
        stopping = False
        while not ended.wait(POLL):
            if deadline is not None and time.monotonic() >= deadline and not job.stop.is_set():
                self.log.info("Execution %s passed its time limit", job.id)
                job.stop.set(TIME_LIMIT)
            if job.stop.is_set() and not stopping:
                stopping = True
                self.log.info("Stopping execution %s (%s)", job.id, job.stop.reason)
                threading.Thread(target=self._stop, args=(container,), daemon=True).start()
        if "error" in result:
            raise result["error"]
        return int(result.get("StatusCode", -1))

    def _stop(self, container: Any) -> None:
        try:
            container.stop(timeout=math.ceil(self.stop_grace_seconds))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            self.log.warning("docker stop %s failed (%s); killing it", container.name, exc)
            with contextlib.suppress(docker.errors.APIError):
                container.kill()

    def _report_oom(self, job: Job, container: Any) -> None:
        try:
            container.reload()
        except docker.errors.APIError:
            return
        if container.attrs.get("State", {}).get("OOMKilled"):
            job.emit("status", "The container ran out of memory and was killed.")

    @staticmethod
    def _pump(job: Job, stream: str, pipe: io.BufferedReader) -> None:
        if job.pump is not None:
            job.pump(stream, pipe)
            return
        prefix = nbrun.marker(job.progress_nonce)
        with pipe:
            for raw in iter(pipe.readline, b""):
                for kind, message in split_lines(stream, raw.decode("utf-8", "replace"), prefix):
                    job.emit(kind, message)


def resource_limits(environment: dict[str, Any]) -> dict[str, Any]:
    """``containers.create`` limits from an environment's ``cpus``, ``memory_mb`` and ``gpus``."""
    limits: dict[str, Any] = {}
    if environment.get("cpus"):
        limits["nano_cpus"] = int(float(environment["cpus"]) * 1e9)
    if environment.get("memory_mb"):
        limits["mem_limit"] = f"{int(environment['memory_mb'])}m"
    if environment.get("gpus"):
        gpus = int(environment["gpus"])
        limits["device_requests"] = [DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    return limits
