"""The ``local`` target: endpoint images run on this machine's Docker engine, ports on 127.0.0.1.

With no engine answering, the endpoint runs as a process from the built context instead (the
server command, or the small WSGI server, with this master's Python). Readiness: the server
answers an HTTP request (any status) on its port. Containers are unprivileged: all capabilities
dropped, no new privileges, user 65534.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from jupyter_valohai.processes import die_with_parent

from .base import DeployFailed, DeploymentTarget, Emit, EndpointSpec, Health

LABEL = "org.jupyter-valohai.endpoint"
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
LABEL_OWNER = "org.jupyter-valohai.endpoint-owner"  # the data dir of the master that ran it


def engine() -> Any:
    """A client of the local Docker engine, or None when none answers."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
        return client
    except Exception:  # any failure means "no engine"
        return None


def answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers ``GET /`` at host:port (any status counts)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def limits(resources: dict[str, Any]) -> dict[str, Any]:
    """valohai.yaml endpoint resources (cpu in vCPUs, memory in MB; ``max`` is the limit)."""
    out: dict[str, Any] = {}
    cpu = (resources.get("cpu") or {}).get("max")
    memory = (resources.get("memory") or {}).get("max")
    if cpu:
        out["nano_cpus"] = int(float(cpu) * 1e9)
    if memory:
        out["mem_limit"] = f"{int(memory)}m"
    return out


class LocalTarget(DeploymentTarget):
    kind = "local"
    needs_registry = False

    def __init__(self, name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(name, options)
        #: endpoint id -> state of the processes this master started (they end with it)
        self.processes: dict[str, dict[str, Any]] = {}

    @property
    def ready_timeout(self) -> float:
        return float(self.options.get("ready_timeout", 120))

    # --- deploy ---------------------------------------------------------------------------------

    def deploy(self, spec: EndpointSpec, emit: Emit) -> dict[str, Any]:
        client = engine()
        if client is None:
            return self._deploy_process(spec, emit)
        try:
            return self._deploy_container(client, spec, emit)
        finally:
            client.close()

    def _deploy_container(self, client: Any, spec: EndpointSpec, emit: Emit) -> dict[str, Any]:
        import docker.errors

        port = spec.definition.port
        emit("status", f"Starting container of {spec.image}")
        try:
            container = client.containers.run(
                spec.image,
                detach=True,
                name=f"vh-{spec.deployment}-{spec.version}-{spec.definition.name}-"
                f"{spec.endpoint_id[-6:]}",
                ports={f"{port}/tcp": ("127.0.0.1", None)},
                environment={**spec.environment, "PORT": str(port)},
                labels={
                    LABEL: spec.endpoint_id,
                    LABEL_OWNER: str(self.options.get("owner", "")),
                    **spec.labels,
                },
                user="65534:65534",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
                **limits(spec.definition.resources),
            )
        except docker.errors.DockerException as exc:
            raise DeployFailed(f"The container did not start: {exc}") from exc
        state: dict[str, Any] = {"mode": "docker", "container": container.id, "host": "127.0.0.1"}
        deadline = time.monotonic() + self.ready_timeout
        while True:
            container.reload()
            if container.status in ("exited", "dead", "restarting"):
                tail = container.logs(tail=40).decode("utf-8", "replace")
                self.stop(state)
                raise DeployFailed(
                    f"The endpoint's server exited (code {container.attrs['State']['ExitCode']})"
                    f" before it answered on port {port}:\n{tail}",
                )
            bound = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
                f"{port}/tcp"
            )
            if bound:
                state["port"] = int(bound[0]["HostPort"])
                if answers("127.0.0.1", state["port"]):
                    emit("status", f"Endpoint ready on 127.0.0.1:{state['port']}")
                    return state
            if time.monotonic() > deadline:
                tail = container.logs(tail=40).decode("utf-8", "replace")
                self.stop(state)
                raise DeployFailed(
                    f"The endpoint did not answer on port {port} within "
                    f"{self.ready_timeout:.0f} s:\n{tail}",
                )
            time.sleep(0.2)

    def _deploy_process(self, spec: EndpointSpec, emit: Emit) -> dict[str, Any]:
        if not spec.context_dir:
            raise DeployFailed(
                "No Docker engine answers and the endpoint has no built context to run.",
                hint="Start dockerd, or rebuild the version.",
            )
        repo = os.path.join(spec.context_dir, "repository")
        port = free_port() if spec.definition.wsgi else spec.definition.port
        # The master's own environment holds its secrets: the endpoint gets a plain one.
        plain = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env = {**plain, **spec.environment, "PORT": str(port), "VH_WSGI_PORT": str(port)}
        if spec.definition.wsgi:
            env["VH_WSGI"] = spec.definition.wsgi
            argv = [sys.executable, os.path.join(spec.context_dir, "vh_serve.py")]
        else:
            argv = ["sh", "-c", spec.definition.server_command or ""]
        log_path = os.path.join(spec.context_dir, "endpoint.log")
        emit("status", "No Docker engine answers: running the endpoint as a local process")
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=repo,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # a killed master takes its endpoint processes along
            )
        state = {
            "mode": "process",
            "pid": proc.pid,
            "host": "127.0.0.1",
            "port": port,
            "log": log_path,
            "endpoint": spec.endpoint_id,
        }
        deadline = time.monotonic() + self.ready_timeout
        while not answers("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop(state)
                tail = "\n".join(self.logs(state, 40))
                raise DeployFailed(f"The endpoint's server did not answer on port {port}:\n{tail}")
            time.sleep(0.2)
        emit("status", f"Endpoint ready on 127.0.0.1:{port} (process {proc.pid})")
        self.processes[spec.endpoint_id] = state
        return state

    # --- the rest of the interface --------------------------------------------------------------

    def stop(self, state: dict[str, Any]) -> None:
        if state.get("mode") == "process":
            self.processes.pop(str(state.get("endpoint")), None)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(state["pid"]), signal.SIGTERM)
            return
        client = engine()
        if client is None or not state.get("container"):
            return
        try:
            import docker.errors

            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(state["container"]).remove(force=True)
        finally:
            client.close()

    def health(self, state: dict[str, Any]) -> Health:
        port = state.get("port")
        if state.get("mode") == "docker":
            client = engine()
            if client is None:
                return Health("unknown", "No Docker engine answers.")
            try:
                import docker.errors

                try:
                    container = client.containers.get(state["container"])
                except docker.errors.NotFound:
                    return Health("stopped", "The container is gone.")
                if container.status != "running":
                    return Health("failed", f"The container is {container.status}.")
            finally:
                client.close()
        elif state.get("mode") == "process":
            try:
                os.kill(int(state["pid"]), 0)
            except ProcessLookupError:
                return Health("stopped", "The process is gone.")
        if port and answers("127.0.0.1", int(port), timeout=10.0):
            return Health("ready", f"Answering on 127.0.0.1:{port}.")
        return Health("failed", f"Not answering on 127.0.0.1:{port}.")

    def logs(self, state: dict[str, Any], tail: int = 200) -> list[str]:
        if state.get("mode") == "process":
            try:
                with open(state["log"], errors="replace") as f:
                    return f.read().splitlines()[-tail:]
            except OSError:
                return []
        client = engine()
        if client is None:
            return []
        try:
            import docker.errors

            try:
                raw = client.containers.get(state["container"]).logs(tail=tail)
            except docker.errors.NotFound:
                return []
            return raw.decode("utf-8", "replace").splitlines()
        finally:
            client.close()

    def url(self, state: dict[str, Any]) -> str | None:
        port = state.get("port")
        return f"http://127.0.0.1:{port}/" if port else None
