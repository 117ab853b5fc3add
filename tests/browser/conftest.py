"""A real `jupyter lab` with the built lab extension, a real master and agent, and Chromium.

Needs: Debian's `chromium` (apt), PyPI `playwright` (its Python API only: never `playwright
install`), and the lab extension built (`cd labextension && npm ci && npm run build:prod`, which
the wheel build does too). Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import Shots, launch
from tests.e2e.stack import Stack

from .lab import LABEXTENSION, REPO, Lab

ARTIFACTS = REPO / "test-artifacts" / "browser"


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
    with launch() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page logged in to the Lab (the token once; then the cookie), console errors kept."""
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    pg = context.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.shots = Shots(pg, ARTIFACTS, request.node.name)  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        try:
            pg.shots("last")
        finally:
            context.close()
