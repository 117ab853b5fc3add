"""Runtimes: how an execution runs on this machine (``local`` subprocesses or ``docker``)."""

from __future__ import annotations

from typing import Any

from jupyter_valohai.errors import ServiceUnavailable

from .base import Runtime


def select_runtime(app: Any) -> Runtime:
    """Build the runtime ``app`` (an ``AgentApp``) is configured for.

    ``runtime_class`` wins when set; otherwise ``runtime``: ``docker`` needs an engine that
    answers, ``auto`` takes Docker when one answers and the local runtime when none does, and
    ``local`` never looks for one. A Docker runtime removes the containers an earlier agent on the
    same work directory left behind.
    """
    from .docker import DockerRuntime
    from .engine import engine_answers
    from .local import LocalRuntime

    kwargs = {"parent": app, "stop_grace_seconds": app.stop_grace_seconds}
    cls: type[Runtime]
    if app.runtime_class is not None:
        cls = app.runtime_class
    elif app.runtime == "local":
        cls = LocalRuntime
    else:
        docker_host = DockerRuntime(parent=app).docker_host
        if engine_answers(docker_host):
            cls = DockerRuntime
        elif app.runtime == "auto":
            app.log.info("No Docker engine answers; running executions locally")
            cls = LocalRuntime
        else:
            raise ServiceUnavailable(
                "The agent is set to the Docker runtime, but no Docker engine answers.",
                hint="Start dockerd (or set $DOCKER_HOST), or pass --runtime auto or "
                "--runtime local to run executions as local processes.",
            )
    if issubclass(cls, DockerRuntime):
        runtime: Runtime = cls(owner=app.work_dir, **kwargs)
        runtime.remove_orphans()  # type: ignore[attr-defined]
        return runtime
    return cls(**kwargs)
