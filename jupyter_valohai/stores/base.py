"""The artifact store interface: flat keys such as ``code/<sha256>.tgz`` mapped to bytes."""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import InvalidInput


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


def check_key(key: str) -> str:
    """Return ``key`` normalised, or refuse one that could leave the store's root."""
    if not key or "\x00" in key or "\\" in key:
        raise InvalidInput(f"Invalid artifact key {key!r}.", hint="Use a relative POSIX path.")
    norm = posixpath.normpath(key)
    if norm.startswith(("/", "../")) or norm in (".", "..") or norm != key.rstrip("/"):
        raise InvalidInput(
            f"Invalid artifact key {key!r}.",
            hint="Keys are relative paths without '.', '..' or repeated slashes.",
        )
    return norm


class ArtifactStore(ABC):
    """Where code archives, archived logs and outputs live. Methods block: run them in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    def put(self, key: str, fp: BinaryIO) -> StoredObject:
        """Store the rest of ``fp`` at ``key`` atomically (readers never see half an object)."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the object at ``key`` for reading; raise :class:`NotFound` when missing."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Tell whether an object is stored at ``key``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Return the size in bytes of the object at ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at ``key`` if it exists."""

    def uri(self, key: str) -> str:
        """Return the URI that names the object (shown in the API as a datum's ``uri``)."""
        return f"{self.url.rstrip('/')}/{check_key(key)}"
