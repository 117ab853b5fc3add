"""jupyter-valohai: a self-hosted, Jupyter-native ML execution platform speaking Valohai's API."""

from __future__ import annotations

__version__ = "0.1.0"
