"""Cell progress end to end: a real agent runs a notebook step; the master shows every cell."""

from __future__ import annotations

import json

import nbformat
import pytest

from .stack import Stack

pytestmark = pytest.mark.slow

NOTEBOOK_YAML = """\
- step:
    name: nb
    image: python:3.11
    source-path: train.ipynb
    command: []
    parameters:
      - name: epochs
        type: integer
        default: 1
"""


def _notebook() -> str:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("epochs = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Training"),
        params,
        nbformat.v4.new_code_cell("import json\nloss = 1 / (epochs + 1)"),
        nbformat.v4.new_code_cell("print(json.dumps({'loss': loss}))"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def test_notebook_step_reports_every_cell(stack: Stack) -> None:
    stack.start_agent()
    project = stack.create_project()
    commit = stack.import_package(
        project["id"], {"valohai.yaml": NOTEBOOK_YAML, "train.ipynb": _notebook()}
    )
    execution = stack.submit(project["id"], commit["identifier"], "nb", parameters={"epochs": 3})
    eid = execution["id"]
    final = stack.wait_status(eid)
    assert final["status"] == "complete", stack.explain(eid)

    # The parameters cell, papermill's injected-parameters cell and the two others.
    cells = final["cells"]
    assert [(c["index"], c["position"]) for c in cells] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert all(c["state"] == "ok" for c in cells), cells
    assert all(isinstance(c["duration"], float) and c["duration"] >= 0 for c in cells), cells
    assert all(c["started_at"] for c in cells), cells
    assert [c["source"] for c in cells] == [
        "epochs = 1",
        "# Parameters",
        "import json",
        "print(json.dumps({'loss': loss}))",
    ]
    assert final["current_cell"] is None
    assert final["metadata"] == {"loss": 0.25}

    path = f"/api/v0/executions/{eid}/events/"
    default = stack.api("GET", path, params={"limit": 0}).json()["events"]
    assert {e["stream"] for e in default} <= {"stdout", "stderr", "status"}
    assert not any("vh-progress" in e["message"] for e in default)
    assert '{"loss": 0.25}\n' in [e["message"] for e in default if e["stream"] == "stdout"]

    shown = stack.api(
        "GET", path, params={"limit": 0, "streams": "stdout,progress,metadata"}
    ).json()["events"]
    progress = [json.loads(e["message"]) for e in shown if e["stream"] == "progress"]
    assert [(p["state"], p["index"]) for p in progress] == [
        (state, index) for index in (1, 2, 3, 4) for state in ("start", "end")
    ]
    assert all(p["total"] == 4 for p in progress)
    streams = [e["stream"] for e in shown]
    loss_at = [e["message"] for e in shown].index('{"loss": 0.25}\n')
    assert streams[loss_at + 1] == "metadata"  # right after the line it came from
    assert streams[loss_at + 2] == "progress"  # then the last cell's end
