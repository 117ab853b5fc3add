"""Inputs end to end with a real master and agent: the input cache, SSRF refusals, datum:// by id
and alias, dataset:// versions made by outputs' metadata, and lineage."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

YAML = """\
- step:
    name: read
    image: python:3.11
    command:
      - python read.py
    inputs:
      - name: data
        optional: true
      - name: more
        optional: true
- step:
    name: produce
    image: python:3.11
    command:
      - python produce.py
"""

READ = """\
import hashlib, os
root = os.environ["VH_INPUTS_DIR"]
for name in sorted(os.listdir(root)):
    for f in sorted(os.listdir(os.path.join(root, name))):
        with open(os.path.join(root, name, f), "rb") as fh:
            data = fh.read()
        print(f"got {name}/{f} {hashlib.sha256(data).hexdigest()} {data[:20]!r}")
"""

PRODUCE = """\
import json, os
out = os.environ["VH_OUTPUTS_DIR"]
with open(os.path.join(out, "model.bin"), "wb") as f:
    f.write(b"the model" * 1000)
for n in (1, 2):
    path = os.path.join(out, f"part-{n}.txt")
    with open(path, "w") as f:
        f.write(f"part {n}\\n")
    with open(path + ".metadata.json", "w") as f:
        json.dump({"valohai.dataset-versions": ["dataset://mydata/v1"]}, f)
