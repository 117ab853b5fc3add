"""The web application against a real master and agent, behind a base URL prefix.

Browser tests need Debian's `chromium` (apt) and PyPI `playwright` (never `playwright install`),
and the page bundle built (`cd master/web/frontend && npm ci && npm run build`; scripts/test does
it). Screenshots go to test-artifacts/web/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_valohai.models import new_token
from tests.chromium import Shots, launch
from tests.e2e.stack import Stack

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "web"
BUNDLE = REPO / "master" / "web" / "static" / "build" / "app.js"
PREFIX = "/team/valohai/"
ADMIN_PASSWORD = "correct horse battery"


@dataclass
class PrefixedStack(Stack):
    """A stack whose master serves everything under ``prefix`` (as behind a reverse proxy)."""

    prefix: str = PREFIX

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix.rstrip('/')}"

    @property
    def pages(self) -> str:
        """The pages' URL."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env["VH_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        return env


@pytest.fixture
def make_stack(
    tmp_path: Path, mongo_url: str, mongo_db_name: str, redis_url: str
) -> Iterator[Callable[[str], PrefixedStack]]:
    """Start a real master under a prefix (admin password set) and one real local agent."""
    if not BUNDLE.exists():
        pytest.fail(
            f"The page bundle is not built ({BUNDLE} is missing). "
            "Build it: cd master/web/frontend && npm ci && npm run build"
        )
    started: list[PrefixedStack] = []

    def make(prefix: str) -> PrefixedStack:
        s = PrefixedStack(
            str(tmp_path / f"stack{len(started)}"),
            mongo_url,
            mongo_db_name,
            redis_url,
            master_args=["--base-url", prefix],
            prefix=prefix,
        )
        started.append(s)
        s.start_master()
        s.start_agent()
        return s

    try:
        yield make
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def stack(make_stack: Callable[[str], PrefixedStack]) -> PrefixedStack:
    """A real master under :data:`PREFIX` and one real local agent."""
    return make_stack(PREFIX)


def login_session(stack: PrefixedStack, username: str = "admin", password: str = ADMIN_PASSWORD):
    """A requests session logged in through the login form (XSRF token from the page)."""
    session = requests.Session()
    page = session.get(stack.pages + "login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf, page.text
    resp = session.post(
        stack.pages + "login",
        data={"username": username, "password": password, "_xsrf": xsrf.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 302, resp.text
    return session


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright."""
    with launch() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; dialogs, console errors and CSP violations recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.console_errors = []  # type: ignore[attr-defined]

    def on_dialog(dialog: Any) -> None:
        pg.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on(
        "response",
        lambda r: r.status >= 400 and pg.console_errors.append(f"{r.status} {r.url}"),
    )
    pg.shots = Shots(pg, ARTIFACTS, request.node.name)  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        try:
            pg.shots("last")
        finally:
            context.close()


def browser_login(page: Any, stack: PrefixedStack, target: str = "") -> None:
    """Open ``target`` (a path under the prefix): the login page comes first; log in as admin."""
    page.goto(stack.pages + target)
    page.wait_for_selector("#login-form")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("header.top nav")


def new_user_token() -> str:
    return new_token()
