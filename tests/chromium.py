"""Debian's Chromium driven by Playwright, and numbered screenshots, for the browser suites."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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


@contextmanager
def launch() -> Iterator[Any]:
    """A Chromium browser; fails (never skips) when Chromium or Playwright is missing."""
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
    """Numbered screenshots of one test, saved as test artifacts under ``root``."""

    def __init__(self, page: Any, root: Path, name: str) -> None:
        self.page = page
        self.dir = root / re.sub(r"[^\w.-]+", "_", name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.count = 0

    def __call__(self, label: str, selector: str | None = None) -> Path:
        """The viewport (scrolled to ``selector`` first, if given). Not full-page: Chromium
        leaves out-of-process frames (a sandboxed notebook) blank in full-page shots."""
        self.count += 1
        path = self.dir / f"{self.count:02d}-{label}.png"
        if selector:
            self.page.locator(selector).first.scroll_into_view_if_needed()
        self.page.screenshot(path=str(path))
        return path