"""

FILES = {"valohai.yaml": YAML, "read.py": READ, "produce.py": PRODUCE}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(stack: Stack, project: str, commit: str, step: str, status: str, **body) -> dict:
    execution = stack.submit(project, commit, step, **body)
    done = stack.wait_status(execution["id"], timeout=90)
    assert done["status"] == status, stack.explain(execution["id"])
    return done


def output_of(stack: Stack, execution_id: str) -> str:
    return "".join(e["message"] for e in stack.events(execution_id) if e["stream"] == "stdout")


def agent_log(stack: Stack) -> str:
    with open(os.path.join(stack.root, "logs", "agent-0.log"), errors="replace") as f:
        return f.read()


def test_a_repeated_http_input_is_not_downloaded_again(master: Stack, file_server) -> None:
    data = os.urandom(100_000)
    file_server.files["/data.bin"] = data
    project = master.create_project()["id"]
    commit = master.import_package(project, FILES)["identifier"]
    url = file_server.url + "/data.bin"

    first = run(master, project, commit, "read", "complete", inputs={"data": [url]})
    assert f"got data/data.bin {sha(data)}" in output_of(master, first["id"])
    assert file_server.body_bytes == len(data)

    second = run(master, project, commit, "read", "complete", inputs={"data": [url]})
    assert f"got data/data.bin {sha(data)}" in output_of(master, second["id"])
    assert file_server.body_bytes == len(data)  # 0 bytes the second time (a 304)


def test_datums_by_id_and_alias_datasets_and_lineage(master: Stack) -> None:
    project = master.create_project()["id"]
    commit = master.import_package(project, FILES)["identifier"]
    producer = run(master, project, commit, "produce", "complete")
    events = "\n".join(e["message"] for e in master.events(producer["id"]))
    assert "Created dataset version 'dataset://mydata/v1' with 2 files" in events

    datums = master.api("GET", "/api/v0/data/", params={"output_execution": producer["id"]})
    by_name = {d["name"]: d for d in datums.json()["results"]}
    assert set(by_name) == {"model.bin", "part-1.txt", "part-2.txt"}
    model = by_name["model.bin"]

    # An alias names the datum within the project.
    resp = master.api(
        "POST",
        "/api/v0/datum-aliases/",
        json={"project": project, "name": "best-model", "datum": model["id"]},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["datum"]["id"] == model["id"] and resp.json()["url"] == "datum://best-model"
    listed = master.api("GET", "/api/v0/datum-aliases/", params={"project": project}).json()
    assert [a["name"] for a in listed["results"]] == ["best-model"]

    datasets = master.api("GET", "/api/v0/datasets/", params={"project": project}).json()
    (dataset,) = datasets["results"]
    (version,) = dataset["versions"]
    assert dataset["name"] == "mydata" and version["uri"] == "dataset://mydata/v1"
    assert sorted(version["datums"]) == sorted(
        [by_name["part-1.txt"]["id"], by_name["part-2.txt"]["id"]]
    )

    by_alias = run(
        master,
        project,
        commit,
        "read",
        "complete",
        inputs={"data": ["datum://best-model"], "more": ["dataset://mydata/v1"]},
    )
    out = output_of(master, by_alias["id"])
    assert f"got data/model.bin {model['sha256']}" in out
    assert "got more/part-1.txt" in out and "got more/part-2.txt" in out

    by_id = run(
        master, project, commit, "read", "complete", inputs={"data": [f"datum://{model['id']}"]}
    )
    assert f"got data/model.bin {model['sha256']}" in output_of(master, by_id["id"])
    # The second read of the datum came from the worker's cache: the master sent nothing.
    assert "Input 'data' 'model.bin': 9000 bytes transferred" in agent_log(master)
    assert "Input 'data' 'model.bin': 0 bytes transferred" in agent_log(master)

    # The datum's store URI (file:// here; s3://, gs://, azure:// alike) names it too.
    by_uri = run(master, project, commit, "read", "complete", inputs={"data": [model["uri"]]})
    assert f"got data/model.bin {model['sha256']}" in output_of(master, by_uri["id"])

    lineage = master.api("GET", f"/api/v0/data/{model['id']}/lineage/").json()
    assert lineage["datum"]["id"] == model["id"]
    assert lineage["output_execution"]["id"] == producer["id"]
    assert [(c["id"], c["inputs"]) for c in lineage["consumers"]] == [
        (by_alias["id"], ["data"]),
        (by_id["id"], ["data"]),
        (by_uri["id"], ["data"]),
    ]
    part = master.api("GET", f"/api/v0/data/{by_name['part-1.txt']['id']}/lineage/").json()
    assert [(c["id"], c["inputs"]) for c in part["consumers"]] == [(by_alias["id"], ["more"])]


def test_unknown_datums_aliases_and_dataset_versions_are_refused(master: Stack) -> None:
    project = master.create_project()["id"]
    commit = master.import_package(project, FILES)["identifier"]
    for uri, text in [
        ("datum://no-such-alias", "no datum or datum alias 'no-such-alias'"),
        ("dataset://mydata/v9", "no dataset version 'dataset://mydata/v9'"),
        ("dataset://mydata", "is not a dataset version URI"),
        ("s3://elsewhere/data.csv?X-Amz-Signature=s", "s3://elsewhere/data.csv is not a datum"),
    ]:
        resp = master.api(
            "POST",
            "/api/v0/executions/",
            json={"project": project, "commit": commit, "step": "read", "inputs": {"data": [uri]}},
        )
        assert resp.status_code == 400, resp.text
        assert text in resp.json()["message"] and resp.json().get("hint")
    resp = master.api(
        "POST", "/api/v0/datum-aliases/", json={"project": project, "name": "x", "datum": "d-no"}
    )
    assert resp.status_code == 400 and "No datum" in resp.json()["message"]


@pytest.fixture
def guarded(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Stack]:
    """A master and an agent allowing only 127.0.0.1/32 for inputs."""
    s = Stack(
        str(tmp_path / "guarded"),
        mongo_url,
        mongo_db_name,
        redis_url,
        agent_args=["--AgentApp.allowed_input_networks=127.0.0.1/32"],
    )
    try:
        s.start_master()
        s.start_agent()
        yield s
    finally:
        s.stop()


def refused(stack: Stack, project: str, commit: str, url: str) -> str:
    done = run(stack, project, commit, "read", "error", inputs={"data": [url]})
    return str(done["status_message"])


def test_ssrf_private_addresses_and_redirects_are_refused(
    guarded: Stack, file_server, other_loopback_server
) -> None:
    project = guarded.create_project()["id"]
    commit = guarded.import_package(project, FILES)["identifier"]
    other_loopback_server.files["/secret"] = b"internal"
    file_server.files["/ok"] = b"public enough"
    file_server.redirects["/go"] = other_loopback_server.url + "/secret"

    # The allowed server is reachable...
    run(guarded, project, commit, "read", "complete", inputs={"data": [file_server.url + "/ok"]})
    # ...but not where it redirects.
    message = refused(guarded, project, commit, file_server.url + "/go")
    assert "resolves to a loopback address (127.0.0.2), which inputs may not reach" in message
    assert "allowed_input_networks" in message
    assert other_loopback_server.requests == []

    message = refused(guarded, project, commit, "http://10.20.30.40/data.csv")
    assert (
        "Input 'data': http://10.20.30.40/data.csv resolves to a private address (10.20.30.40)"
        in message
    )
    message = refused(guarded, project, commit, other_loopback_server.url + "/secret")
    assert "loopback address (127.0.0.2)" in message
    assert other_loopback_server.requests == []


def test_ssrf_loopback_is_refused_when_nothing_is_allowed(
    tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str, file_server
) -> None:
    file_server.files["/data.csv"] = b"a,b\n"
    s = Stack(str(tmp_path / "strict"), mongo_url, mongo_db_name, redis_url, agent_args=[])
    try:
        s.start_master()
        s.start_agent()
        project = s.create_project()["id"]
        commit = s.import_package(project, FILES)["identifier"]
        port = file_server.url.rsplit(":", 1)[1]
        message = refused(s, project, commit, f"http://127.0.0.1:{port}/data.csv")
        assert message.endswith(
            f"Input 'data': http://127.0.0.1:{port}/data.csv resolves to a loopback address "
            "(127.0.0.1), which inputs may not reach. (hint: an administrator can allow it with "
            "c.AgentApp.allowed_input_networks = ['127.0.0.1/32'] in the agent's configuration.)"
        )
        message = refused(s, project, commit, f"http://localhost:{port}/data.csv")
        assert "loopback address" in message
        assert file_server.requests == []
    finally:
        s.stop()


def test_inputs_json_is_unchanged_by_the_cache(master: Stack, file_server) -> None:
    """valohai-utils still reads the files the cache placed (hard links or copies)."""
    file_server.files["/x.json"] = json.dumps({"a": 1}).encode()
    project = master.create_project()["id"]
    commit = master.import_package(project, FILES)["identifier"]
    for _ in range(2):
        done = run(
            master,
            project,
            commit,
            "read",
            "complete",
            inputs={"data": [file_server.url + "/x.json"]},
        )
        assert "got data/x.json" in output_of(master, done["id"])


def test_a_repeated_datum_input_is_not_downloaded_again(
    tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str
) -> None:
    """The agent talks to the master through a proxy that counts datum download bytes."""
    from .conftest import CountingProxy

    s = Stack(str(tmp_path / "proxied"), mongo_url, mongo_db_name, redis_url)
    proxy: CountingProxy | None = None
    try:
        s.start_master()
        proxy = CountingProxy(s.url).start()
        via_proxy = copy.copy(s)  # shares the agents list: s.stop() ends the agent too
        via_proxy.port = int(proxy.url.rsplit(":", 1)[1])
        via_proxy.start_agent()
        project = s.create_project()["id"]
        commit = s.import_package(project, FILES)["identifier"]
        producer = run(s, project, commit, "produce", "complete")
        datums = s.api("GET", "/api/v0/data/", params={"output_execution": producer["id"]})
        (model,) = [d for d in datums.json()["results"] if d["name"] == "model.bin"]

        inputs = {"data": [f"datum://{model['id']}"]}
        first = run(s, project, commit, "read", "complete", inputs=inputs)
        assert f"got data/model.bin {model['sha256']}" in output_of(s, first["id"])
        assert (proxy.datum_requests, proxy.datum_bytes) == (1, 9000)

        second = run(s, project, commit, "read", "complete", inputs=inputs)
        assert f"got data/model.bin {model['sha256']}" in output_of(s, second["id"])
        assert (proxy.datum_requests, proxy.datum_bytes) == (1, 9000)  # 0 bytes this time
    finally:
        s.stop()
        if proxy is not None:
            proxy.stop()


def test_moving_an_alias_leaves_earlier_executions_and_versions_alone(master: Stack) -> None:
    project = master.create_project()["id"]
    commit = master.import_package(project, FILES)["identifier"]
    first, second = (run(master, project, commit, "produce", "complete") for _ in range(2))
    events = "\n".join(e["message"] for e in master.events(second["id"]))
    assert "Dataset version dataset://mydata/v1 exists already; it was not changed." in events

    def model_of(execution: dict) -> dict:
        datums = master.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]})
        return next(d for d in datums.json()["results"] if d["name"] == "model.bin")

    old, new = model_of(first), model_of(second)
    alias = {"project": project, "name": "current"}
    created = master.api("POST", "/api/v0/datum-aliases/", json={**alias, "datum": old["id"]})
    reader = run(master, project, commit, "read", "complete", inputs={"data": ["datum://current"]})
    moved = master.api("POST", "/api/v0/datum-aliases/", json={**alias, "datum": new["id"]})
    assert moved.status_code == 201 and moved.json()["id"] == created.json()["id"]
    assert moved.json()["datum"]["id"] == new["id"]

    # The earlier execution read the datum the alias named then, and lineage says so.
    lineage = master.api("GET", f"/api/v0/data/{old['id']}/lineage/").json()
    assert [c["id"] for c in lineage["consumers"]] == [reader["id"]]
    assert master.api("GET", f"/api/v0/data/{new['id']}/lineage/").json()["consumers"] == []

    (dataset,) = master.api("GET", "/api/v0/datasets/", params={"project": project}).json()[
        "results"
    ]
    (version,) = dataset["versions"]
    assert version["output_execution"] == first["id"]
    latest = run(
        master, project, commit, "read", "complete", inputs={"more": ["dataset://mydata/latest"]}
    )
    assert "got more/part-2.txt" in output_of(master, latest["id"])

    # An alias may not shadow a datum id; bad names are refused.
    resp = master.api(
        "POST", "/api/v0/datum-aliases/", json={**alias, "name": old["id"], "datum": new["id"]}
    )
    assert resp.status_code == 409
    resp = master.api(
        "POST", "/api/v0/datum-aliases/", json={**alias, "name": "../x", "datum": new["id"]}
    )
    assert resp.status_code == 400 and resp.json().get("hint")
