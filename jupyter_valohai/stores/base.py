"""The artifact store interface: flat keys such as ``code/<sha256>.tgz`` mapped to bytes."""

from __future__ import annotations

import hashlib
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlparse

from ..errors import InvalidInput


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class UploadPart:
    """One part of a multipart direct upload: PUT bytes ``[offset, offset + size)`` to ``url``."""

    number: int
    offset: int
    size: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectUpload:
    """How an agent sends one object straight to the store instead of through the master.

    Either one request (``url``, ``method``, ``headers``) or, with an ``upload_id``, one PUT per
    part; the master then completes the upload from the part numbers and ETags the agent reports.
    """

    url: str = ""
    method: str = "PUT"
    headers: dict[str, str] = field(default_factory=dict)
    upload_id: str = ""
    parts: tuple[UploadPart, ...] = ()

    def answer(self, name: str) -> dict[str, Any]:
        """The ``uploads`` entry of outputs/prepare (docs/agent-protocol.md)."""
        if not self.upload_id:
            return {"name": name, "url": self.url, "method": self.method, "headers": self.headers}
        parts = [
            {
                "number": p.number,
                "offset": p.offset,
                "size": p.size,
                "url": p.url,
                "method": "PUT",
                "headers": p.headers,
            }
            for p in self.parts
        ]
        return {"name": name, "multipart": {"parts": parts}}


def split_url(url: str) -> tuple[str, str, dict[str, str]]:
    """Split ``scheme://bucket/prefix?opt=v`` into bucket, prefix (no slashes around) and options.

    Options carry endpoints, regions and sizes, never secrets: those come from the environment.
    """
    parsed = urlparse(url)
    if "@" in parsed.netloc:  # never echo it: the part before '@' may be a secret
        raise InvalidInput(
            f"Credentials do not belong in a {parsed.scheme}:// artifact store URL.",
            hint="Give them to the master through its environment (see jupyter_valohai.stores).",
        )
    if not parsed.netloc:
        raise InvalidInput(
            f"Artifact store URL {parsed.scheme}://... names no bucket.",
            hint=f"Use {parsed.scheme}://<bucket>/<optional prefix>.",
        )
    prefix = parsed.path.strip("/")
    if prefix:
        check_key(prefix)
    return parsed.netloc, prefix, dict(parse_qsl(parsed.query))


def int_option(options: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    """Return an integer store option (``?part_size=8388608``), refusing nonsense clearly."""
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise InvalidInput(
            f"Artifact store option {name}={raw!r} is not an integer >= {minimum}.",
            hint="Fix the query string of --store-url.",
        )
    return value


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
        return f"{self.url.split('?', 1)[0].rstrip('/')}/{check_key(key)}"

    def check(self) -> None:
        """Raise :class:`NotConfigured` unless the store answers and its bucket exists."""
        return None

    # --- direct transfer (optional: stores that cannot sign URLs stream through the master) ----

    def direct_upload(self, key: str, size: int) -> DirectUpload | None:
        """Return how a client may upload ``size`` bytes to ``key`` itself, or None to stream."""
        return None

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """Finish a multipart direct upload from its ``(part number, etag)`` pairs."""
        raise NotImplementedError(f"{type(self).__name__} makes no multipart uploads.")

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop the parts of an unfinished multipart direct upload (best effort)."""
        return None

    def download_url(self, key: str, filename: str) -> str | None:
        """Return a short-lived URL anyone may GET the object from, or None to stream it."""
        return None


class HashingReader:
    """Wrap a readable file: count and SHA-256 the bytes as a library reads them."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fp.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def stored(self, key: str) -> StoredObject:
        return StoredObject(key=key, size=self.size, sha256=self.digest.hexdigest())
