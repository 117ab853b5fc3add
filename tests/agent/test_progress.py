"""Per-cell progress of notebook steps: the runner's markers become ``progress`` events."""

from __future__ import annotations

import json
import os
import threading
import time

import nbformat

from agent import io
from agent.client import AgentClient
from agent.logs import LogShipper, split_lines, split_progress
from agent.nbrun import marker

EVENTS = "/api/agent/executions/e-test/events"


def _notebook(path, *sources: str, parameters: str | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A title")]
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nbformat.write(nb, str(path))


def _prepare(tmp_path, new_job, parameters: dict | None = None):
    job, lines = new_job([], kind="notebook", notebook="nb.ipynb")
    layout = io.Layout(str(tmp_path))
    job.env = io.execution_env({"id": "e-test"}, layout)
    io.write_config({"parameters": parameters or {}}, layout, {})
    return job, lines


def _progress(items: list[tuple[str, str]]) -> list[dict]:
    return [json.loads(m) for s, m in items if s == "progress"]


def test_every_code_cell_starts_and_ends_in_order_through_the_shipper(
    tmp_path, new_job, runtime, peer
) -> None:
    _notebook(
        tmp_path / "repository" / "nb.ipynb",
        "print('one')",
        "import time\ntime.sleep(0.2)\nprint('two', end='')",
        "# third\nprint(3)",
    )
    job, _ = _prepare(tmp_path, new_job)
    client = AgentClient(peer.url, "tok")
    shipper = LogShipper(
        lambda ev, md: client.events("e-test", 1, ev, md),
        flush_interval=0.02,
        progress_nonce=job.progress_nonce,
    ).start()
    job.emit, job.pump = shipper.write, shipper.pump

    result = runtime.process(job)
    shipper.close()
    assert result.status == "complete"

    events = [e for r in peer.posts(EVENTS) for e in r.json()["events"]]
    items = [(e["stream"], e["message"]) for e in events]
    cells = _progress(items)
    assert [(c["state"], c["index"], c["position"]) for c in cells] == [
        ("start", 1, 1),
        ("end", 1, 1),
        ("start", 2, 2),
        ("end", 2, 2),
        ("start", 3, 3),
        ("end", 3, 3),
    ]
    assert all(c["type"] == "cell" and c["total"] == 3 and c["time"] for c in cells)
    ends = [c for c in cells if c["state"] == "end"]
    assert all(c["status"] == "ok" and c["duration"] >= 0 for c in ends)
    assert ends[1]["duration"] >= 0.2  # the sleep happened inside the cell's start..end
    assert "duration" not in cells[0] and "status" not in cells[0]
    assert [c["source"] for c in ends] == ["print('one')", "import time", "# third"]

    # Output keeps its place between its cell's start and end; markers are never log lines.
    stdout_at = {m: i for i, (s, m) in enumerate(items) if s == "stdout"}
    progress_at = [i for i, (s, _) in enumerate(items) if s == "progress"]
    assert progress_at[0] < stdout_at["one\n"] < progress_at[1]
    assert progress_at[2] < stdout_at["two"] < progress_at[3]  # a partial line, then the marker
    assert progress_at[4] < stdout_at["3\n"] < progress_at[5]
    assert not any("vh-progress" in m for s, m in items if s != "progress")


def test_injected_parameters_cell_counts(tmp_path, new_job, runtime) -> None:
    _notebook(tmp_path / "repository" / "nb.ipynb", "print(x)", parameters="x = 1")
    job, lines = _prepare(tmp_path, new_job, {"x": 7})
    assert runtime.process(job).status == "complete"
    cells = _progress(lines.items)
    ends = [c for c in cells if c["state"] == "end"]
    assert [(c["index"], c["position"], c["total"]) for c in ends] == [
        (1, 1, 3),
        (2, 2, 3),
        (3, 3, 3),
    ]
    assert ends[1]["source"] == "# Parameters"  # papermill's injected-parameters cell
    assert "7\n" in lines.text("stdout")


def test_failing_cell_ends_with_error_and_later_cells_never_start(
    tmp_path, new_job, runtime
) -> None:
    _notebook(
        tmp_path / "repository" / "nb.ipynb",
        "a = 1",
        "raise ValueError('boom')",
        "print('never')",
    )
    job, lines = _prepare(tmp_path, new_job)
    result = runtime.process(job)
    assert result.status == "error"
    cells = _progress(lines.items)
    assert [(c["state"], c["index"], c.get("status")) for c in cells] == [
        ("start", 1, None),
        ("end", 1, "ok"),
        ("start", 2, None),
        ("end", 2, "error"),
    ]
    assert "boom" in lines.text("stderr")
    assert "never" not in lines.text("stdout")
    assert (tmp_path / "outputs" / "nb.ipynb").exists()


def test_forged_marker_is_a_log_line_and_the_kernel_has_no_nonce(
    tmp_path, new_job, runtime
) -> None:
    forged = marker("0" * 32) + json.dumps({"type": "cell", "state": "start", "index": 9})
    _notebook(
        tmp_path / "repository" / "nb.ipynb",
        f"print({forged!r})",
        "import os\nprint('nonce:', os.environ.get('VH_PROGRESS_NONCE'))",
    )
    job, lines = _prepare(tmp_path, new_job)
    assert runtime.process(job).status == "complete"
    stdout = lines.text("stdout")
    assert forged + "\n" in stdout
    assert "nonce: None\n" in stdout
    assert job.progress_nonce not in stdout
    assert [c["index"] for c in _progress(lines.items)] == [1, 1, 2, 2]


def test_commands_of_a_notebook_step_get_no_nonce(tmp_path, new_job, runtime) -> None:
    _notebook(tmp_path / "repository" / "nb.ipynb", "pass")
    job, lines = _prepare(tmp_path, new_job)
    job.spec["commands"] = ['echo "nonce:${VH_PROGRESS_NONCE:-unset}"']
    assert runtime.process(job).status == "complete"
    assert "nonce:unset\n" in lines.text("stdout")


def test_split_progress() -> None:
    prefix = marker("n1")
    body = json.dumps({"type": "cell", "state": "end", "index": 0})
    assert split_progress(prefix + body + "\n", prefix) == ("", body)
    assert split_progress("partial" + prefix + body + "\n", prefix) == ("partial", body)
    assert split_progress(marker("n2") + body + "\n", prefix) == (marker("n2") + body + "\n", None)
    assert split_progress(prefix + "not json\n", prefix) == (prefix + "not json\n", None)
    assert split_progress(prefix + "[1]\n", prefix) == (prefix + "[1]\n", None)
    assert split_progress("plain\n", None) == ("plain\n", None)
    assert split_lines("stderr", prefix + body, prefix) == [("stderr", prefix + body)]
    assert split_lines("stdout", "x" + prefix + body, prefix) == [
        ("stdout", "x"),
        ("progress", body),
    ]


def test_stopped_notebook_ends_its_running_cell_with_error(tmp_path, new_job, runtime) -> None:
    _notebook(tmp_path / "repository" / "nb.ipynb", "print('a')", "import time\ntime.sleep(60)")
    job, lines = _prepare(tmp_path, new_job)

    def stop_when_sleeping() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(c["state"] == "start" and c["index"] == 2 for c in _progress(lines.items)):
                runtime.stop(job)
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_when_sleeping, daemon=True)
    stopper.start()
    result = runtime.process(job)
    stopper.join(5)
    assert result.status == "stopped"
    cells = _progress(lines.items)
    assert [(c["state"], c["index"], c.get("status")) for c in cells] == [
        ("start", 1, None),
        ("end", 1, "ok"),
        ("start", 2, None),
        ("end", 2, "error"),
    ]
