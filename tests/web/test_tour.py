"""Every page in Chromium under the prefix: it renders, its script runs under the strict CSP
without a single console error, and logging out from the header ends the session."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PrefixedStack, browser_login
from .notebooks import TRAIN, upload

pytestmark = pytest.mark.slow


def test_tour_of_the_pages(page: Any, stack: PrefixedStack) -> None:
    from playwright.sync_api import expect

    project, commit = upload(stack, "tour", TRAIN)
    execution = stack.submit(project["id"], commit, "train", title="a tour")
    final = stack.wait_status(execution["id"], timeout=240)
    body = {"project": project["id"], "name": "tour-api", "target": "local"}
    assert stack.api("POST", "/api/v0/deployments/", json=body).status_code == 201

    browser_login(page, stack)
    pages = {
        "projects": ("", "#projects"),
        "executions": (f"p/{project['id']}/", "#executions"),
        "execution": (f"p/{project['id']}/executions/{final['counter']}/", "#log"),
        "compare": (f"compare?e={execution['id']}", "#compare-charts .chart"),
        "environments": ("environments", "#environments"),
        "deployments": ("deployments", "section.deployment"),
        "admin": ("admin", "#users"),
        "tokens": ("tokens", "#tokens"),
    }
    for name, (path, selector) in pages.items():
        page.goto(stack.pages + path)
        expect(page.locator(selector).first).to_be_visible()
        expect(page.locator("header.top nav")).to_be_visible()
        page.shots(name)
    expect(page.locator("body")).to_have_attribute("data-page", "tokens")
    page.goto(stack.pages + f"p/{project['id']}/executions/{final['counter']}/")
    expect(page.locator("#log")).to_contain_text("training done")
    expect(page.locator(".chart[data-metric='loss']")).to_have_attribute("data-points", "3")

    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()
    page.goto(stack.pages + "tokens")
    expect(page.locator("#login-form")).to_be_visible()  # the session is over
    assert page.url.startswith(stack.pages + "login?next=")
    assert page.console_errors == [], page.console_errors
    assert page.dialogs == []
