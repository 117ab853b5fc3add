"""Live logs: a line printed by an execution -> seen by each of 20 viewers on the execution's
server-sent event stream, at 1,000 lines/s.

The execution prints ``L<n> T=<epoch seconds>`` lines, paced to the rate; the viewers (one
asyncio process, raw sockets, HTTP/1.0 so no chunk framing) timestamp each marker on arrival.
Same machine, same clock.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

from .common import Bench, main_for, pct
from .sse import lean_viewer

PRINTER = """
import sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
time.sleep(3)  # the viewers connect meanwhile
start = time.time()
n = int(rate * seconds)
for i in range(n):
    delay = start + i / rate - time.time()
    if delay > 0:
        time.sleep(delay)
    print(f"L{i} T={time.time():.6f}", flush=True)
"""

YAML_EXTRA = """
- step:
    name: printer
    image: python:3.11
    command: python printer.py {rate} {seconds}
"""


def run(ctx: Bench) -> None:
    rate, seconds, viewers = 1000.0, (5.0 if ctx.quick else 10.0), 20
    stack = ctx.stack(agents=1)
    stack.wait_agents(1)
    from .common import VALOHAI_YAML

    yaml = VALOHAI_YAML + YAML_EXTRA.format(rate=rate, seconds=seconds)
    project, commit = stack.project_with_steps({"valohai.yaml": yaml, "printer.py": PRINTER})
    execution = stack.submit(project, commit, "printer")
    port = urlparse(stack.url).port
    path = f"/api/v0/executions/{execution['id']}/events/stream/"

    async def main() -> tuple[list[list[float]], float]:
        stop = asyncio.Event()
        samples: list[list[float]] = [[] for _ in range(viewers)]
        tasks = [
            asyncio.create_task(lean_viewer(port, path, stack.admin_token, s, stop))
            for s in samples
        ]
        start = time.monotonic()
        await asyncio.wait(tasks, timeout=seconds + 90)
        stop.set()
        for t in tasks:
            t.cancel()
        return samples, time.monotonic() - start

    samples, _ = asyncio.run(main())
    final = stack.wait_status(execution["id"], timeout=60)
    if final["status"] != "complete":
        raise RuntimeError(stack.explain(execution["id"]))
    expected = int(rate * seconds)
    flat = [v * 1000 for s in samples for v in s]
    seen = [len(s) for s in samples]
    p50, p99 = pct(flat, 0.5), pct(flat, 0.99)
    ctx.figure("printed -> seen p50", p50, "ms", target="<= 100 ms", met=p50 <= 100)
    ctx.figure("printed -> seen p99", p99, "ms", target="<= 500 ms", met=p99 <= 500)
    ctx.figure("lines seen per viewer (min)", min(seen), "lines")
    ctx.note(
        f"{expected} lines at {rate:.0f}/s, {viewers} viewers; each viewer saw "
        f"{min(seen)}..{max(seen)} of them"
    )


if __name__ == "__main__":
    main_for("logs", run)
