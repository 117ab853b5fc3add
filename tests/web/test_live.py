"""Acceptance 1: log in, watch a running execution live, see it complete with its metrics chart,
queue a copy with another parameter, and compare the two.

The notebook prints a line and then waits at a gate (a file the test creates only once the line
is on the page): the line can only have been pushed while the execution was running. The page
never polls; the log comes from the execution's event stream and the status from the project's
feed (both server-sent events fed by Redis pub/sub).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from .conftest import PrefixedStack, browser_login
from .notebooks import TRAIN, upload

pytestmark = pytest.mark.slow

UI_MS = 120_000
#: Records when each log line reaches the page (for the latency figure; never asserted on).
WATCH_LOG = """() => {
  window.lineSeen = {};
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (!(n.textContent in window.lineSeen)) window.lineSeen[n.textContent] = Date.now();
    }
  }).observe(document.getElementById('log'), {childList: true});
}"""


def test_watch_a_run_live_then_copy_and_compare(
    page: Any, stack: PrefixedStack, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    gate = tmp_path / "gate"
    project, commit = upload(stack, "live", TRAIN)
    first = stack.submit(
        project["id"], commit, "train", parameters={"epochs": 3, "gate": str(gate)}
    )
    stack.wait_status(first["id"], {"started"}, timeout=120)

    # Log in (the executions table is where the login page sends us back to).
    browser_login(page, stack, f"p/{project['id']}/")
    row = page.locator(f"#executions tr[data-id='{first['id']}']")
    expect(row.locator(".status")).to_have_text("started", timeout=UI_MS)
    page.shots("table")
    row.locator(".counter a").click()
    page.wait_for_selector("#execution")
    page.evaluate(WATCH_LOG)
    log = page.locator("#log")
    expect(log).to_contain_text("waiting at the gate: hello", timeout=UI_MS)
    expect(page.locator("#status")).to_have_text("started")  # still running: pushed live
    page.shots("live-line", "#log")

    # How long from the agent reading the line to the page showing it (reported, not asserted).
    events = stack.events(first["id"])
    printed = next(e for e in events if "waiting at the gate" in e["message"])
    seen = page.evaluate("window.lineSeen")
    shown_at = next((t for text, t in seen.items() if "waiting at the gate" in text), None)
    if shown_at is not None:
        at = dt.datetime.fromisoformat(printed["time"].replace("Z", "+00:00")).timestamp()
        print(f"\nlog line latency (agent stamp -> on the page): {shown_at / 1000 - at:.3f} s")

    gate.write_text("open")
    expect(page.locator("#status")).to_have_text("complete", timeout=UI_MS)
    expect(log).to_contain_text("training done")
    chart = page.locator(".chart[data-metric='loss']")
    expect(chart).to_have_attribute("data-points", "3", timeout=UI_MS)
    expect(chart).to_have_attribute("data-last", "0.3333")
    expect(page.locator("#exit-code")).to_have_text("0")
    expect(page.locator("#outputs")).to_contain_text("train.ipynb")  # re-read once at the end
    page.shots("complete", "#metrics")
    frame = page.frame_locator("#notebook")
    expect(frame.locator("body")).to_contain_text("training done", timeout=UI_MS)
    page.shots("notebook", "#notebook")

    # Copy to a new execution with 5 epochs and no gate; it runs to completion on its own page.
    page.fill("#copy-form input[name='param:epochs']", "5")
    page.fill("#copy-form input[name='param:gate']", "")
    page.click("#copy")
    expect(page.locator("h1")).to_contain_text("#2 train", timeout=UI_MS)
    expect(page.locator("#status")).to_have_text("complete", timeout=UI_MS)
    expect(page.locator(".chart[data-metric='loss']")).to_have_attribute(
        "data-points", "5", timeout=UI_MS
    )
    expect(page.locator("#parameters")).to_contain_text("5")

    # Compare the two from the project's table.
    page.goto(stack.pages + f"p/{project['id']}/")
    expect(page.locator("#timing .chart")).to_have_attribute("data-points", "2")
    page.shots("table-timing", "#timing")
    for execution in page.locator("#executions tbody tr").all():
        execution.locator("input[type=checkbox]").check()
    page.click("#compare-button")
    table = page.locator("#compare")
    expect(table.locator("thead th")).to_have_count(3)
    epochs = table.locator("tr.param", has_text="epochs")
    expect(epochs.locator("td")).to_have_text(["5", "3"])
    loss = table.locator("tr.metric", has_text="loss")
    expect(loss.locator("td")).to_have_text(["0.2", "0.3333"])
    chart = page.locator("#compare-charts .chart[data-metric='loss']")
    expect(chart).to_have_attribute("data-points", "5")
    expect(chart).to_have_attribute("data-last", "0.2,0.3333")
    page.shots("compare", "#compare-charts")
    assert page.dialogs == []


def test_stop_from_the_page(page: Any, stack: PrefixedStack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    project, commit = upload(stack, "stoppable", TRAIN)
    execution = stack.submit(
        project["id"], commit, "train", parameters={"gate": str(tmp_path / "never")}
    )
    stack.wait_status(execution["id"], {"started"}, timeout=120)
    browser_login(page, stack, f"p/{project['id']}/executions/{execution['counter']}/")
    expect(page.locator("#log")).to_contain_text("waiting at the gate", timeout=UI_MS)
    page.click("#stop")
    expect(page.locator("#status")).to_have_text("stopped", timeout=UI_MS)
    expect(page.locator("#stop")).to_be_disabled()
    page.shots("stopped")
    assert stack.wait_status(execution["id"])["status"] == "stopped"


def test_environments_page_is_live(page: Any, stack: PrefixedStack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    gate = tmp_path / "gate"
    project, commit = upload(stack, "busy", TRAIN)
    browser_login(page, stack, "environments")
    row = page.locator("#environments tr[data-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".unfinished")).to_have_text("0")
    stack.submit(project["id"], commit, "train", parameters={"gate": str(gate)})
    expect(row.locator(".unfinished")).to_have_text("1", timeout=UI_MS)  # pushed, not polled
    expect(row.locator(".workers")).to_have_text("1", timeout=UI_MS)
    page.shots("busy")
    gate.write_text("open")
    expect(row.locator(".unfinished")).to_have_text("0", timeout=UI_MS)
    expect(row.locator(".queue-depth")).to_have_text("0")
