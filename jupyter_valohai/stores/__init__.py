"""Artifact stores, picked by URL scheme: ``file://``, ``s3://``, ``azure://``, ``gs://``.

The cloud stores import their SDKs only when a URL names them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from ..errors import InvalidInput
from .base import ArtifactStore, DirectUpload, StoredObject, UploadPart
from .file import FileStore


def _s3() -> type[ArtifactStore]:
    from .s3 import S3Store

    return S3Store


def _azure() -> type[ArtifactStore]:
    from .azure import AzureBlobStore

    return AzureBlobStore


def _gcs() -> type[ArtifactStore]:
    from .gcs import GCSStore

    return GCSStore


STORE_CLASSES: dict[str, Callable[[], type[ArtifactStore]]] = {
    "file": lambda: FileStore,
    "s3": _s3,
    "azure": _azure,
    "gs": _gcs,
}


def open_store(url: str) -> ArtifactStore:
    """Return the artifact store for a URL such as ``s3://bucket/prefix?endpoint_url=...``."""
    scheme = urlparse(url).scheme or "file"
    try:
        cls = STORE_CLASSES[scheme]
    except KeyError:
        raise InvalidInput(
            f"No artifact store handles {scheme}:// URLs.",
            hint=f"Use one of: {', '.join(sorted(s + '://' for s in STORE_CLASSES))}.",
        ) from None
    return cls()(url)


__all__ = [
    "STORE_CLASSES",
    "ArtifactStore",
    "DirectUpload",
    "FileStore",
    "StoredObject",
    "UploadPart",
    "open_store",
]
