"""jupyter-valohai: a self-hosted, Jupyter-native ML execution platform speaking Valohai's API."""

from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """The Jupyter server extension (imported only by a Jupyter server)."""
    from .serverext import ValohaiExtension

    return [{"module": "jupyter_valohai.serverext", "app": ValohaiExtension}]
