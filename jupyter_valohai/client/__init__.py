"""The Python client of the master's API, sync (:class:`Client`) and async (:class:`AsyncClient`).

Both clients share every request and answer check (:mod:`.calls`); errors of the master arrive as
the matching :mod:`jupyter_valohai.errors` class, and a master that does not answer as
``ServiceUnavailable``.
"""

from __future__ import annotations

from .calls import Event
from .clients import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "Event"]
