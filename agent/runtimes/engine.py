"""The Docker engine for the runtime: finding it, pulling images, reading a container's log.

A pull reports as ``status`` lines: its start, the bytes downloaded so far (every
``PULL_REPORT_SECONDS``), the digest, and its end; credentials go to the engine and nowhere else.
An image that cannot be had raises :class:`ImageUnavailable` with what the engine said and a hint.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import requests
from docker.utils import parse_repository_tag

from jupyter_valohai.errors import ValohaiError

from .base import StopSignal

PULL_REPORT_SECONDS = 2.0


class ImageUnavailable(ValohaiError):
    """The execution's image is not on this machine and could not be pulled."""

    code = "image_unavailable"


def engine_client(base_url: str = "", timeout: float = 60) -> docker.DockerClient:
    """Return a client of the engine at ``base_url`` (default: ``$DOCKER_HOST`` or the socket)."""
    if base_url:
        return docker.DockerClient(base_url=base_url, timeout=timeout)
    return docker.from_env(timeout=timeout)


def engine_answers(base_url: str = "", timeout: float = 3) -> bool:
    """Whether a Docker engine answers a ping at ``base_url`` (or the default one)."""
    try:
        client = engine_client(base_url, timeout)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.RequestException):
        return False
    finally:
        client.close()


def ensure_image(
    client: docker.DockerClient,
    image: str,
    policy: str,
    emit: Callable[[str, str], None],
    stop: StopSignal,
    auth: dict[str, str] | None = None,
) -> None:
    """Make sure ``image`` is on the engine; pull it (``policy``: missing, always or never),
    telling ``emit`` the progress as ``status`` lines. ``auth`` goes to the engine only."""
    if policy != "always":
        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            if policy == "never":
                raise ImageUnavailable(
                    f"Docker image {image!r} is not on this machine.",
                    hint="Build or load it on the worker, or let the agent pull "
                    "(DockerRuntime.pull).",
                ) from None
        except docker.errors.APIError as exc:
            raise ImageUnavailable(f"Docker image {image!r}: {exc.explanation}") from exc
    _pull(client, image, emit, stop, auth)


def _pull(
    client: docker.DockerClient,
    image: str,
    emit: Callable[[str, str], None],
    stop: StopSignal,
    auth: dict[str, str] | None,
) -> None:
    repository, tag = parse_repository_tag(image)
    emit("status", f"Pulling image {image}")
    started, last_report = time.monotonic(), 0.0
    layers: dict[str, tuple[int, int]] = {}
    try:
        stream = client.api.pull(
            repository, tag or "latest", stream=True, decode=True, auth_config=auth
        )
        for message in stream:
            if stop.is_set():  # the run is over before it began
                stream.close()
                return
            if message.get("error"):
                raise ImageUnavailable(
                    f"Could not pull Docker image {image!r}: {message['error']}",
                    hint=_pull_hint(),
                )
            status, layer = str(message.get("status", "")), str(message.get("id", ""))
            detail = message.get("progressDetail") or {}
            if status == "Downloading" and detail.get("total"):
                layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
            now = time.monotonic()
            if layers and now - last_report >= PULL_REPORT_SECONDS:
                done = sum(c for c, _ in layers.values())
                total = sum(t for _, t in layers.values())
                emit("status", f"Pulling {image}: {_mb(done)} of {_mb(total)} MB")
                last_report = now
            if status.startswith(("Digest:", "Status:")):
                emit("status", status)
    except docker.errors.APIError as exc:
        raise ImageUnavailable(
            f"Could not pull Docker image {image!r}: {exc.explanation or exc}",
            hint=_pull_hint(),
        ) from exc
    except requests.RequestException as exc:
        raise ImageUnavailable(
            f"Could not pull Docker image {image!r}: {exc}", hint=_pull_hint()
        ) from exc
    emit("status", f"Pulled {image} in {time.monotonic() - started:.1f} s")


class LogPipe(io.RawIOBase):
    """A binary pipe over the engine's log chunks, so ``readline`` gives whole lines."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except (StopIteration, requests.RequestException, docker.errors.DockerException):
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        closer = getattr(self._chunks, "close", None)
        if closer is not None:
            # The stream may already be gone with its container.
            with contextlib.suppress(Exception):
                closer()
        super().close()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _pull_hint() -> str:
    return (
        "Check the image name, that this worker reaches its registry, and the registry "
        "credentials; or build the image on the worker."
    )
