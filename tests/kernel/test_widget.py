"""ExecutionView's model, read in a real kernel while a real agent runs the notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.stack import Stack

from .conftest import Kernel
from .test_magics import write_notebook

pytestmark = pytest.mark.slow

WAIT_MARK = "# wait for the flag"


def gated_notebook(path: Path, flag: Path) -> None:
    """Prints a progress bar, a coloured line and metrics, waits for ``flag``, writes an output."""
    write_notebook(
        path,
        ("code", "steps = 3"),
        (
            "code",
            "import json, sys\n"
            "for i in range(steps + 1):\n"
            "    print(f'\\rprogress {i}/{steps}', end='', flush=True)\n"
            "print()\n"
            "print('\\x1b[32mgreen\\x1b[0m line')\n"
            "print('to stderr', file=sys.stderr)\n"
            "for epoch in range(steps):\n"
            "    print(json.dumps({'epoch': epoch, 'loss': 1 / (epoch + 1)}))",
        ),
        (
            "code",
            f"{WAIT_MARK}\nimport os, time\n"
            f"while not os.path.exists({str(flag)!r}):\n    time.sleep(0.05)",
        ),
        (
            "code",
            "import os\n"
            "with open(os.path.join(os.environ['VH_OUTPUTS_DIR'], 'result.txt'), 'w') as f:\n"
            "    f.write('done')",
        ),
        tags={0: "parameters"},
    )


TRAITS = (
    "import json\n"
    "print(json.dumps({k: getattr(view, k) for k in ('status', 'duration', 'current_cell',\n"
    "    'cells', 'log_lines', 'metrics', 'outputs', 'ended', 'error')}))"
)


def test_the_view_follows_a_running_notebook_and_ends_with_its_outputs(
    kernel: Kernel, stack: Stack, workdir: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    gated_notebook(workdir / "gated.ipynb", flag)
    kernel.ok("%valohai run gated.ipynb --no-widget")
    eid = kernel.ok("print(get_ipython().find_magic('valohai').__self__.last['id'])").stdout.strip()

    # A view of its own, made by id while the execution runs; it records what changed when.
    kernel.ok(
        "import threading\n"
        "from jupyter_valohai.widget import ExecutionView\n"
        f"view = ExecutionView({eid!r})\n"
        "seen, waiting = [], threading.Event()\n"
        "def record(change):\n"
        "    seen.append((change['name'], view.status, view.ended))\n"
        "    cells = {c['index']: c for c in view.cells}\n"
        "    now = cells.get(view.current_cell, {})\n"
        f"    if str(now.get('source', '')).startswith({WAIT_MARK!r}):\n"
        "        waiting.set()\n"
        "view.observe(record, names=['log_lines', 'current_cell', 'cells', 'metrics'])\n"
        "record({'name': 'start'})\n"
        "print(waiting.wait(120))"
    )
    running = kernel.ok(TRAITS).json()
    assert running["status"] == "started" and not running["ended"], running
    # Papermill logs on stderr, a separate pipe: the notebook's stdout lines keep their order.
    printed = [
        "progress 3/3",
        "\x1b[32mgreen\x1b[0m line",
        *[json.dumps({"epoch": e, "loss": 1 / (e + 1)}) for e in range(3)],
    ]
    assert [line for line in running["log_lines"] if line in printed] == printed, running
    assert "to stderr" in running["log_lines"], running
    assert running["metrics"] == {"epoch": [0.0, 1.0, 2.0], "loss": [1.0, 0.5, 1 / 3]}, running
    states = {c["source"].splitlines()[0]: c["state"] for c in running["cells"]}
    assert states["steps = 3"] == "ok" and states["import json, sys"] == "ok", running
    assert states[WAIT_MARK] == "running", running
    assert running["cells"][-1]["source"].startswith(WAIT_MARK)  # the last cell has not begun
    assert running["current_cell"] == running["cells"][-1]["index"], running
    live = kernel.ok(
        "print(json.dumps(sorted({name for name, status, ended in seen\n"
        "    if status == 'started' and not ended})))"
    ).json()
    assert set(live) >= {"log_lines", "current_cell", "cells", "metrics"}, live

    flag.write_text("go")
    assert kernel.ok("print(view.wait(120))").stdout.strip() == "True"
    final = kernel.ok(TRAITS).json()
    assert final["status"] == "complete" and final["ended"] and final["error"] == "", final
    assert final["current_cell"] is None
    assert all(c["state"] == "ok" for c in final["cells"]), final
    assert sorted(o["name"] for o in final["outputs"]) == ["gated.ipynb", "result.txt"], final
    assert all(o["id"] and o["size"] for o in final["outputs"]), final
    assert isinstance(final["duration"], float) and final["duration"] >= 0

    # Load an output as a path; pull the rest; the executed notebook gets a JupyterLab link.
    path = kernel.ok("print(view.path('result.txt'))").stdout.strip()
    assert (workdir / path).read_text() == "done"
    assert path == "valohai-outputs/default/1/result.txt"
    kernel.ok("view.pull()")
    assert kernel.ok("print(view.notebook_path())").stdout.strip().endswith("1/gated.ipynb")
    assert (
        "lab/tree/valohai-outputs/default/1/gated.ipynb"
        in kernel.ok("print(view._links.value)").stdout
    )
    assert kernel.ok("print(view._deploy.disabled, view._deploy.tooltip)").stdout.strip() == (
        "True Nothing to deploy: the valohai.yaml defines no endpoint"
    )

    # After a kernel restart, the view made again by id reaches the same state.
    kernel.km.restart_kernel(now=True)
    kernel.kc.wait_for_ready(timeout=60)
    kernel.ok(
        f"from jupyter_valohai.widget import ExecutionView\nview = ExecutionView({eid!r})\n"
        "assert view.wait(120)"
    )
    again = kernel.ok(TRAITS).json()
    assert again == final


def test_stop_from_the_view(kernel: Kernel, stack: Stack, workdir: Path, tmp_path: Path) -> None:
    gated_notebook(workdir / "gated.ipynb", tmp_path / "never")
    kernel.ok("%valohai run gated.ipynb")
    kernel.ok(
        "from jupyter_valohai.widget import ExecutionView\n"
        "view = get_ipython().find_magic('valohai').__self__\n"
        "view = ExecutionView(view.last['id'])\n"
        "import threading\nstarted = threading.Event()\n"
        "view.observe(lambda c: c['new'] is not None and started.set(), names='current_cell')\n"
        "assert started.wait(120)\n"
        "view._stop.click()\n"
        "assert view.wait(120)\n"
        "print(view.status)"
    )
    out = kernel.ok("print(view.status, view._stop.disabled)")
    assert out.stdout.strip() == "stopped True", out


def test_stop_with_the_magic(kernel: Kernel, stack: Stack, workdir: Path, tmp_path: Path) -> None:
    gated_notebook(workdir / "gated.ipynb", tmp_path / "never")
    kernel.ok("%valohai run gated.ipynb --no-widget")
    out = kernel.ok("%valohai stop")
    assert out.stdout.strip(), out  # the master's message
    follow = kernel.ok("%valohai logs --follow")
    assert follow.stdout.strip().endswith("-- stopped"), follow.stdout
