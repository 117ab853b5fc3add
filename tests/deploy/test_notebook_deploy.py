"""Deploying from the notebook: ``Client.deploy``, the ExecutionView's Deploy button (its panel
and "try it" box) and ``%valohai deploy``, against the real master, builder, engine and registry.
"""

from __future__ import annotations

import json

import pytest

from jupyter_valohai.client import Client
from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.widget import ExecutionView
from jupyter_valohai.widget.deploy import wait_version
from tests.deploy.conftest import SAMPLES
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def client(deploy_stack: Stack):
    with Client(deploy_stack.url, deploy_stack.admin_token) as c:
        yield c


def test_client_deploy_picks_the_endpoint_and_output(client: Client, trained: dict) -> None:
    assert client.execution_endpoints(trained["execution"]) == ["predict"]
    version = client.deploy(trained["execution"], deployment="nb-client", alias="live")
    assert version["endpoints"][0]["files"] == {"model": trained["datum"]}
    final = wait_version(client, version["id"])
    assert final["status"] == "running", final
    with pytest.raises(InvalidInput) as err:
        client.deploy(trained["execution"], endpoint="nope")
    assert "No endpoint 'nope'" in err.value.message and "predict" in (err.value.hint or "")


def test_the_deploy_button(client: Client, trained: dict) -> None:
    view = ExecutionView(trained["execution"], client)
    try:
        assert view.wait(60)
        assert view.status == "complete"
        view._render()
        assert view._deploy.disabled is False, view._deploy.tooltip
        line = view.deploy(deployment="nb-view")
        assert line.startswith("Endpoint predict is running at http://"), line
        panel = view.deploy_panel
        assert panel.status == "running" and panel.url
        answer = panel.try_it(json.dumps({"data": SAMPLES}))
        expected = [int(p) for p in trained["model"].predict(SAMPLES)]
        assert answer.startswith("200: ") and json.loads(answer[5:])["predictions"] == expected
        assert panel.try_it("not json").startswith("Not JSON")
    finally:
        view.close()


def test_valohai_deploy_magic(
    deploy_stack: Stack, trained: dict, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_valohai.magics import ValohaiMagics

    monkeypatch.setenv("VH_MASTER_URL", deploy_stack.url)
    monkeypatch.setenv("VH_TOKEN", deploy_stack.admin_token)
    magics = ValohaiMagics(shell=InteractiveShell.instance())
    magics.valohai(f"deploy {trained['execution']} --deployment nb-magic --alias production")
    out = capsys.readouterr().out
    assert "created; building" in out and "-- running" in out, out
    assert "Endpoint predict is running at http://" in out, out
    assert "/nb-magic/production/predict/" in out, out
    magics.valohai(f"deploy {trained['execution']} --endpoint nope")
    err = capsys.readouterr().err
    assert err.startswith("Valohai: No endpoint 'nope'"), err  # one line, no traceback
    assert "Traceback" not in err
