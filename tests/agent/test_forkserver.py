"""Cold notebooks forked from zygotes: a new runner and a new kernel per execution, isolated."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.runtimes.base import STOP_REQUESTED
from agent.runtimes.local import LocalRuntime
from tests.agent.test_kernelpool import _alive, _cell_text, _job, _write

PROBE = (
    "import os, sys, json\n"
    "print('x is', x)\n"
    "print('kernel', os.getpid(), 'parent', os.getppid())\n"
    "print('cwd', os.getcwd())\n"
    "print('greeting', os.environ.get('GREETING'), os.environ.get('VH_JOB_ID'))\n"
    "print('token', os.environ.get('VH_AGENT_TOKEN'))\n"
    "print('nonce', os.environ.get('VH_PROGRESS_NONCE'))\n"
    "print('seen before:', 'leftover' in globals(), hasattr(json, 'vh_mark'))\n"
    "print('preloaded', sorted(m for m in ('papermill', '_vh_forkserver', 'agent') "
    "if m in sys.modules))\n"
    "leftover = 1\n"
    "json.vh_mark = 1\n"
    "import helper\n"
    "print(helper.VALUE)"
)


@pytest.fixture
def forking_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuntime]:
    # A secret of the agent's own environment when the zygotes start: no kernel may see it.
    monkeypatch.setenv("VH_AGENT_TOKEN", "agent-secret-token")
    runtime = LocalRuntime(stop_grace_seconds=1.0, warm_notebook_runners=0)
    runtime.open()
    try:
        assert runtime.zygotes is not None
        assert runtime.zygotes.wait_ready(120), "the runner fork server never got ready"
        _wait_kernel_zygote(runtime)
        yield runtime
    finally:
        runtime.close()


def _wait_kernel_zygote(runtime: LocalRuntime) -> None:
    deadline = time.monotonic() + 120
    while not os.path.exists(runtime.zygotes.kernel_socket):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the kernel fork server never got ready"
        time.sleep(0.1)


def _zygote_pids(runtime: LocalRuntime) -> tuple[int, int]:
    runner, kernel = runtime.zygotes._procs  # type: ignore[union-attr]
    return runner.pid, kernel.pid


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().split(") ")[1].split()[1])


def _probe(stdout: str, key: str) -> list[str]:
    return next(line.split()[1:] for line in stdout.splitlines() if line.startswith(key + " "))


def test_each_execution_forks_a_fresh_runner_and_kernel(tmp_path, forking_runtime) -> None:
    runner_zygote, kernel_zygote = _zygote_pids(forking_runtime)
    kernels = []
    for n, greeting in enumerate(["hi", "hello"]):
        root = tmp_path / f"run{n}"
        (root / "repository").mkdir(parents=True)
        (root / "repository" / "helper.py").write_text(f"VALUE = 'repository {n}'\n")
        _write(root / "repository" / "nb.ipynb", PROBE)
        job, lines = _job(root, "nb.ipynb", {"x": 40 + n})
        job.env["GREETING"] = greeting
        result = forking_runtime.process(job)
        assert result.status == "complete", lines.items
        stdout = lines.text("stdout")
        kernel, _, parent = _probe(stdout, "kernel")
        assert int(parent) == kernel_zygote  # forked, not started
        kernels.append(kernel)
        assert f"x is {40 + n}\n" in stdout
        assert f"cwd {root / 'repository'}\n" in stdout
        assert f"greeting {greeting} e-warm\n" in stdout
        assert "token None\n" in stdout  # the agent's secret stayed out of the kernel
        assert "nonce None\n" in stdout
        # Nothing the first notebook did (globals, module state) is seen by the second.
        assert "seen before: False False\n" in stdout
        assert "preloaded []\n" in stdout  # the runner's modules are not the kernel's
        assert f"repository {n}\n" in stdout  # imports resolve from this execution's repository
        assert f"x is {40 + n}" in _cell_text(root / "outputs" / "nb.ipynb")
        progress = [m for s, m in lines.items if s == "progress"]
        assert len(progress) == 6
    assert kernels[0] != kernels[1]
    assert _alive(runner_zygote) and _alive(kernel_zygote)


def test_a_failing_cell_is_an_error(tmp_path, forking_runtime) -> None:
    _write(tmp_path / "repository" / "bad.ipynb", "raise ValueError('boom')")
    job, lines = _job(tmp_path, "bad.ipynb", {})
    result = forking_runtime.process(job)
    assert result.status == "error" and result.exit_code == 1
    assert "boom" in lines.text("stderr")
    assert "ValueError" in (tmp_path / "outputs" / "bad.ipynb").read_text()


def _run_slow(runtime: LocalRuntime, tmp_path: Any) -> tuple[Any, Any, dict, threading.Thread]:
    _write(
        tmp_path / "repository" / "slow.ipynb",
        "import os, time\nprint('kernel', os.getpid(), 'parent', os.getppid(), flush=True)\n"
        "time.sleep(60)",
    )
    job, lines = _job(tmp_path, "slow.ipynb", {})
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(r=runtime.process(job)))
    thread.start()
    deadline = time.monotonic() + 60
    while "kernel " not in lines.text("stdout"):
        assert time.monotonic() < deadline, lines.items
        time.sleep(0.05)
    return job, lines, outcome, thread


def _gone(pid: int, what: str) -> None:
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_stopping_a_forked_run_kills_its_kernel(tmp_path, forking_runtime) -> None:
    job, lines, outcome, thread = _run_slow(forking_runtime, tmp_path)
    kernel = int(_probe(lines.text("stdout"), "kernel")[0])
    forking_runtime.stop(job, STOP_REQUESTED)
    thread.join(60)
    assert outcome["r"].status == "stopped"
    _gone(kernel, "the kernel outlived its stopped runner")


def test_a_killed_runner_takes_its_forked_kernel(tmp_path, forking_runtime) -> None:
    _, lines, outcome, thread = _run_slow(forking_runtime, tmp_path)
    kernel = int(_probe(lines.text("stdout"), "kernel")[0])
    runner_zygote, _ = _zygote_pids(forking_runtime)
    runners = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _alive(pid) and _ppid(pid) == runner_zygote
    ]
    assert len(runners) == 1
    os.kill(runners[0], signal.SIGKILL)  # no chance to shut its kernel down
    thread.join(60)
    assert outcome["r"].status == "error"
    _gone(kernel, "the forked kernel outlived its SIGKILLed runner")


def test_other_kernels_and_other_interpreter_settings_start_as_usual(
    tmp_path, forking_runtime
) -> None:
    _, kernel_zygote = _zygote_pids(forking_runtime)
    spec_dir = tmp_path / "jupyter" / "kernels" / "unbuffered"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-u", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python -u", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    code = "import os\nprint('kernel', os.getpid(), 'parent', os.getppid())"
    for n, (kernel, extra) in enumerate(
        [
            ("unbuffered", {}),  # another kernel command: started, not forked
            ("python3", {"PYTHONINTMAXSTRDIGITS": "5000"}),  # start-up differs: cold runner
        ]
    ):
        root = tmp_path / f"run{n}"
        _write(root / "repository" / "nb.ipynb", code, kernel=kernel)
        job, lines = _job(root, "nb.ipynb", {})
        job.env.update({"JUPYTER_PATH": str(tmp_path / "jupyter"), **extra})
        result = forking_runtime.process(job)
        assert result.status == "complete", lines.items
        _, _, parent = _probe(lines.text("stdout"), "kernel")
        assert int(parent) != kernel_zygote, (kernel, lines.items)
