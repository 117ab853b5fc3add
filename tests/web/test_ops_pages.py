"""The operator's pages: environments (queue depth, workers) and deployments, with their data."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import PrefixedStack, login_session

pytestmark = pytest.mark.slow


def cells(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", body)]


def test_environments_and_deployments(stack: PrefixedStack) -> None:
    session = login_session(stack)
    # The agent is a worker of the default environment once it has claimed (long-polled).
    deadline = time.monotonic() + 60
    while True:
        row = cells(session.get(stack.pages + "environments", timeout=30).text, "environments")
        if row[4] == "1" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row[4] == "1", row
    assert row[:4] == ["local", "local", "0", "0"], row

    page = session.get(stack.pages + "deployments").text
    assert 'id="no-deployments"' in page
    project = stack.create_project("served")
    body = {"project": project["id"], "name": "api-1", "target": "local"}
    resp = stack.api("POST", "/api/v0/deployments/", json=body)
    assert resp.status_code == 201, resp.text
    page = session.get(stack.pages + "deployments").text
    assert "api-1" in page and "served" in page and "No versions yet." in page


def test_environments_page_shows_scaling_decisions(stack: PrefixedStack) -> None:
    # A group with a minimum of one worker: the scaler's first pass scales it up and says why.
    body = {"slug": "pool", "name": "Pool", "provider": "local", "min_size": 1, "max_size": 1}
    resp = stack.api("POST", "/api/v0/environments/", json=body)
    assert resp.status_code == 201, resp.text
    session = login_session(stack)
    deadline = time.monotonic() + 60
    while True:
        page = session.get(stack.pages + "environments", timeout=30).text
        if "decisions" in page or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "<h3>Pool</h3>" in page, page
    table = page.split('class="grid decisions"', 1)[1].split("</table>", 1)[0]
    assert "scale_up" in table and "Scaling up from 0 to 1" in table, table


#: The build itself is not what this tests (tests/deploy does): only the page and its stream.
ENDPOINT_YAML = """\
- endpoint:
    name: predict
    image: no-such-registry.invalid/python:3.11
    wsgi: predict:application
    port: 8000
"""


def test_endpoint_page_and_build_log(stack: PrefixedStack) -> None:
    project = stack.create_project("served")
    commit = stack.import_package(
        project["id"], {"valohai.yaml": ENDPOINT_YAML, "predict.py": "application = None\n"}
    )
    body = {"project": project["id"], "name": "api", "target": "local"}
    deployment = stack.api("POST", "/api/v0/deployments/", json=body).json()
    body = {
        "deployment": deployment["id"],
        "commit": commit["identifier"],
        "endpoint_configurations": {"predict": {}},
    }
    resp = stack.api("POST", "/api/v0/deployment-versions/", json=body)
    assert resp.status_code == 201, resp.text
    (endpoint,) = resp.json()["endpoints"]

    session = login_session(stack)
    listing = session.get(stack.pages + "deployments", timeout=30).text
    link = f"deployments/endpoints/{endpoint['id']}/"
    assert link in listing
    page = session.get(stack.pages + link, timeout=30)
    assert page.status_code == 200, page.text
    assert re.search(r'<span class="status status-\w+" id="status">\w+</span>', page.text)
    stream = f"live/deployment-endpoints/{endpoint['id']}/build-log"
    with session.get(stack.pages + stream, stream=True, timeout=30) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "text/event-stream"

    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', listing).group(1)  # type: ignore[union-attr]
    session.post(
        stack.pages + "admin",
        data={"_xsrf": xsrf, "action": "create-user", "username": "eve", "password": "pw-" * 4},
    )
    eve = login_session(stack, "eve", "pw-" * 4)
    assert 'id="no-deployments"' in eve.get(stack.pages + "deployments", timeout=30).text
    assert eve.get(stack.pages + link, timeout=30).status_code == 404
    with eve.get(stack.pages + stream, stream=True, timeout=30) as resp:
        assert resp.status_code == 404
