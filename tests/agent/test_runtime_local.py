"""LocalRuntime running real commands: exit codes, output capture, stops and time limits."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from agent.runtimes.base import SHUTDOWN, STOP_REQUESTED
from agent.runtimes.local import LocalRuntime


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_complete_captures_stdout_and_stderr_in_repository_dir(tmp_path, new_job, runtime) -> None:
    job, lines = new_job(["echo hello", "echo oops >&2", "pwd"])
    result = runtime.process(job)
    assert (result.status, result.exit_code) == ("complete", 0)
    assert lines.text("stdout") == f"hello\n{job.repository}\n"
    assert lines.text("stderr") == "oops\n"


def test_nonzero_exit_is_error_and_sh_e_stops_at_first_failure(tmp_path, new_job, runtime) -> None:
    job, lines = new_job(["echo one", "exit 3", "echo never"])
    result = runtime.process(job)
    assert (result.status, result.exit_code) == ("error", 3)
    assert "code 3" in result.message
    assert "never" not in lines.text("stdout")


def test_carriage_returns_and_missing_final_newline_kept(tmp_path, new_job, runtime) -> None:
    job, lines = new_job(["printf 'a\\rb\\nlast'"])
    assert runtime.process(job).status == "complete"
    assert lines.text("stdout") == "a\rb\nlast"


def test_stop_terms_the_whole_process_group(tmp_path, new_job, runtime) -> None:
    pidfile = tmp_path / "bg.pid"
    job, lines = new_job([f"sleep 60 & echo $! > {pidfile}", "echo ready", "wait"])
    threading.Thread(target=lambda: (_wait_text(lines, "ready"), runtime.stop(job))).start()
    started = time.monotonic()
    result = runtime.process(job)
    assert result.status == "stopped"
    assert result.message == "Stopped on request."
    assert time.monotonic() - started < 10
    assert not _alive(int(pidfile.read_text()))


def test_process_ignoring_sigterm_is_killed_after_grace(tmp_path, new_job) -> None:
    runtime = LocalRuntime(stop_grace_seconds=0.5)
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('got TERM', flush=True))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    job, lines = new_job([f"exec {sys.executable} stubborn.py"])
    (tmp_path / "repository" / "stubborn.py").write_text(script)
    threading.Thread(
        target=lambda: (_wait_text(lines, "ready"), runtime.stop(job, SHUTDOWN))
    ).start()
    started = time.monotonic()
    result = runtime.process(job)
    elapsed = time.monotonic() - started
    assert "got TERM" in lines.text("stdout")  # SIGTERM came first, and was ignored
    assert result.exit_code == -signal.SIGKILL
    assert result.status == "stopped" and "shut down" in result.message
    assert elapsed < 10


def test_time_limit_stops_with_error(tmp_path, new_job, runtime) -> None:
    job, _ = new_job(["sleep 60"], time_limit=1)
    started = time.monotonic()
    result = runtime.process(job)
    assert result.status == "error"
    assert "time limit" in result.message
    assert time.monotonic() - started < 10


def test_stop_before_start_skips_the_commands(tmp_path, new_job, runtime) -> None:
    job, lines = new_job(["echo ran"])
    job.stop.set(STOP_REQUESTED)
    result = runtime.process(job)
    assert result.status == "stopped"
    assert lines.items == []


def test_runtime_failure_is_an_error_result(tmp_path, new_job, runtime) -> None:
    job, _ = new_job(["true"])
    job.repository = str(tmp_path / "missing")
    result = runtime.process(job)
    assert result.status == "error" and result.exit_code is None
    assert "runtime failed" in result.message


def _wait_text(lines, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in lines.text("stdout"):
        assert time.monotonic() < deadline, lines.items
        time.sleep(0.01)


def test_python_in_commands_is_the_agents_python(tmp_path, new_job, runtime) -> None:
    job, lines = new_job(["command -v python"], env={"PATH": "/usr/bin:/bin"})
    assert runtime.process(job).status == "complete"
    assert lines.text("stdout").strip() == os.path.join(os.path.dirname(sys.executable), "python")
