"""Server-sent-event viewers: one that follows an execution's stream (httpx-sse), and a lean one
that only timestamps markers in the raw bytes (for many viewers at a high line rate)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from httpx_sse import connect_sse


def follow(
    url: str,
    token: str,
    execution_id: str,
    on_event: Callable[[str, dict[str, Any], float], bool],
    timeout: float = 120,
) -> None:
    """Read ``execution_id``'s event stream, calling ``on_event(kind, data, arrival)`` for each
    event, until it returns True or the stream ends."""
    import json

    stream = f"{url}/api/v0/executions/{execution_id}/events/stream/"
    with (
        httpx.Client(timeout=httpx.Timeout(timeout, connect=10)) as client,
        connect_sse(client, "GET", stream, headers={"Authorization": f"Token {token}"}) as es,
    ):
        for sse in es.iter_sse():
            arrival = time.time()
            data = json.loads(sse.data) if sse.data else {}
            if on_event(sse.event, data, arrival) or sse.event == "end":
                return


MARK = re.compile(rb"T=(\d+\.\d+)")


async def lean_viewer(
    port: int, path: str, token: str, samples: list[float], stop: asyncio.Event
) -> int:
    """Hold one SSE connection (HTTP/1.0: no chunk framing) and, for every ``T=<epoch>`` marker
    that arrives, record arrival minus the marker (seconds). Returns the bytes read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    total, tail = 0, b""
    try:
        while not stop.is_set():
            chunk = await reader.read(65536)
            if not chunk:
                break
            now = time.time()
            total += len(chunk)
            data = tail + chunk
            cut = data.rfind(b"\n")
            complete, tail = (data[: cut + 1], data[cut + 1 :]) if cut >= 0 else (b"", data)
            samples.extend(now - float(m) for m in MARK.findall(complete))
    finally:
        writer.close()
    return total
