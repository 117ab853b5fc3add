"""Notebook projects the web tests run on a real agent."""

from __future__ import annotations

import nbformat

from tests.e2e.stack import Stack

YAML = """\
- step:
    name: train
    image: python:3.11
    source-path: train.ipynb
    command: []
    parameters:
      - name: epochs
        type: integer
        default: 3
      - name: gate
        type: string
        default: ""
      - name: message
        type: string
        default: hello
"""

#: Prints a line, then (if ``gate`` names a file) waits for the test to create it: the line is
#: seen while the execution is still running. Then logs one metrics line per epoch.
TRAIN = """\
import json, os, time
print(f"waiting at the gate: {message}", flush=True)
while gate and not os.path.exists(gate):
    time.sleep(0.05)
for epoch in range(epochs):
    print(json.dumps({"epoch": epoch, "loss": round(1.0 / (epoch + 1), 4)}), flush=True)
print("training done", flush=True)
"""

PAYLOAD = (
    '<script>window.pwned = 1; alert("script")</script>'
    "<img src=x onerror=\"window.pwned = 2; alert('img')\">"
)

#: Everything a notebook can print or display, carrying script.
EVIL = f"""\
from IPython.display import HTML, Markdown, display
import json
payload = {PAYLOAD!r}
print(payload, flush=True)
display(HTML(payload))
display(HTML('<a href="javascript:window.pwned = 3">click</a>'
             '<svg onload="window.pwned = 4"></svg>'))
display(Markdown(payload))
print(json.dumps({{"step": 1, payload: 0.5, "loss": 0.5}}), flush=True)
"""


def notebook(code: str, markdown: str = "# Training") -> str:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('epochs = 3\ngate = ""\nmessage = "hello"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def upload(stack: Stack, project_name: str, code: str, markdown: str = "# Training") -> tuple:
    """A project with the notebook step; returns (project, commit identifier)."""
    project = stack.create_project(project_name)
    commit = stack.import_package(
        project["id"], {"valohai.yaml": YAML, "train.ipynb": notebook(code, markdown)}
    )
    return project, commit["identifier"]
