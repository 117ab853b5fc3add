"""The Docker runtime end to end: a real master, agent and engine, and the offline-built image."""

from __future__ import annotations

import json
import os
import signal
import time

import docker
import nbformat
import pytest

from agent.runtimes.docker import LABEL_OWNER, LABEL_ROLE
from tests.docker.dockerstack import DockerStack, containers_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOK_YAML = """\
- step:
    name: nb
    image: {image}
    source-path: train.ipynb
    command:
      - echo "commands as $(id -u):$(id -g) in $PWD"
    parameters:
      - name: epochs
        type: integer
        default: 1
- step:
    name: sleepy
    image: {image}
    command:
      - echo started
      - sleep 300
- step:
    name: noimage
    image: jupyter-valohai-test:no-such-tag
    command:
      - echo never
"""

# The second cell waits for a file the test writes once it has inspected the running container.
CELLS = [
    ("epochs = 1", ["parameters"]),
    (
        "import os, json, time\n"
        "print('uid', os.getuid(), 'outputs', os.environ['VH_OUTPUTS_DIR'], flush=True)\n"
        "deadline = time.time() + 120\n"
        "while not os.path.exists('go') and time.time() < deadline:\n"
        "    time.sleep(0.05)",
        [],
    ),
    (
        "import valohai\n"
        "path = valohai.outputs().path('result.json')\n"
        "with open(path, 'w') as f:\n"
        "    json.dump({'epochs': epochs}, f)\n"
        "print(json.dumps({'loss': 1 / (epochs + 1)}))",
        [],
    ),
]


def _notebook() -> str:
    nb = nbformat.v4.new_notebook()
    for source, tags in CELLS:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def _project(stack: DockerStack, image: str) -> tuple[str, str]:
    project = stack.create_project()
    commit = stack.import_package(
        project["id"],
        {"valohai.yaml": NOTEBOOK_YAML.replace("{image}", image), "train.ipynb": _notebook()},
    )
    return project["id"], commit["identifier"]


def _wait_for(what: str, check, stack: DockerStack, eid: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}\n{stack.explain(eid)}")
        time.sleep(0.1)


def _running(client: docker.DockerClient, eid: str, role: str):
    for container in containers_of(client, eid):
        if container.labels.get(LABEL_ROLE) == role and container.status == "running":
            return container
    return None


def _messages(stack: DockerStack, eid: str, stream: str | None = None) -> list[str]:
    return [e["message"] for e in stack.events(eid) if stream in (None, e["stream"])]


