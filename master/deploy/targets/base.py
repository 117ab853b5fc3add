"""The one interface every deployment target implements (``local``, ``kubernetes``).

Targets are synchronous (the builder calls them in a worker thread) and keep no state of their
own: what they started is described by the ``state`` dict they return, which the master stores on
the endpoint and hands back to :meth:`stop`, :meth:`health` and :meth:`logs`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_valohai.errors import ValohaiError

from ..models import EndpointDef

Emit = Callable[[str, str], None]  # (stream, message)


class DeployFailed(ValohaiError):
    """The endpoint did not start or never became ready; ``message`` says why."""

    code = "deploy_failed"


@dataclass
class EndpointSpec:
    """What a target needs to run one endpoint of one deployment version."""

    endpoint_id: str
    project: str  # project name
    deployment: str  # deployment name
    version: str  # version name
    definition: EndpointDef
    image: str
    replicas: int = 1
    environment: dict[str, str] = field(default_factory=dict)
    #: registry credentials for pulling ``image`` (Kubernetes turns them into a pull secret)
    registry_auth: dict[str, str] | None = None
    #: a directory holding the built context (the process fallback runs from it)
    context_dir: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/managed-by": "jupyter-valohai",
            "valohai.com/deployment": self.deployment,
            "valohai.com/version": self.version,
            "valohai.com/endpoint": self.definition.name,
        }


@dataclass
class Health:
    state: str  # "ready", "starting", "failed", "stopped", "unknown"
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "detail": self.detail}


class DeploymentTarget(abc.ABC):
    """Runs endpoint images. ``options`` come from the master's ``deploy_targets`` setting."""

    kind: str = ""
    #: whether images must be in a registry the target can pull from (a cluster) or the
    #: builder's engine is enough (local)
    needs_registry: bool = False

    def __init__(self, name: str, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.options = dict(options or {})
        self.log = logging.getLogger(f"master.deploy.targets.{self.kind or name}")

    @abc.abstractmethod
    def deploy(self, spec: EndpointSpec, emit: Emit) -> dict[str, Any]:
        """Start the endpoint and wait until it is ready; return its state; else DeployFailed."""

    @abc.abstractmethod
    def stop(self, state: dict[str, Any]) -> None:
        """Stop what :meth:`deploy` started (idempotent)."""

    @abc.abstractmethod
    def health(self, state: dict[str, Any]) -> Health:
        """The endpoint's health as the target sees it now."""

    @abc.abstractmethod
    def logs(self, state: dict[str, Any], tail: int = 200) -> list[str]:
        """The endpoint's own log lines (the last ``tail``)."""

    def url(self, state: dict[str, Any]) -> str | None:
        """Where the target itself serves the endpoint, if it has such an address."""
        return None

    def switch_alias(
        self, deployment: str, alias: str, endpoint: str, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Point the alias of ``deployment``/``endpoint`` at the endpoint of ``state``.

        Local targets are switched by the master's front (it reads the alias from MongoDB):
        nothing to do here. Clusters re-point their own objects."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}
