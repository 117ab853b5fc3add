"""The JupyterLab sidebar in Chromium: run a notebook with a changed parameter, stop another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.lab import Lab
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

TRAIN = """\
import json, os
for epoch in range(epochs):
    print(json.dumps({"epoch": epoch, "loss": 1.0 / (epoch + 1)}))
print(f"greeting: {message} x{epochs}")
with open(os.path.join(os.environ.get("VH_OUTPUTS_DIR", "."), "result.txt"), "w") as f:
    f.write(message)
"""
SLEEP = """\
import time
print("sleeping", flush=True)
time.sleep(seconds)
"""
# Generous limits (first kernel start, papermill imports on a busy 2-core machine): the test
# waits for states, it never measures time.
RUN_MS = 180_000
UI_MS = 60_000


def write_notebook(path: Path, parameters: str, code: str) -> None:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nbformat.write(nb, str(path))


def open_panel(page: Any, lab: Lab, notebook: str) -> None:
    """Open the notebook in Lab, then the sidebar through the notebook's toolbar button."""
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}")
    # The opened notebook's cells (another open notebook's tab may hold hidden ones first).
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell >> visible=true", timeout=UI_MS)
    # Lab may restore other notebooks too: the button of the notebook shown (not a hidden tab's)
    page.get_by_title("Run this notebook on Valohai").locator("visible=true").first.click()
    panel = page.locator("#jupyter-valohai-sidebar")
    expect(panel).to_be_visible(timeout=UI_MS)
    expect(panel.locator(".jp-Valohai-connection")).to_have_attribute(
        "data-state", "ok", timeout=UI_MS
    )
    expect(panel.locator(".jp-Valohai-run .jp-Valohai-path")).to_have_text(notebook)


def executions(master: Stack) -> list[dict]:
    return list(master.api("GET", "/api/v0/executions/").json()["results"])


def test_run_a_notebook_from_the_panel(page: Any, lab: Lab, master: Stack) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "train.ipynb", "epochs = 2\nmessage = 'hello'", TRAIN)
    open_panel(page, lab, "train.ipynb")
    panel = page.locator("#jupyter-valohai-sidebar")
    epochs = panel.locator("#jp-Valohai-param-epochs")
    message = panel.locator("#jp-Valohai-param-message")
    expect(epochs).to_have_value("2")
    expect(message).to_have_value("hello")
    # Who we are on the master; the environment's queue and workers (the agent claims).
    expect(panel.locator(".jp-Valohai-connection")).to_contain_text("logged in as admin")
    expect(panel.get_by_label("Environment").locator("option:checked")).to_contain_text("0 queued")
    expect(panel.get_by_label("Environment").locator("option:checked")).to_contain_text("1 worker")
    page.shots("form")

    # A bad value is refused in the browser: nothing reaches the master.
    epochs.fill("three")
    panel.get_by_role("button", name="Run on Valohai").click()
    expect(panel.locator('[data-param="epochs"] .jp-Valohai-fieldError')).to_contain_text(
        "epochs must be an integer"
    )
    page.shots("invalid")
    assert executions(master) == []

    epochs.fill("3")
    message.fill("from the browser")
    panel.get_by_role("button", name="Run on Valohai").click()
    detail = panel.locator(".jp-Valohai-detail")
    expect(detail).to_be_visible(timeout=UI_MS)
    page.shots("submitted")
    expect(detail).to_have_attribute("data-status", "complete", timeout=RUN_MS)
    expect(detail.locator(".jp-Valohai-logs")).to_contain_text("greeting: from the browser x3")
    expect(detail.locator('[data-output="result.txt"]')).to_be_visible(timeout=UI_MS)
    expect(detail.locator('[data-metric="loss"]')).to_be_visible()
    expect(detail.locator('[data-metric="loss"] canvas').first).to_be_visible()  # uPlot's
    expect(detail.locator('[data-metric="loss"] .jp-Valohai-metricValue')).to_have_text("0.3333")
    page.shots("complete")

    # "Open in Lab" saves the output under the root dir and opens it in a Lab tab.
    detail.locator('[data-output="result.txt"]').get_by_role("button", name="Open in Lab").click()
    saved = lab.root / "valohai-outputs" / "browser" / "1" / "result.txt"
    expect(
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="result.txt")
    ).to_be_visible(timeout=UI_MS)
    assert saved.read_text() == "from the browser"

    (execution,) = executions(master)
    assert execution["status"] == "complete"
    assert execution["runtime_config"] == {"jupyter_path": "train.ipynb"}
    assert execution["parameters"]["epochs"] == 3
    assert execution["parameters"]["message"] == "from the browser"
    assert execution["project"]["name"] == "browser"

    # The list shows it with its final status (pushed, then read once).
    detail.get_by_role("button", name="Back to the list").click()
    item = panel.locator(f'[data-execution="{execution["id"]}"]')
    expect(item.locator(".jp-Valohai-status")).to_have_text("complete")

    # "Re-run with changes" from another notebook's page: the form is the notebook the
    # execution ran (the server recorded its path), with the execution's values.
    write_notebook(lab.root / "other.ipynb", "rate = 0.5", "print(rate)")
    open_panel(page, lab, "other.ipynb")
    item = panel.locator(f'[data-execution="{execution["id"]}"]')
    item.get_by_role("button").click()
    detail.get_by_role("button", name="Re-run with changes").click()
    expect(panel.locator(".jp-Valohai-run .jp-Valohai-path")).to_have_text("train.ipynb")
    expect(panel.locator(".jp-Valohai-run")).to_contain_text("Prefilled from execution #1")
    expect(epochs).to_have_value("3")
    expect(message).to_have_value("from the browser")
    page.shots("rerun-form")
    assert page.console_errors == [], page.console_errors


