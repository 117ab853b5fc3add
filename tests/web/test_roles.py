"""The pages follow project roles: a stranger sees nothing of a project, a viewer reads but can
neither stop nor copy; the admin page manages who is a member."""

from __future__ import annotations

import re

import pytest
import requests

from .conftest import PrefixedStack, login_session
from .notebooks import TRAIN, upload

pytestmark = pytest.mark.slow


def xsrf_of(session: requests.Session, url: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', session.get(url, timeout=30).text)
    assert match
    return match.group(1)


def status(session: requests.Session, method: str, url: str, **kw: object) -> int:
    with session.request(method, url, stream=True, timeout=30, allow_redirects=False, **kw) as r:
        return r.status_code


def test_strangers_and_viewers(stack: PrefixedStack) -> None:
    project, commit = upload(stack, "secret-project", TRAIN)
    execution = stack.submit(project["id"], commit, "train", title="secret-title")
    stack.wait_status(execution["id"], timeout=240)

    admin = login_session(stack)
    xsrf = xsrf_of(admin, stack.pages + "admin")
    for name in ("stranger", "viewer"):
        resp = admin.post(
            stack.pages + "admin",
            data={"_xsrf": xsrf, "action": "create-user", "username": name, "password": "pw-" * 4},
        )
        assert resp.status_code == 201, resp.text
    resp = admin.post(
        stack.pages + "admin",
        data={
            "_xsrf": xsrf,
            "action": "add-member",
            "project": project["id"],
            "username": "viewer",
            "role": "viewer",
        },
    )
    assert resp.status_code == 200 and "viewer <small>viewer</small>" in resp.text, resp.text

    here = f"p/{project['id']}/executions/1/"
    reads = [
        f"p/{project['id']}/",
        here,
        here + "notebook",
        f"compare?e={execution['id']}",
        f"live/executions/{execution['id']}/events",
        f"live/projects/{project['id']}/executions",
    ]
    stranger = login_session(stack, "stranger", "pw-" * 4)
    assert "secret-project" not in stranger.get(stack.pages, timeout=30).text
    for path in reads:
        assert status(stranger, "GET", stack.pages + path) == 404, path
    token = xsrf_of(stranger, stack.pages + "tokens")
    for action in ("stop", "copy"):
        code = status(stranger, "POST", stack.pages + here + action, data={"_xsrf": token})
        assert code == 404, action

    viewer = login_session(stack, "viewer", "pw-" * 4)
    assert "secret-project" in viewer.get(stack.pages, timeout=30).text
    for path in reads:
        assert status(viewer, "GET", stack.pages + path) == 200, path
    assert "secret-title" in viewer.get(stack.pages + here, timeout=30).text
    token = xsrf_of(viewer, stack.pages + "tokens")
    for action in ("stop", "copy"):
        code = status(viewer, "POST", stack.pages + here + action, data={"_xsrf": token})
        assert code == 403, action
    assert len(stack.api("GET", "/api/v0/executions/").json()["results"]) == 1

    # Removing the membership ends the viewer's access at once.
    viewer_id = re.search(
        r'name="user" value="([^"]+)"', admin.get(stack.pages + "admin", timeout=30).text
    )
    assert viewer_id
    admin.post(
        stack.pages + "admin",
        data={
            "_xsrf": xsrf,
            "action": "remove-member",
            "project": project["id"],
            "user": viewer_id.group(1),
        },
    )
    assert status(viewer, "GET", stack.pages + here) == 404
