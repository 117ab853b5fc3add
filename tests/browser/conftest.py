"""A real `jupyter lab` with the built lab extension, a real master and agent, and Chromium.

Needs: Debian's `chromium` (apt), PyPI `playwright` (its Python API only: never `playwright
install`), and the lab extension built (`cd labextension && npm ci && npm run build:prod`, which
the wheel build does too). Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack

from .lab import LABEXTENSION, REPO, Lab

ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("VH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def lab(tmp_path: Path, master: Stack) -> Iterator[Lab]:
    """`jupyter lab` with the jupyter-valohai server and lab extensions, on the real master."""
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail(
            f"The lab extension is not built ({LABEXTENSION} is missing). "
            "Build it: cd labextension && npm ci && npm run build:prod"
        )
    root = tmp_path / "root"
    root.mkdir()
    server = Lab(root, tmp_path / "lab", master)
    server.home.mkdir()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install -y chromium (or set VH_CHROMIUM).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("No Playwright: pip install playwright (and never `playwright install`).")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Shots:
    """Numbered screenshots of one test, saved as test artifacts."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.dir = ARTIFACTS / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.count = 0

    def __call__(self, label: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{label}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def page(browser: Any, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page logged in to the Lab (the token once; then the cookie), console errors kept."""
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    pg = context.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.shots = Shots(pg, request.node.name)  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        try:
            pg.shots("last")
        finally:
            context.close()