def test_stop_a_long_execution_from_the_panel(page: Any, lab: Lab, master: Stack) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "sleepy.ipynb", "seconds = 600", SLEEP)
    open_panel(page, lab, "sleepy.ipynb")
    panel = page.locator("#jupyter-valohai-sidebar")
    panel.get_by_role("button", name="Run on Valohai").click()
    detail = panel.locator(".jp-Valohai-detail")
    expect(detail).to_have_attribute("data-status", "started", timeout=RUN_MS)
    page.shots("running")

    # The environment's workers: the agent, busy with this execution (issue 6).
    (execution,) = executions(master)
    workers = panel.locator(".jp-Valohai-workers")
    workers.locator("summary").click()
    agent = workers.locator('[data-worker="agent-0"]')
    for _ in range(60):  # its heartbeat says it is busy; read again until then
        if agent.get_attribute("data-state", timeout=UI_MS) == "busy":
            break
        workers.get_by_role("button", name="Refresh workers").click()
        page.wait_for_timeout(500)
    expect(agent).to_have_attribute("data-state", "busy")
    expect(
        agent.get_by_role("button", name=f"#{execution['counter']} sleepy (started)")
    ).to_be_visible()
    expect(workers.locator("summary")).to_contain_text("1 worker: 1 busy")
    page.shots("workers")

    detail.get_by_role("button", name="Stop").click()
    expect(detail).to_have_attribute("data-status", "stopped", timeout=RUN_MS)
    expect(detail.get_by_role("button", name="Stop")).to_be_disabled()
    page.shots("stopped")
    (execution,) = executions(master)
    assert execution["status"] == "stopped"

    # An execution started elsewhere (here: the server's route, as %valohai would) appears in
    # the list and follows its status, pushed by the project's one stream.
    detail.get_by_role("button", name="Back to the list").click()
    answer = lab.api("POST", "valohai/executions", json={"path": "sleepy.ipynb"})
    assert answer.status_code == 201, answer.text
    other = answer.json()
    item = panel.locator(f'[data-execution="{other["id"]}"]')
    expect(item.locator(".jp-Valohai-status")).to_have_text("started", timeout=RUN_MS)
    page.shots("pushed-started")
    assert lab.api("POST", f"valohai/executions/{other['id']}/stop").status_code == 200
    expect(item.locator(".jp-Valohai-status")).to_have_text("stopped", timeout=RUN_MS)
    page.shots("pushed-stopped")


def test_server_errors_are_readable(page: Any, lab: Lab, master: Stack) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "broken.ipynb", "epochs = (", "print(epochs)")
    open_panel(page, lab, "broken.ipynb")
    run = page.locator("#jupyter-valohai-sidebar .jp-Valohai-run")
    expect(run.locator(".jp-Valohai-error")).to_contain_text(
        "The notebook's parameters cell is not valid Python."
    )
    expect(run.get_by_role("button", name="Run on Valohai")).to_be_disabled()
    page.shots("broken-parameters")
    assert executions(master) == []

    # Fixed in the notebook and saved: the form follows.
    editor = page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("epochs = 7")
    page.keyboard.press("Control+s")
    expect(run.locator("#jp-Valohai-param-epochs")).to_have_value("7", timeout=UI_MS)
    expect(run.locator(".jp-Valohai-error")).to_have_count(0)
    expect(run.get_by_role("button", name="Run on Valohai")).to_be_enabled()
    page.shots("fixed-parameters")


def test_a_master_that_does_not_answer_is_said_so(page: Any, lab: Lab, master: Stack) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "train.ipynb", "epochs = 2", "print(epochs)")
    master.stop()
    page.goto(f"{lab.url}/lab/tree/train.ipynb?token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=UI_MS)
    page.get_by_title("Run this notebook on Valohai").first.click()
    connection = page.locator("#jupyter-valohai-sidebar .jp-Valohai-connection")
    expect(connection).to_have_attribute("data-state", "down", timeout=UI_MS)
    expect(connection).to_contain_text(f"The master at {master.url} does not answer.")
    page.shots("master-down")


def test_create_a_project_from_the_panel(page: Any, lab: Lab, master: Stack) -> None:
    from playwright.sync_api import expect

    master.create_project("taken")
    write_notebook(lab.root / "train.ipynb", "epochs = 2", "print(epochs)")
    open_panel(page, lab, "train.ipynb")
    panel = page.locator("#jupyter-valohai-sidebar")
    project = panel.get_by_label("Project", exact=True)

    panel.get_by_role("button", name="New").click()
    panel.get_by_label("New project name").fill("taken")
    panel.get_by_role("button", name="Create").click()
    expect(panel.get_by_role("alert")).to_contain_text("You already have a project called 'taken'.")
    page.shots("duplicate")

    panel.get_by_label("New project name").fill("made-in-lab")
    panel.get_by_role("button", name="Create").click()
    expect(project.locator("option:checked")).to_have_text("made-in-lab")
    page.shots("created")
    names = [p["name"] for p in master.api("GET", "/api/v0/projects/").json()["results"]]
    assert sorted(names) == ["made-in-lab", "taken"]
