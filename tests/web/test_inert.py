"""Acceptance 2: what a notebook prints or displays, and what users type, renders inertly.

A real agent runs a notebook whose log lines, HTML and Markdown outputs and metadata keys carry
``<script>`` and ``<img onerror>`` payloads (which would set ``window.pwned`` and open a dialog);
the project name, title and a parameter carry them too. In Chromium, the execution page, the
table and the comparison show them as text: no dialog opens, no flag is set, no script element or
event handler attribute reaches any frame, and the browser never even had to refuse one.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PrefixedStack, browser_login
from .notebooks import EVIL, PAYLOAD, upload

pytestmark = pytest.mark.slow

UI_MS = 60_000


def test_payloads_render_inertly(page: Any, stack: PrefixedStack) -> None:
    from playwright.sync_api import expect

    project, commit = upload(stack, PAYLOAD, EVIL, markdown=f"# Notes {PAYLOAD}")
    execution = stack.submit(
        project["id"], commit, "train", title=PAYLOAD, parameters={"message": PAYLOAD}
    )
    final = stack.wait_status(execution["id"], timeout=240)
    assert final["status"] == "complete", stack.explain(execution["id"])

    browser_login(page, stack, f"p/{project['id']}/executions/{final['counter']}/")
    expect(page.locator("#status")).to_have_text("complete", timeout=UI_MS)
    log = page.locator("#log")
    expect(log).to_contain_text(PAYLOAD, timeout=UI_MS)  # the printed payload, as text
    expect(page.locator("h1 + .subtitle")).to_have_text(PAYLOAD)
    expect(page.locator("#parameters")).to_contain_text(PAYLOAD)
    expect(page.locator(".chart[data-metric='loss']")).to_have_attribute("data-last", "0.5")
    expect(page.locator(".u-title", has_text="onerror")).to_have_count(1)  # the key, as text
    frame = page.frame_locator("#notebook")
    expect(frame.locator("body")).to_contain_text(PAYLOAD, timeout=UI_MS)  # stdout, as text
    expect(frame.locator("h1")).to_contain_text("Notes")
    page.shots("execution")

    page.goto(stack.pages + f"p/{project['id']}/")
    expect(page.locator("#executions .title")).to_have_text(PAYLOAD)
    expect(page.locator("h1")).to_contain_text(PAYLOAD)
    page.goto(stack.pages + f"compare?e={execution['id']}")
    expect(page.locator("#compare")).to_contain_text(PAYLOAD)
    page.goto(stack.pages)
    expect(page.locator("#projects")).to_contain_text(PAYLOAD)
    page.goto(stack.pages + f"p/{project['id']}/executions/{final['counter']}/")
    expect(page.locator("#log")).to_contain_text(PAYLOAD, timeout=UI_MS)
    expect(page.frame_locator("#notebook").locator("body")).to_contain_text("click")
    page.shots("again")

    # Nothing ran: no dialog, no flag, in the page or the notebook's frame.
    assert page.dialogs == []
    assert page.evaluate("window.pwned") is None
    for frame in page.frames:
        assert frame.locator("script:not([src]), [onerror], [onload], svg").count() == 0, frame.url
        assert frame.locator("a[href^='javascript:']").count() == 0, frame.url
    notebook = page.frame_locator("#notebook")
    assert notebook.locator("img").count() >= 1  # the img stayed, without its handler
    assert page.locator("#notebook").get_attribute("sandbox") == ""
    # The browser never had to block a script: the payloads never became script at all.
    assert not [m for m in page.console_errors if "script" in m.lower()], page.console_errors
