"""Warm notebook runners: a started kernel per execution, never shared, set up like a cold one."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from agent import io
from agent.runtimes.base import STOP_REQUESTED
from agent.runtimes.local import LocalRuntime
from tests.agent.conftest import make_job


def _write(path: Any, *sources: str, kernel: str = "python3") -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.fixture
def warm_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuntime]:
    # A secret of the agent's own environment when the pool starts: no kernel may see it.
    monkeypatch.setenv("VH_AGENT_TOKEN", "agent-secret-token")
    runtime = LocalRuntime(stop_grace_seconds=1.0, warm_notebook_runners=1)
    runtime.open()
    try:
        assert runtime.pool is not None
        assert runtime.pool.wait_ready(90), "the warm runner never got ready"
        yield runtime
    finally:
        runtime.close()


def _job(root: Any, notebook: str, parameters: dict[str, Any]) -> Any:
    job, lines = make_job(root, [], kind="notebook", notebook=notebook)
    layout = io.Layout(str(root))
    spec = {"id": "e-warm", "environment_variables": {"GREETING": "hi"}}
    job.env = io.execution_env(spec, layout)
    io.write_config({"parameters": parameters}, layout, {})
    return job, lines


def _cell_text(path: Any) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_warm_runner_runs_the_notebook_like_a_cold_one(tmp_path, warm_runtime) -> None:
    pool = warm_runtime.pool
    runner = pool._ready[0]
    (tmp_path / "repository").mkdir()
    (tmp_path / "repository" / "helper.py").write_text("VALUE = 'from the repository'\n")
    _write(
        tmp_path / "repository" / "nb.ipynb",
        "import os, helper\n"
        "print('x is', x)\n"
        "print('cwd', os.getcwd())\n"
        "print('parent', os.getppid())\n"
        "print('greeting', os.environ.get('GREETING'), os.environ.get('VH_JOB_ID'))\n"
        "print('token', os.environ.get('VH_AGENT_TOKEN'))\n"
        "print(helper.VALUE)\n"
        "open(os.environ['VH_OUTPUTS_DIR'] + '/y.txt', 'w').write(str(x))",
    )
    job, lines = _job(tmp_path, "nb.ipynb", {"x": 42})

    result = warm_runtime.process(job)
    assert result.status == "complete", lines.items

    stdout = lines.text("stdout")
    assert f"parent {runner.pid}\n" in stdout  # the kernel the warm runner had started ran it
    assert "x is 42\n" in stdout
    assert f"cwd {tmp_path / 'repository'}\n" in stdout
    assert "greeting hi e-warm\n" in stdout
    assert "token None\n" in stdout  # the agent's secret stayed out of the kernel
    assert "from the repository\n" in stdout  # imports resolve from the repository
    assert (tmp_path / "outputs" / "y.txt").read_text() == "42"
    assert "x is 42" in _cell_text(tmp_path / "outputs" / "nb.ipynb")
    assert runner.poll() is not None  # one runner, one execution
    progress = [m for s, m in lines.items if s == "progress"]
    assert len(progress) == 6  # start and end of 3 cells: parameters, injected ones, code


def test_each_execution_gets_a_fresh_kernel(tmp_path, warm_runtime) -> None:
    pool = warm_runtime.pool
    pids = []
    for n in range(2):
        root = tmp_path / f"run{n}"
        _write(
            root / "repository" / "nb.ipynb",
            "import os\n"
            "print('seen before:', 'leftover' in globals())\n"
            "leftover = 1\n"
            "print('kernel', os.getpid())",
        )
        assert pool.wait_ready(90)
        job, lines = _job(root, "nb.ipynb", {})
        assert warm_runtime.process(job).status == "complete", lines.items
        stdout = lines.text("stdout")
        assert "seen before: False\n" in stdout
        pids.append(stdout.split("kernel ")[1].split()[0])
    assert pids[0] != pids[1]


def test_failing_cell_is_an_error_and_the_notebook_is_written(tmp_path, warm_runtime) -> None:
    _write(tmp_path / "repository" / "bad.ipynb", "raise ValueError('boom')")
    job, lines = _job(tmp_path, "bad.ipynb", {})
    result = warm_runtime.process(job)
    assert result.status == "error" and result.exit_code == 1
    assert "boom" in lines.text("stderr")
    assert "ValueError" in _cell_text(tmp_path / "outputs" / "bad.ipynb") or (
        "boom" in (tmp_path / "outputs" / "bad.ipynb").read_text()
    )


def test_stopping_a_warm_run_kills_its_kernel(tmp_path, warm_runtime) -> None:
    _write(
        tmp_path / "repository" / "slow.ipynb",
        "import os, time\nprint('kernel', os.getpid(), flush=True)\ntime.sleep(60)",
    )
    job, lines = _job(tmp_path, "slow.ipynb", {})
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(r=warm_runtime.process(job)))
    thread.start()
    deadline = time.monotonic() + 60
    while "kernel " not in lines.text("stdout"):
        assert time.monotonic() < deadline, lines.items
        time.sleep(0.05)
    kernel_pid = int(lines.text("stdout").split("kernel ")[1].split()[0])
    warm_runtime.stop(job, STOP_REQUESTED)
    thread.join(60)
    assert outcome["r"].status == "stopped"
    deadline = time.monotonic() + 10
    while _alive(kernel_pid):
        assert time.monotonic() < deadline, "the kernel outlived its stopped runner"
        time.sleep(0.1)


def test_closing_the_pool_ends_waiting_runners_and_their_kernels() -> None:
    runtime = LocalRuntime(warm_notebook_runners=1)
    runtime.open()
    pool = runtime.pool
    assert pool is not None and pool.wait_ready(90)
    runner = pool._ready[0]
    kernels = _children(runner.pid)
    assert kernels, "the warm runner has no kernel"
    runtime.close()
    assert runner.poll() is not None
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in kernels):
        assert time.monotonic() < deadline, "a waiting runner's kernel outlived the pool"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []
