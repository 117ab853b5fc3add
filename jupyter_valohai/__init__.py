"""jupyter-valohai: a self-hosted, Jupyter-native ML execution platform speaking Valohai's API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext jupyter_valohai``: the ``%valohai`` magics (imported only by IPython)."""
    from .magics import load_ipython_extension as load

    load(ip)


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """The Jupyter server extension (imported only by a Jupyter server)."""
    from .serverext import ValohaiExtension

    return [{"module": "jupyter_valohai.serverext", "app": ValohaiExtension}]
