"""Acceptance 3: every page works behind a base URL prefix and refuses access without login.

Plain HTTP against a real master under a prefix: pages redirect to the login page, data answers
401 (JSON), forms without the XSRF token are refused, sessions end at logout, tokens made on the
tokens page work on the API until revoked.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import requests

from .conftest import ADMIN_PASSWORD, PREFIX, PrefixedStack, login_session

pytestmark = pytest.mark.slow

PAGES = ["", "tokens", "p/nope/", "p/nope/executions/1/", "compare", "environments",
         "deployments", "admin"]  # fmt: skip
DATA = ["live/executions/e-nope/events", "live/projects/nope/executions",
        "p/nope/executions/1/notebook", "live/environments",
        "live/deployment-endpoints/nope/build-log"]  # fmt: skip


def xsrf_of(session: requests.Session, url: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', session.get(url, timeout=30).text)
    assert match
    return match.group(1)


def test_pages_redirect_to_login_and_data_is_refused(stack: PrefixedStack) -> None:
    for path in PAGES:
        resp = requests.get(stack.pages + path, allow_redirects=False, timeout=30)
        assert resp.status_code == 302, (path, resp.status_code)
        assert resp.headers["Location"].startswith(f"{PREFIX}login?next="), resp.headers
    for path in DATA:
        resp = requests.get(stack.pages + path, allow_redirects=False, timeout=30)
        assert resp.status_code == 401, (path, resp.status_code, resp.text)
    # A form posted without a session (but with a valid XSRF pair) is refused too.
    anonymous = requests.Session()
    xsrf = xsrf_of(anonymous, stack.pages + "login")
    resp = anonymous.post(
        stack.pages + "p/nope/executions/1/stop", data={"_xsrf": xsrf}, allow_redirects=False
    )
    assert resp.status_code == 401
    # The login page itself and the static files are public, under the prefix only.
    assert requests.get(stack.pages + "login", timeout=30).status_code == 200
    base = f"http://127.0.0.1:{stack.port}/"
    assert requests.get(base + "login", timeout=30, allow_redirects=False).status_code == 404


def test_pages_at_the_root_base_url(make_stack: Callable[[str], PrefixedStack]) -> None:
    stack = make_stack("/")
    resp = requests.get(stack.pages + "environments", allow_redirects=False, timeout=30)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=")
    session = login_session(stack)
    assert next(c for c in session.cookies if c.name == "vh_session").path == "/"
    for path in ("", "environments", "deployments", "admin", "tokens"):
        resp = session.get(stack.pages + path, timeout=30)
        assert resp.status_code == 200, path
        for url in re.findall(r'(?:href|src|action)="(?!data:)([^"]*)"', resp.text):
            assert url.startswith("/") and not url.startswith("//"), (path, url)
    assert requests.get(stack.pages + "api/v0/users/me/", timeout=30).status_code == 401


def test_login_session_cookie_and_pages_under_the_prefix(stack: PrefixedStack) -> None:
    wrong = requests.Session()
    xsrf = xsrf_of(wrong, stack.pages + "login")
    resp = wrong.post(
        stack.pages + "login",
        data={"username": "admin", "password": "nope", "_xsrf": xsrf},
        allow_redirects=False,
    )
    assert resp.status_code == 401 and "vh_session" not in resp.cookies
    # No XSRF token: refused before the password is even looked at.
    resp = requests.post(
        stack.pages + "login", data={"username": "admin", "password": ADMIN_PASSWORD}, timeout=30
    )
    assert resp.status_code == 403

    session = login_session(stack)
    cookie = next(c for c in session.cookies if c.name == "vh_session")
    assert cookie.path == PREFIX
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"

    project = stack.create_project("pages")
    for path in [*PAGES[:2], f"p/{project['id']}/", *PAGES[4:]]:
        resp = session.get(stack.pages + path, timeout=30)
        assert resp.status_code == 200, (path, resp.text[:500])
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        # Every link and asset stays under the prefix.
        for url in re.findall(r'(?:href|src|action)="(/[^"]*)"', resp.text):
            assert url.startswith(PREFIX), (path, url)
        assert "<script>" not in resp.text  # no inline script anywhere
    assets = re.findall(r'(?:href|src)="([^"]*static/[^"]*)"', session.get(stack.pages).text)
    assert len(assets) == 3
    for asset in assets:
        assert requests.get(f"http://127.0.0.1:{stack.port}{asset}", timeout=30).ok, asset
    # Unknown project: an error page, not a traceback.
    resp = session.get(stack.pages + "p/nope/", timeout=30)
    assert resp.status_code == 404 and "No project" in resp.text

    # Logging out ends the session everywhere (the cookie alone is worth nothing afterwards).
    stolen = requests.Session()
    stolen.cookies.set("vh_session", cookie.value, path=PREFIX)
    assert stolen.get(stack.pages + "tokens", allow_redirects=False, timeout=30).status_code == 200
    xsrf = xsrf_of(session, stack.pages + "tokens")
    resp = session.post(stack.pages + "logout", data={"_xsrf": xsrf}, allow_redirects=False)
    assert resp.status_code == 302
    assert stolen.get(stack.pages + "tokens", allow_redirects=False, timeout=30).status_code == 302


def test_tokens_page_makes_and_revokes_api_tokens(stack: PrefixedStack) -> None:
    session = login_session(stack)
    xsrf = xsrf_of(session, stack.pages + "tokens")
    resp = session.post(
        stack.pages + "tokens", data={"_xsrf": xsrf, "action": "create", "name": "<b>laptop</b>"}
    )
    assert resp.status_code == 201
    token = re.search(r'<code id="new-token">([^<]+)</code>', resp.text).group(1)  # type: ignore[union-attr]
    assert "&lt;b&gt;laptop&lt;/b&gt;" in resp.text and "<b>laptop</b>" not in resp.text
    me = stack.api("GET", "/api/v0/users/me/", token=token)
    assert me.status_code == 200 and me.json()["username"] == "admin"
    # The token is shown once: the list has only its hash's start.
    listing = session.get(stack.pages + "tokens", timeout=30).text
    assert token not in listing
    token_ids = re.findall(r'name="id" value="([0-9a-f]+)"', listing)
    assert len(token_ids) == 2  # the admin token from the environment, and the new one
    for token_id in token_ids:
        session.post(
            stack.pages + "tokens", data={"_xsrf": xsrf, "action": "revoke", "id": token_id}
        )
    assert stack.api("GET", "/api/v0/users/me/", token=token).status_code == 401
    resp = session.post(stack.pages + "tokens", data={"_xsrf": xsrf, "action": "revoke", "id": "x"})
    assert resp.status_code == 404


def test_admin_page_is_for_admins(stack: PrefixedStack) -> None:
    admin = login_session(stack)
    xsrf = xsrf_of(admin, stack.pages + "admin")
    resp = admin.post(
        stack.pages + "admin",
        data={"_xsrf": xsrf, "action": "create-user", "username": "ann", "password": "secret-pw-1"},
    )
    assert resp.status_code == 201 and "User ann created." in resp.text
    resp = admin.post(
        stack.pages + "admin",
        data={"_xsrf": xsrf, "action": "create-user", "username": "ann", "password": "secret-pw-1"},
    )
    assert resp.status_code == 409
    resp = admin.post(
        stack.pages + "admin",
        data={"_xsrf": xsrf, "action": "create-user", "username": "bob", "password": "short"},
    )
    assert resp.status_code == 400 and "at least 8" in resp.text
    ann = login_session(stack, "ann", "secret-pw-1")
    assert ann.get(stack.pages + "admin", timeout=30).status_code == 403
    assert ann.get(stack.pages + "environments", timeout=30).status_code == 200
