"""A small notebook (3 cells): bare ``papermill`` CLI against the platform, cold and warm.

* bare: ``papermill tiny.ipynb out.ipynb -p x 2 --stdout-file /dev/stdout`` started by the bench;
  first output = the cell's print read from its stdout, total = the process exits.
* platform: POST /api/v0/executions/ -> a viewer on the execution's event stream sees the cell's
  print (first output) -> sees the end of the stream (status complete, logs archived).
  Cold: the agent starts papermill and a kernel per execution (``warm_notebook_runners=0``).
  Warm: a runner with a started kernel was waiting (the default); the bench waits for the pool
  to be full again between executions, as a worker does between notebooks of normal length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .common import Bench, BenchStack, main_for, pct, tiny_notebook
from .sse import follow


def bare_papermill(ctx: Bench, runs: int) -> tuple[list[float], list[float]]:
    nb = os.path.join(ctx.tmp, "tiny.ipynb")
    with open(nb, "w") as f:
        json.dump(tiny_notebook(), f)
    papermill = os.path.join(os.path.dirname(sys.executable), "papermill")
    first, total = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [
                papermill,
                nb,
                os.path.join(ctx.tmp, "out.ipynb"),
                "-p",
                "x",
                "2",
                "--stdout-file",
                "/dev/stdout",
                "--no-progress-bar",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        seen = None
        for line in proc.stdout:
            if seen is None and b"first output 4" in line:
                seen = time.perf_counter() - start
        if proc.wait() != 0 or seen is None:
            raise RuntimeError("bare papermill failed")
        total.append(time.perf_counter() - start)
        first.append(seen)
    return first, total


def platform(stack: BenchStack, runs: int, warm: bool) -> tuple[list[float], list[float]]:
    project, commit = stack.project_with_steps()
    first, total = [], []
    for i in range(runs + 1):
        if warm:
            _wait_pool(stack)
        start = time.time()
        execution = stack.submit(project, commit, "notebook", parameters={"x": 2})
        seen: dict[str, float] = {}

        def on_event(
            kind: str, data: dict, arrival: float, seen: dict = seen, start: float = start
        ) -> bool:
            if "first" not in seen and "first output 4" in data.get("message", ""):
                seen["first"] = arrival - start
            if kind == "end":
                seen["end"] = arrival - start
                seen["status"] = data.get("status")
            return False

        follow(stack.url, stack.admin_token, execution["id"], on_event)
        if seen.get("status") != "complete" or "first" not in seen:
            raise RuntimeError(f"notebook execution failed: {stack.explain(execution['id'])}")
        if i == 0:
            continue  # warm-up (the first one also pays for imports in the master)
        first.append(seen["first"])
        total.append(seen["end"])
    return first, total


def _wait_pool(stack: BenchStack, timeout: float = 120) -> None:
    """Wait for the agent to log another warm runner ready than it had used."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = stack.logs()
        if logs.count("Warm notebook runner ready") > logs.count("Claimed execution"):
            return
        time.sleep(0.05)
    raise RuntimeError("the warm notebook runner never got ready")


def run(ctx: Bench) -> None:
    runs = 3 if ctx.quick else 7
    bare_first, bare_total = bare_papermill(ctx, runs)
    ctx.figure(
        "bare papermill CLI: start -> first cell output p50", pct(bare_first, 0.5) * 1000, "ms"
    )
    ctx.figure("bare papermill CLI: start -> exit p50", pct(bare_total, 0.5) * 1000, "ms")

    warm = ctx.stack(agents=1, name="warm")
    warm.wait_agents(1)
    w_first, w_total = platform(warm, runs, warm=True)
    warm.stop()
    cold = ctx.stack(agents=1, agent_args=["--LocalRuntime.warm_notebook_runners=0"], name="cold")
    cold.wait_agents(1)
    c_first, c_total = platform(cold, runs, warm=False)

    b1, b2 = pct(bare_first, 0.5), pct(bare_total, 0.5)
    wf = pct(w_first, 0.5)
    ctx.figure(
        "warm pool: submit -> first cell output seen by a viewer p50",
        wf * 1000,
        "ms",
        target="<= 300 ms",
        met=wf <= 0.3,
        baseline="bare papermill start -> first output",
        baseline_value=b1 * 1000,
        ratio=b1 / wf,
        ratio_target=">= 3x faster",
    )
    ctx.figures[-1].met = wf <= 0.3 and b1 / wf >= 3
    for label, values in (("warm pool", w_total), ("cold (no pool)", c_total)):
        t = pct(values, 0.5)
        ctx.figure(
            f"{label}: submit -> complete seen by a viewer p50",
            t * 1000,
            "ms",
            target="<= 1.25x bare papermill",
            met=t / b2 <= 1.25,
            baseline="bare papermill start -> exit",
            baseline_value=b2 * 1000,
            ratio=t / b2,
            ratio_target="<= 1.25",
        )
    cf = pct(c_first, 0.5)
    ctx.figure("cold (no pool): submit -> first cell output p50", cf * 1000, "ms")
    ctx.note(f"{runs} runs each (after one warm-up run on the platform); p50 shown")


if __name__ == "__main__":
    main_for("notebook", run)
