"""The ExecutionView as JupyterLab draws it: `%valohai run` in a notebook open in Chromium.

Uses the browser tests' fixtures (a real `jupyter lab` with the jupyter-valohai extensions, a real
master and agent, Debian's Chromium); screenshots go to test-artifacts/browser/<test name>/.
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest

from tests.browser.conftest import browser, lab, page  # noqa: F401 (fixtures)
from tests.browser.lab import Lab
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

RUN_MS = 180_000
UI_MS = 60_000


def self_running_notebook(path: Any) -> None:
    """A notebook whose last cell runs the notebook itself on Valohai (with x=2)."""
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import json\nprint('x is', x)\nprint('\\x1b[31mred\\x1b[0m <b>not bold</b>')\n"
            "for step in range(4):\n    print(json.dumps({'loss': 1 / (step + 1) + x}))"
        ),
        nbformat.v4.new_code_cell("%load_ext jupyter_valohai\n%valohai run --param x=2"),
    ]
    nbformat.write(nb, str(path))


def test_the_view_in_jupyterlab(page: Any, lab: Lab, master: Stack) -> None:  # noqa: F811
    from playwright.sync_api import expect

    self_running_notebook(lab.root / "selfrun.ipynb")
    page.goto(f"{lab.url}/lab/tree/selfrun.ipynb?token={lab.token}")
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    expect(cells).to_have_count(3, timeout=UI_MS)
    # Run the cell once the kernel is up (a cell run before the session exists can be lost).
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=UI_MS)
    cells.nth(2).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")

    view = page.locator(".jp-OutputArea-output .widget-vbox").first
    expect(view).to_contain_text("Valohai execution #1", timeout=RUN_MS)
    expect(view).to_contain_text("complete", timeout=RUN_MS)
    page.shots("complete")

    # The log pane: the line printed remotely with x=2, ANSI red as a class, HTML escaped.
    expect(view).to_contain_text("x is 2")
    red = view.locator("span.ansi-red-fg", has_text="red").first
    expect(red).to_be_visible()
    expect(view).to_contain_text("<b>not bold</b>")
    # The nested %valohai run of the executed copy did not start another execution.
    expect(view).to_contain_text("not run inside execution")
    # Cells with their timings, the metrics chart, the outputs table.
    expect(view.locator("table tr")).to_have_count(4)  # parameters, injected, two code cells
    expect(view.locator(".bqplot")).to_be_visible()
    expect(view.get_by_text("selfrun.ipynb").first).to_be_visible()
    deploy = view.get_by_role("button", name="Deploy")
    expect(deploy).to_be_disabled()
    expect(deploy).to_have_attribute(
        "title", "Nothing to deploy: the valohai.yaml defines no endpoint"
    )
    expect(view.get_by_role("button", name="Stop")).to_be_disabled()

    view.get_by_role("button", name="Pull").click()
    link = view.get_by_role("link", name="valohai-outputs/default/1/selfrun.ipynb")
    expect(link).to_be_visible(timeout=UI_MS)
    assert link.get_attribute("href") == "/lab/tree/valohai-outputs/default/1/selfrun.ipynb"
    page.shots("pulled")
    link.scroll_into_view_if_needed()
    page.shots("chart-and-outputs")
    assert (lab.root / "valohai-outputs/default/1/selfrun.ipynb").is_file()
    executions = master.api("GET", "/api/v0/executions/").json()["results"]
    assert len(executions) == 1, executions
