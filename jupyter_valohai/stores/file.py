"""``file://`` artifact store: a directory on the master's disk (the embedded default)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from ..errors import NotFound
from .base import ArtifactStore, StoredObject, check_key


class FileStore(ArtifactStore):
    """Objects are files under a root directory; writes go to a temporary file, then rename."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parsed = urlparse(url)
        self.root = os.path.realpath(unquote(parsed.path) if parsed.scheme else url)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        path = os.path.realpath(os.path.join(self.root, check_key(key)))
        if os.path.commonpath([path, self.root]) != self.root:
            raise NotFound(f"No artifact {key!r}.")
        return path

    def put(self, key: str, fp: BinaryIO) -> StoredObject:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: fp.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"No artifact {key!r}.") from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def size(self, key: str) -> int:
        try:
            return os.path.getsize(self._path(key))
        except FileNotFoundError:
            raise NotFound(f"No artifact {key!r}.") from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))
