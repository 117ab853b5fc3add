"""Artifact stores, picked by URL scheme (``file://`` now; others plug in the same way)."""

from __future__ import annotations

from urllib.parse import urlparse

from ..errors import InvalidInput
from .base import ArtifactStore, StoredObject
from .file import FileStore

STORE_CLASSES: dict[str, type[ArtifactStore]] = {"file": FileStore}


def open_store(url: str) -> ArtifactStore:
    """Return the artifact store for a URL such as ``file:///var/lib/valohai/artifacts``."""
    scheme = urlparse(url).scheme or "file"
    try:
        cls = STORE_CLASSES[scheme]
    except KeyError:
        raise InvalidInput(
            f"No artifact store handles {scheme}:// URLs.",
            hint=f"Use one of: {', '.join(sorted(s + '://' for s in STORE_CLASSES))}.",
        ) from None
    return cls(url)


__all__ = ["STORE_CLASSES", "ArtifactStore", "FileStore", "StoredObject", "open_store"]
