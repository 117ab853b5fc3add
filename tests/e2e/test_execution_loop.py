"""The execution loop end to end: valohai-utils inside an execution, lost agents, fencing."""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from .stack import Stack

pytestmark = pytest.mark.slow

UTILS_YAML = """\
- step:
    name: utils
    image: python:3.11
    command:
      - python use_utils.py {parameters}
    parameters:
      - name: rate
        type: float
        default: 0.25
    inputs:
      - name: dataset
        default: {dataset_url}
    environment-variables:
      - name: GREETING
        default: hi there
"""

USE_UTILS = """\
import json, os
import valohai
rate = valohai.parameters("rate").value
path = valohai.inputs("dataset").path()
with open(path) as f:
    rows = f.read().splitlines()
print(f"rate={rate} rows={len(rows)} greeting={os.environ['GREETING']}")
out = valohai.outputs().path("summary.json")
with open(out, "w") as f:
    json.dump({"rate": rate, "rows": len(rows)}, f)
with open(out + ".metadata.json", "w") as f:
    json.dump({"valohai.tags": ["summary"], "accuracy": 0.9}, f)
"""


@pytest.fixture
def data_server(tmp_path) -> Iterator[str]:
    """A real HTTP server holding the input file (the agent downloads from it)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.csv").write_text("a,b\n1,2\n3,4\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/data.csv"
    server.shutdown()


def test_valohai_utils_finds_parameters_inputs_outputs(stack: Stack, data_server: str) -> None:
    stack.start_agent()
    project = stack.create_project()
    commit = stack.import_package(
        project["id"],
        {
            "valohai.yaml": UTILS_YAML.replace("{dataset_url}", data_server),
            "use_utils.py": USE_UTILS,
        },
    )
    execution = stack.submit(project["id"], commit["identifier"], "utils", parameters={"rate": 0.5})
    final = stack.wait_status(execution["id"])
    assert final["status"] == "complete", stack.explain(execution["id"])

    events = stack.api(
        "GET", f"/api/v0/executions/{execution['id']}/events/", params={"limit": 0}
    ).json()["events"]
    assert any("rate=0.5 rows=3 greeting=hi there" in e["message"] for e in events), events

    data = stack.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]}).json()
    by_name = {d["name"]: d for d in data["results"]}
    assert set(by_name) == {"summary.json"}, by_name
    assert by_name["summary.json"]["metadata"]["accuracy"] == 0.9
    body = stack.api("GET", f"/api/v0/data/{by_name['summary.json']['id']}/download/").content
    assert json.loads(body) == {"rate": 0.5, "rows": 3}


SLEEPY_YAML = """\
- step:
    name: sleepy
    image: python:3.11
    command:
      - python -c "import time; [print('tick', i, flush=1) or time.sleep(0.2) for i in range(3000)]"
"""


def test_killed_agent_loses_its_lease_and_stale_attempt_is_fenced(stack: Stack) -> None:
    agent = stack.start_agent()
    project = stack.create_project()
    commit = stack.import_package(project["id"], {"valohai.yaml": SLEEPY_YAML})
    execution = stack.submit(project["id"], commit["identifier"], "sleepy")
    started = stack.wait_status(execution["id"], {"started"})
    attempt = started["attempt"]

    # Wait for a few log lines so the kill lands mid-run, then kill without warning.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = stack.api("GET", f"/api/v0/executions/{execution['id']}/events/").json()
        if sum(e["stream"] == "stdout" for e in events["events"]) >= 3:
            break
        time.sleep(0.1)
    agent.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    after = stack.wait_status(execution["id"], {"queued", "crashed"}, timeout=30)
    assert time.monotonic() - killed_at < 30
    assert after["status"] in ("queued", "crashed")

    agent_auth = {"Authorization": f"Token {stack.agent_token}"}
    stale = stack.api(
        "POST",
        f"/api/agent/executions/{execution['id']}/status",
        headers=agent_auth,
        json={"attempt": attempt, "status": "complete"},
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["code"] == "stale_attempt"
    stale_out = stack.api(
        "POST",
        f"/api/agent/executions/{execution['id']}/outputs",
        headers=agent_auth,
        json={"attempt": attempt, "outputs": [{"name": "x.txt", "size": 1, "sha256": "0" * 64}]},
    )
    assert stale_out.status_code == 409, stale_out.text
    unchanged = stack.api("GET", f"/api/v0/executions/{execution['id']}/").json()
    assert unchanged["status"] == after["status"]
    assert (
        stack.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]}).json()[
            "count"
        ]
        == 0
    )

    if after["status"] == "queued":
        # A fresh agent picks the re-queued execution up as a new attempt; stop it to finish.
        stack.start_agent("agent-rescue")
        restarted = stack.wait_status(execution["id"], {"started"}, timeout=30)
        assert restarted["attempt"] == attempt + 1
        stack.api("POST", f"/api/v0/executions/{execution['id']}/stop/")
        assert stack.wait_status(execution["id"], timeout=30)["status"] == "stopped"
