"""The worker's input cache: files kept by SHA-256, so a repeated input is not downloaded again.

``<cache dir>/objects/<sha256>`` holds each file (read-only; hard-linked, or copied across file
systems, into an execution's ``inputs/``), ``<sha256>.json`` beside it its size and the object's
mtime (a changed object is dropped, not served), and its own mtime the last use (eviction is least
recently used, down to ``max_bytes``). ``urls/<sha256 of URL>.json`` remembers the ``ETag`` and
``Last-Modified`` a web server gave with a file, so the next fetch of that URL is a conditional
GET: a ``304`` answer transfers no body. Datums come with their SHA-256 from the master, so a
cached datum is not requested at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.netguard import NetGuard, url_for_message

from .client import CHUNK, AgentClient

log = logging.getLogger(__name__)

Json = dict[str, Any]


def _sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _copy_hashing(src: Iterator[bytes], dest: BinaryIO) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in src:
        dest.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


class InputCache:
    """Content-addressed files under ``root``, at most ``max_bytes`` of them."""

    def __init__(self, root: str, max_bytes: int) -> None:
        self.root = os.path.abspath(root)
        self.max_bytes = max_bytes
        self.objects = os.path.join(self.root, "objects")
        self.urls = os.path.join(self.root, "urls")
        os.makedirs(self.objects, exist_ok=True)
        os.makedirs(self.urls, exist_ok=True)

    def _object(self, sha256: str) -> str:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InvalidInput(f"Not a SHA-256: {sha256!r}.")
        return os.path.join(self.objects, sha256)

    def has(self, sha256: str) -> bool:
        """Whether an intact copy of ``sha256`` is here (a touched one is dropped)."""
        path = self._object(sha256)
        try:
            with open(path + ".json") as f:
                meta = json.load(f)
            st = os.stat(path)
        except (OSError, ValueError):
            return False
        if st.st_size != meta.get("size") or st.st_mtime_ns != meta.get("mtime_ns"):
            log.warning("Input cache: %s changed on disk; dropping it", sha256)
            self._drop(sha256)
            return False
        return True

    def place(self, sha256: str, dest: str) -> bool:
        """Put the cached file at ``dest`` (hard link, else copy) and mark it used; ``False`` if
        it is gone (evicted meanwhile by another agent sharing the directory)."""
        path = self._object(sha256)
        try:
            try:
                os.link(path, dest)
            except FileNotFoundError:
                raise
            except OSError:
                shutil.copyfile(path, dest)
            os.utime(path + ".json")
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            return False
        return True

    def temp(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self.root, prefix=".part-")

    def add(self, temp_path: str, sha256: str, size: int) -> bool:
        """Move a downloaded file in (or drop it if it could never fit); evict to the bound."""
        if size > self.max_bytes:
            return False
        path = self._object(sha256)
        os.chmod(temp_path, 0o444)
        os.replace(temp_path, path)
        meta = {"size": size, "mtime_ns": os.stat(path).st_mtime_ns}
        with open(path + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.replace(path + ".json.tmp", path + ".json")
        self.evict(keep=sha256)
        return True

    def _drop(self, sha256: str) -> None:
        path = self._object(sha256)
        for p in (path + ".json", path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)

    def entries(self) -> list[tuple[float, str, int]]:
        """``(last use, sha256, size)`` of every cached file."""
        out = []
        for name in os.listdir(self.objects):
            if len(name) != 64:
                continue
            try:
                used = os.stat(os.path.join(self.objects, name + ".json")).st_mtime
                size = os.stat(os.path.join(self.objects, name)).st_size
            except OSError:
                continue
            out.append((used, name, size))
        return sorted(out)

    def total(self) -> int:
        return sum(size for _, _, size in self.entries())

    def evict(self, keep: str = "") -> None:
        """Drop least recently used files until the total fits ``max_bytes``."""
        entries = self.entries()
        total = sum(size for _, _, size in entries)
        for _, sha256, size in entries:
            if total <= self.max_bytes:
                break
            if sha256 != keep:
                self._drop(sha256)
                total -= size

    # --- what a URL held last time -----------------------------------------------------------

    def url_info(self, url: str) -> Json:
        try:
            with open(os.path.join(self.urls, _sha256_of(url) + ".json")) as f:
                info = json.load(f)
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) and self.has(str(info.get("sha256", "-"))) else {}

    def remember_url(self, url: str, headers: Any, sha256: str) -> None:
        info = {
            "sha256": sha256,
            "etag": headers.get("ETag"),
            "modified": headers.get("Last-Modified"),
        }
        if not info["etag"] and not info["modified"]:
            return
        path = os.path.join(self.urls, _sha256_of(url) + ".json")
        with open(path + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(path + ".tmp", path)


@dataclass
class Fetched:
    size: int
    sha256: str
    transferred: int  # bytes that came over the network (0: from the cache)


class InputFetcher:
    """Fetches one input file: through the cache when there is one, and for URLs outside the
    master, only to addresses the :class:`NetGuard` allows."""

    def __init__(self, guard: NetGuard | None = None, cache: InputCache | None = None) -> None:
        self.guard = guard or NetGuard()
        self.cache = cache

    def fetch(self, client: AgentClient, label: str, entry: Json, url: str, dest: str) -> Fetched:
        """Put the file of ``entry`` (at ``url``) at ``dest``; say how many bytes came in."""
        known = entry.get("sha256")
        cache = self.cache
        if cache and known and cache.has(known) and cache.place(known, dest):
            return Fetched(os.path.getsize(dest), known, 0)
        return self._download(client, label, known, url, dest, cache)

    def _download(
        self,
        client: AgentClient,
        label: str,
        known: str | None,
        url: str,
        dest: str,
        cache: InputCache | None,
    ) -> Fetched:
        headers: dict[str, str] = {}
        info: Json = {}
        if not client.is_master(url):
            info = cache.url_info(url) if cache else {}
            if info.get("etag"):
                headers["If-None-Match"] = info["etag"]
            if info.get("modified"):
                headers["If-Modified-Since"] = info["modified"]
        fd, temp = (
            cache.temp()
            if cache
            else (os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), dest)
        )
        try:
            with os.fdopen(fd, "wb") as f:
                if client.is_master(url):
                    resp = client.request("GET", url, stream=True)
                else:
                    resp = self._get(client, label, url, headers)
                try:
                    if resp.status_code == 304 and cache and info:
                        if cache.place(info["sha256"], dest):
                            return Fetched(os.path.getsize(dest), info["sha256"], 0)
                        return self._download(client, label, known, url, dest, None)
                    size, sha256 = _copy_hashing(resp.iter_content(CHUNK), f)
                    response_headers = resp.headers
                finally:
                    resp.close()
            if known and known != sha256:
                raise InvalidInput(f"{label}has SHA-256 {sha256}, expected {known}.")
            if cache:
                if cache.add(temp, sha256, size):
                    if not client.is_master(url):
                        cache.remember_url(url, response_headers, sha256)
                    if not cache.place(sha256, dest):
                        return self._download(client, label, known, url, dest, None)
                else:
                    shutil.move(temp, dest)
            return Fetched(size, sha256, size)
        finally:
            if temp != dest and os.path.exists(temp):
                os.unlink(temp)

    def _get(self, client: AgentClient, label: str, url: str, headers: dict[str, str]) -> Any:
        import requests

        try:
            return self.guard.get(
                client.anonymous, url, label, headers=headers, timeout=client.timeout
            )
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise InvalidInput(
                f"{label}{url_for_message(url)} answered {status}.",
                hint="Check that the URL is right and reachable without credentials.",
            ) from None
        except requests.RequestException as exc:
            raise InvalidInput(
                f"{label}cannot download {url_for_message(url)}: {exc.__class__.__name__}.",
                hint="Check that the URL is right and the server is up.",
            ) from None
