"""A small HTTP/1.1 keep-alive load generator (raw asyncio sockets, so it costs the client far less
than the server it measures): ``python -m bench.loadgen PORT PATH [--header H] [--seconds S]
[--conns C]`` prints ``{"rps", "requests", "errors", "p50_ms", "p99_ms"}`` as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import time


async def _worker(
    port: int, request: bytes, until: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


async def load(port: int, path: str, headers: list[str], seconds: float, conns: int) -> dict:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        + "".join(f"{h}\r\n" for h in headers)
        + "\r\n"
    ).encode()
    # a short warm-up, not counted
    warm_until = time.monotonic() + 0.5
    await asyncio.gather(*(_worker(port, request, warm_until, [], []) for _ in range(2)))
    latencies: list[float] = []
    errors: list[int] = []
    start = time.monotonic()
    until = start + seconds
    await asyncio.gather(*(_worker(port, request, until, latencies, errors) for _ in range(conns)))
    elapsed = time.monotonic() - start
    latencies.sort()
    n = len(latencies)
    return {
        "rps": n / elapsed,
        "requests": n,
        "errors": len(errors),
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--conns", type=int, default=8)
    args = parser.parse_args()
    result = asyncio.run(load(args.port, args.path, args.header, args.seconds, args.conns))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
