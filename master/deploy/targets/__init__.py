"""Deployment targets by kind; the master's ``deploy_targets`` setting names and configures them."""

from __future__ import annotations

from typing import Any

from jupyter_valohai.errors import InvalidInput

from .base import DeployFailed, DeploymentTarget, EndpointSpec, Health

__all__ = ["DeployFailed", "DeploymentTarget", "EndpointSpec", "Health", "make_targets"]


def _kind(kind: str) -> type[DeploymentTarget]:
    if kind == "local":
        from .local import LocalTarget

        return LocalTarget
    if kind == "kubernetes":
        from .kubernetes import KubernetesTarget

        return KubernetesTarget
    raise InvalidInput(
        f"Unknown deployment target kind {kind!r}.", hint="Use 'local' or 'kubernetes'."
    )


def make_targets(
    settings: dict[str, dict[str, Any]], owner: str = ""
) -> dict[str, DeploymentTarget]:
    """``{name: {"kind": ..., option: value}}`` -> targets; ``local`` is always there.
    ``owner`` (the master's data dir) labels what local targets start."""
    targets: dict[str, DeploymentTarget] = {}
    for name, options in {"local": {"kind": "local"}, **settings}.items():
        opts = {"owner": owner, **dict(options or {})}
        targets[name] = _kind(str(opts.pop("kind", name)))(name, opts)
    return targets