def test_notebook_runs_in_the_image_unprivileged(
    docker_stack: DockerStack, dockerd: docker.DockerClient, test_image: str
) -> None:
    stack = docker_stack
    stack.start_docker_agent()
    project, commit = _project(stack, test_image)
    eid = stack.submit(project, commit, "nb", parameters={"epochs": 3})["id"]

    container = _wait_for(
        "the notebook container", lambda: _running(dockerd, eid, "notebook"), stack, eid
    )
    attrs = dockerd.api.inspect_container(container.id)  # taken while the notebook runs
    host = attrs["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    user = attrs["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root"), user
    assert attrs["Config"]["Image"] == test_image
    assert host["Init"] is True
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/valohai/repository"]["RW"] and mounts["/valohai/outputs"]["RW"]
    assert not mounts["/valohai/inputs"]["RW"] and not mounts["/valohai/config"]["RW"]
    assert not mounts["/opt/jupyter-valohai/nbrun.py"]["RW"]
    # The log streams while the container runs, not only at its end.
    _wait_for(
        "the cell's first line",
        lambda: any(m.startswith("uid ") for m in _messages(stack, eid, "stdout")),
        stack,
        eid,
    )

    repository = os.path.join(stack.agent_dir(), eid, "repository")
    with open(os.path.join(repository, "go"), "w"):
        pass
    final = stack.wait_status(eid, timeout=120)
    assert final["status"] == "complete", stack.explain(eid)

    stdout = _messages(stack, eid, "stdout")
    uid = user.split(":")[0]
    assert f"commands as {user} in /valohai/repository\n" in stdout, stdout
    assert f"uid {uid} outputs /valohai/outputs\n" in stdout, stdout
    assert '{"loss": 0.25}\n' in stdout, stdout
    assert final["metadata"] == {"loss": 0.25}
    assert [c["state"] for c in final["cells"]] == ["ok"] * 4  # papermill's cell included
    assert not any("vh-progress" in m for m in _messages(stack, eid))

    data = stack.api("GET", "/api/v0/data/", params={"output_execution": eid}).json()
    by_name = {d["name"]: d for d in data["results"]}
    assert set(by_name) == {"result.json", "train.ipynb"}, by_name
    body = stack.api("GET", f"/api/v0/data/{by_name['result.json']['id']}/download/").content
    assert json.loads(body) == {"epochs": 3}
    executed = stack.api("GET", f"/api/v0/data/{by_name['train.ipynb']['id']}/download/").content
    assert "injected-parameters" in executed.decode()

    assert containers_of(dockerd, eid) == []  # nothing left behind


def test_stop_ends_the_container(
    docker_stack: DockerStack, dockerd: docker.DockerClient, test_image: str
) -> None:
    stack = docker_stack
    stack.start_docker_agent()
    project, commit = _project(stack, test_image)
    eid = stack.submit(project, commit, "sleepy")["id"]
    _wait_for("started", lambda: "started\n" in _messages(stack, eid, "stdout"), stack, eid)
    assert _running(dockerd, eid, "commands") is not None

    assert stack.api("POST", f"/api/v0/executions/{eid}/stop/").status_code in (200, 202)
    final = stack.wait_status(eid, timeout=60)
    assert final["status"] == "stopped", stack.explain(eid)
    assert containers_of(dockerd, eid) == []


def test_time_limit_ends_the_container(
    docker_stack: DockerStack, dockerd: docker.DockerClient, test_image: str
) -> None:
    stack = docker_stack
    stack.start_docker_agent()
    project, commit = _project(stack, test_image)
    eid = stack.submit(project, commit, "sleepy", time_limit=2)["id"]
    final = stack.wait_status(eid, timeout=60)
    assert final["status"] == "error", stack.explain(eid)
    assert "time limit" in stack.explain(eid)
    assert "started\n" in _messages(stack, eid, "stdout")
    assert containers_of(dockerd, eid) == []


def test_missing_image_is_a_clear_error(
    docker_stack: DockerStack, dockerd: docker.DockerClient
) -> None:
    stack = docker_stack
    stack.start_docker_agent()
    project, commit = _project(stack, "unused")
    eid = stack.submit(project, commit, "noimage")["id"]
    final = stack.wait_status(eid, timeout=60)
    assert final["status"] == "error", stack.explain(eid)
    status = _messages(stack, eid, "status")
    assert "Pulling image jupyter-valohai-test:no-such-tag" in status, status
    assert any(
        m.startswith("Could not pull Docker image 'jupyter-valohai-test:no-such-tag'")
        for m in status
    ), status
    assert "never\n" not in _messages(stack, eid, "stdout")
    assert containers_of(dockerd, eid) == []


def test_orphans_of_the_work_dir_are_removed_on_start(
    docker_stack: DockerStack, dockerd: docker.DockerClient, test_image: str
) -> None:
    stack = docker_stack
    mine = dockerd.containers.create(
        test_image, ["sleep", "300"], labels={LABEL_OWNER: stack.agent_dir()}
    )
    other = dockerd.containers.create(
        test_image, ["sleep", "300"], labels={LABEL_OWNER: stack.agent_dir("someone-else")}
    )
    try:
        stack.start_docker_agent()
        deadline = time.monotonic() + 60
        # sparse: no inspect per container, which races with other workers removing theirs
        while dockerd.containers.list(all=True, sparse=True, filters={"id": mine.id}):
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.1)
        other.reload()  # another work dir's container is not ours to remove
    finally:
        other.remove(force=True)


def test_agent_shutdown_stops_the_container(
    docker_stack: DockerStack, dockerd: docker.DockerClient, test_image: str
) -> None:
    stack = docker_stack
    stack.start_docker_agent()
    (agent,) = stack.agents
    project, commit = _project(stack, test_image)
    eid = stack.submit(project, commit, "sleepy")["id"]
    _wait_for("started", lambda: "started\n" in _messages(stack, eid, "stdout"), stack, eid)

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(60) == 0, stack.logs()
    final = stack.wait_status(eid, timeout=30)
    assert final["status"] == "stopped", stack.explain(eid)
    assert "shut down" in stack.explain(eid)
    assert containers_of(dockerd, eid) == []
