"""Reusable fixtures: a real master started in-process on a free port.

``master_config`` builds the :class:`~master.config.MasterConfig` (real nx-27017 and redis-server
from the session fixtures, a fresh database, a ``file://`` store in tmp_path, short leases);
``master`` starts :func:`master.server.create_master` and serves it with Tornado's HTTP server,
yielding a :class:`mastertest.MasterClient` (``.url``, ``.api()``, ``.agent()``, ``.master``...).
"""

from __future__ import annotations

from mastertest import master, master_config, master_pair  # noqa: F401 (fixtures)
