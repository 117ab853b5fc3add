"""The master's artifact stores: the default one and the named ones projects may choose.

Projects name a store (``{"store": "team-a"}``); only the master's configuration maps names to
URLs (``--MasterApp.named_stores team-a=s3://bucket/prefix?credentials_env=TEAM_A``), so a
project can neither point the master at an arbitrary endpoint nor borrow credentials that were
not configured for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import InvalidInput, NotConfigured
from .base import ArtifactStore

STORE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class StoreSet:
    """The default store plus named ones, all opened at start-up (bad URLs fail early)."""

    def __init__(self, default: ArtifactStore, named: dict[str, str]) -> None:
        from . import open_store

        self.default = default
        self.named: dict[str, ArtifactStore] = {}
        for name, url in named.items():
            if not STORE_NAME.fullmatch(name):
                raise InvalidInput(
                    f"Bad artifact store name {name!r}.",
                    hint="Use lowercase letters, digits, '-' and '_'.",
                )
            self.named[name] = open_store(url)

    def get(self, name: str | None) -> ArtifactStore:
        """The store called ``name`` (None: the default)."""
        if not name:
            return self.default
        try:
            return self.named[name]
        except KeyError:
            raise NotConfigured(
                f"Artifact store {name!r} is no longer configured on the master.",
                hint="Add it back to MasterApp.named_stores.",
            ) from None

    def check(self) -> None:
        for store in (self.default, *self.named.values()):
            store.check()


def check_store_name(name: object, named: Iterable[str]) -> str | None:
    """Return the store name a project asks for (None: the default), or refuse it."""
    if name in (None, ""):
        return None
    names = set(named)
    if not isinstance(name, str) or name not in names:
        choices = ", ".join(sorted(names)) or "none are configured"
        raise InvalidInput(
            f"No artifact store named {name!r}.",
            hint=f"Pick one of the master's named stores ({choices}), or leave it out.",
        )
    return name
