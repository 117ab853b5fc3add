"""What every benchmark shares: real services and a real master + agents, figures, timing helpers.

A benchmark module has ``run(ctx: Bench) -> None`` that records figures with :meth:`Bench.figure`.
``python -m bench.NAME --out FILE`` runs one module alone and writes its figures as JSON; the
runner (``python -m bench``) starts each in a process of its own, so a crash or a hang in one never
takes the others with it.

Services are the ones the tests use (``nx-27017``, ``redis-server``), started the same way
(:mod:`jupyter_valohai.services`); the master and agents are child processes started through the
``jupyter valohai`` CLI (:class:`tests.e2e.stack.Stack`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("VH_AGENT_RUNTIME", "local")

from jupyter_valohai.services import ManagedProcess, start_mongo, start_redis  # noqa: E402
from tests.e2e.stack import Stack  # noqa: E402

VALOHAI_YAML = """
- step:
    name: noop
    image: python:3.11
    command: "true"
- step:
    name: notebook
    image: python:3.11
    command: []
    source-path: tiny.ipynb
    parameters:
      - name: x
        type: integer
        default: 1
"""


def tiny_notebook() -> dict[str, Any]:
    """A 3-cell notebook: parameters, a print, a computation (the bench's "small notebook")."""

    def cell(src: str, tags: list[str] | None = None) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "id": uuid.uuid4().hex[:8],
            "execution_count": None,
            "outputs": [],
            "metadata": {"tags": tags or []},
            "source": src,
        }

    return {
        "cells": [
            cell("x = 1", ["parameters"]),
            cell("print('first output', x * 2)"),
            cell("total = sum(range(1000))\nprint('total', total)"),
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Figure:
    """One measured figure, its target and (optionally) the baseline it is compared with."""

    metric: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    ratio_target: str = ""


@dataclass
class Bench:
    """The context a benchmark runs in: a scratch directory, services, figures."""

    name: str
    tmp: str
    quick: bool = False
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _cleanups: list[Callable[[], None]] = field(default_factory=list)
    _services: tuple[ManagedProcess, ManagedProcess] | None = None

    def figure(self, metric: str, value: float, unit: str, **kw: Any) -> Figure:
        fig = Figure(metric, value, unit, **kw)
        self.figures.append(fig)
        print(f"  {metric}: {value:.4g} {unit}" + (f" (target {fig.target})" if fig.target else ""))
        if fig.ratio is not None:
            print(f"    vs {fig.baseline}: {fig.baseline_value:.4g} -> ratio {fig.ratio:.3g}")
        return fig

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}")

    def cleanup(self, fn: Callable[[], None]) -> None:
        self._cleanups.append(fn)

    def close(self) -> None:
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                traceback.print_exc()

    def services(self) -> tuple[ManagedProcess, ManagedProcess]:
        """nx-27017 and redis-server for this benchmark (started once, stopped at the end)."""
        if self._services is None:
            mongo = start_mongo(os.path.join(self.tmp, "mongo"))
            self.cleanup(mongo.stop)
            redis = start_redis(os.path.join(self.tmp, "redis"))
            self.cleanup(redis.stop)
            self._services = (mongo, redis)
        return self._services

    def stack(
        self,
        agents: int = 1,
        agent_args: list[str] | None = None,
        master_args: list[str] | None = None,
        name: str = "stack",
    ) -> BenchStack:
        """A master (its own database) with ``agents`` local agents, stopped at the end."""
        mongo, redis = self.services()
        s = BenchStack(
            os.path.join(self.tmp, name),
            mongo.url,
            f"bench_{uuid.uuid4().hex[:10]}",
            redis.url,
            master_args=list(master_args or []),
        )
        s.agent_args = [*s.agent_args, *(agent_args or [])]
        self.cleanup(s.stop)
        s.start_master()
        for n in range(agents):
            s.start_agent(f"agent-{n}")
        return s


class BenchStack(Stack):
    """The tests' stack plus what benchmarks need: a project with the bench's steps."""

    def project_with_steps(self, files: dict[str, str | bytes] | None = None) -> tuple[str, str]:
        """Create a project holding ``valohai.yaml`` and the tiny notebook; (project, commit)."""
        project = self.create_project(f"bench-{uuid.uuid4().hex[:6]}")
        content: dict[str, str | bytes] = {
            "valohai.yaml": VALOHAI_YAML,
            "tiny.ipynb": json.dumps(tiny_notebook()),
        }
        content.update(files or {})
        commit = self.import_package(project["id"], content)
        return project["id"], commit["identifier"]

    def wait_agents(self, count: int, timeout: float = 60) -> None:
        """Wait until ``count`` agents are long-polling (each has claimed at least once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = sum(1 for p in self.agents if p.poll() is None)
            if alive < count:
                raise RuntimeError(f"an agent exited:\n{self.logs()}")
            logs = self.logs()
            if logs.count("serving http") >= count:
                return
            time.sleep(0.1)
        raise RuntimeError(f"agents did not come up:\n{self.logs()}")


def pool_ready_marker(stack: Stack) -> bool:
    """Whether every agent's warm notebook runner is ready (the agents log it)."""
    return stack.logs().count("Warm notebook runner ready") >= len(stack.agents)


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


def main_for(name: str, run: Callable[[Bench], None]) -> None:
    """The ``python -m bench.NAME`` entry point of one benchmark module."""
    parser = argparse.ArgumentParser(description=f"benchmark {name}")
    parser.add_argument("--out", help="write the figures here as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix=f"vh-bench-{name}-")
    ctx = Bench(name, tmp, quick=args.quick)
    error = ""
    start = time.perf_counter()
    try:
        run(ctx)
    except BaseException as exc:  # recorded, never hidden: the runner shows it in RESULTS.md
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        ctx.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "name": name,
        "seconds": round(time.perf_counter() - start, 1),
        "figures": [asdict(f) for f in ctx.figures],
        "notes": ctx.notes,
        "error": error[-3000:],
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    sys.exit(1 if error else 0)
