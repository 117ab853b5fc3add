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
