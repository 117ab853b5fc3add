"""Provider names -> provider classes, and one live provider object per name.

Built-in providers are modules of :mod:`master.scaling.providers`, imported only when a group uses
them (boto3, the Kubernetes client and the cloud SDKs load nothing until then). Others plug in by
name through the master's ``providers`` setting (``name -> "module:Class"``) or the
``jupyter_valohai.worker_group_providers`` entry-point group.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from importlib.metadata import entry_points
from typing import Any

from jupyter_valohai.errors import InvalidInput

from .providers.base import WorkerGroupProvider

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jupyter_valohai.worker_group_providers"

BUILTIN: dict[str, str] = {
    name: f"master.scaling.providers.{name}"
    for name in ("local", "static", "aws", "kubernetes", "azure", "gcp", "openstack")
}


def _load(path: str, name: str) -> type[WorkerGroupProvider]:
    """Import ``module:Class``, or a module holding a provider class whose ``name`` is ``name``."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    if attr:
        cls = getattr(module, attr)
        if not (inspect.isclass(cls) and issubclass(cls, WorkerGroupProvider)):
            raise TypeError(f"{path} is not a WorkerGroupProvider")
        return cls
    for value in vars(module).values():
        if (
            inspect.isclass(value)
            and issubclass(value, WorkerGroupProvider)
            and not inspect.isabstract(value)
            and getattr(value, "name", None) == name
        ):
            return value
    raise TypeError(f"{module_name} has no WorkerGroupProvider named {name!r}")


class ProviderRegistry:
    """Finds provider classes by name and keeps one instance of each (with its settings)."""

    def __init__(
        self, extra: dict[str, str] | None = None, settings: dict[str, dict] | None = None
    ) -> None:
        self.paths = dict(BUILTIN)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            self.paths.setdefault(ep.name, ep.value)
        self.paths.update(extra or {})
        self.settings = settings or {}
        self._instances: dict[str, WorkerGroupProvider] = {}

    def names(self) -> list[str]:
        return sorted(self.paths)

    def provider_class(self, name: str) -> type[WorkerGroupProvider]:
        """Return the class of provider ``name``; :class:`InvalidInput` if there is none."""
        path = self.paths.get(name)
        if not path:
            raise InvalidInput(
                f"Unknown worker-group provider {name!r}.",
                hint=f"Known providers: {', '.join(self.names())}.",
            )
        try:
            return _load(path, name)
        except (ImportError, AttributeError, TypeError) as exc:
            raise InvalidInput(
                f"The worker-group provider {name!r} cannot be loaded: {exc}.",
                hint="Install what it needs, or pick another provider.",
            ) from None

    def get(self, name: str) -> WorkerGroupProvider:
        """Return the live provider ``name`` (created on first use)."""
        if name not in self._instances:
            cls = self.provider_class(name)
            self._instances[name] = cls(self.settings.get(name))
        return self._instances[name]

    def loaded(self) -> dict[str, WorkerGroupProvider]:
        return dict(self._instances)

    async def close(self) -> None:
        for name, provider in list(self._instances.items()):
            try:
                await provider.close()
            except Exception:
                log.exception("closing provider %s failed", name)
        self._instances.clear()


def describe_provider(registry: ProviderRegistry, name: str) -> dict[str, Any]:
    cls = registry.provider_class(name)
    return {
        "name": name,
        "experimental": bool(cls.experimental),
        "expected_start_seconds": cls.expected_start_seconds,
    }
