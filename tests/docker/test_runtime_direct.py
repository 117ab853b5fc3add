"""DockerRuntime.process on a real engine without a master: streams, limits, exit codes, errors."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import docker
import pytest

from agent.runtimes.docker import LABEL_OWNER, DockerRuntime
from tests.docker.dockerstack import Lines, make_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def runtime(tmp_path, dockerd: docker.DockerClient) -> DockerRuntime:
    return DockerRuntime(owner=str(tmp_path), stop_grace_seconds=2)


def _left(client: docker.DockerClient, owner: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"})


def test_streams_environment_and_exit_code(
    tmp_path, runtime: DockerRuntime, dockerd: docker.DockerClient, test_image: str
) -> None:
    lines = Lines()
    job = make_job(
        tmp_path,
        {
            "image": test_image,
            "commands": [
                "echo out; echo err >&2",
                'echo "nonce=${VH_PROGRESS_NONCE:-none} home=$HOME config=$VH_CONFIG_DIR"',
                'echo "agent token=${VH_AGENT_TOKEN:-none} greeting=$GREETING"',
                "exit 3",
                "echo never",
            ],
            "environment_variables": {"GREETING": "hello"},
        },
        lines,
    )
    result = runtime.process(job)
    assert (result.status, result.exit_code) == ("error", 3), lines.events
    assert lines.of("stdout") == [
        "out\n",
        "nonce=none home=/tmp config=/valohai/config\n",
        "agent token=none greeting=hello\n",
    ]
    assert lines.of("stderr") == ["err\n"]
    assert _left(dockerd, str(tmp_path)) == []


def test_failing_cell_fails_the_notebook_and_keeps_the_executed_copy(
    tmp_path, runtime: DockerRuntime, test_image: str
) -> None:
    import nbformat

    lines = Lines()
    job = make_job(
        tmp_path, {"image": test_image, "kind": "notebook", "notebook": "nb/bad.ipynb"}, lines
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('before')"), nbformat.v4.new_code_cell("1 / 0")]
    (Path(job.repository) / "nb").mkdir()
    (Path(job.repository) / "nb" / "bad.ipynb").write_text(nbformat.writes(nb))
    result = runtime.process(job)
    assert result.status == "error" and result.exit_code == 1, lines.events
    assert "before\n" in lines.of("stdout")
    assert any("ZeroDivisionError" in m for m in lines.of("stderr")), lines.events
    ends = [json.loads(m) for m in lines.of("progress") if '"end"' in m]
    assert [e["status"] for e in ends] == ["ok", "error"]
    assert (Path(job.outputs) / "bad.ipynb").is_file()


def test_cpu_and_memory_limits_from_the_environment(
    tmp_path, runtime: DockerRuntime, dockerd: docker.DockerClient, test_image: str
) -> None:
    lines = Lines()
    job = make_job(
        tmp_path,
        {
            "image": test_image,
            "commands": ["echo up", "sleep 300"],
            "environment": {"cpus": 0.5, "memory_mb": 256},
        },
        lines,
    )
    seen: dict = {}

    def inspect_then_stop() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "up\n" not in lines.of("stdout"):
            time.sleep(0.05)
        (container,) = _left(dockerd, str(tmp_path))
        seen.update(dockerd.api.inspect_container(container.id)["HostConfig"])
        runtime.stop(job)

    watcher = threading.Thread(target=inspect_then_stop)
    watcher.start()
    result = runtime.process(job)
    watcher.join()
    assert result.status == "stopped", lines.events
    assert seen["NanoCpus"] == 500_000_000
    assert seen["Memory"] == 256 * 1024 * 1024
    assert seen["PidsLimit"] == 4096
    assert _left(dockerd, str(tmp_path)) == []


def test_out_of_memory_is_said(tmp_path, runtime: DockerRuntime, test_image: str) -> None:
    lines = Lines()
    job = make_job(
        tmp_path,
        {
            "image": test_image,
            "commands": ["python3 -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'"],
            "environment": {"memory_mb": 64},
        },
        lines,
    )
    result = runtime.process(job)
    assert result.status == "error", lines.events
    assert "The container ran out of memory and was killed." in lines.of("status"), lines.events


def test_no_image_and_image_never_pulled(tmp_path, runtime: DockerRuntime) -> None:
    lines = Lines()
    result = runtime.process(make_job(tmp_path, {"commands": ["true"]}, lines))
    assert result.status == "error"
    assert "names no Docker image" in result.message and "hint" in result.message
    assert lines.of("status") == ["The execution names no Docker image."]

    runtime.pull = "never"
    lines = Lines()
    job = make_job(tmp_path, {"image": "jupyter-valohai-test:absent", "commands": ["true"]}, lines)
    result = runtime.process(job)
    assert result.status == "error"
    assert lines.of("status") == [
        "Docker image 'jupyter-valohai-test:absent' is not on this machine."
    ]
    assert not any(s == "stdout" for s, _ in lines.events)


def test_valohai_utils_finds_inputs_inside_the_container(
    tmp_path, runtime: DockerRuntime, test_image: str
) -> None:
    from agent import io as agent_io

    lines = Lines()
    script = (
        "import json, valohai; p = valohai.inputs('data').path(); "
        "print(p, open(p).read().strip(), json.load(open('/valohai/config/parameters.json')))"
    )
    job = make_job(
        tmp_path,
        {"image": test_image, "commands": [f'python3 -c "{script}"'], "parameters": {"rate": 0.5}},
        lines,
    )
    data = Path(job.inputs) / "data"
    data.mkdir()
    (data / "a.csv").write_text("a,b\n")
    layout = agent_io.Layout(str(Path(job.inputs).parent))
    # As the agent loop writes it: this machine's paths.
    inputs = {"data": {"files": [{"name": "a.csv", "path": str(data / "a.csv"), "size": 4}]}}
    agent_io.write_config(job.spec, layout, inputs)
    result = runtime.process(job)
    assert result.status == "complete", lines.events
    assert lines.of("stdout") == ["/valohai/inputs/data/a.csv a,b {'rate': 0.5}\n"]


def test_gpu_requests_become_device_requests() -> None:
    # No GPU here: only the translation is checked; the engine call is the one inspected above.
    from agent.runtimes.docker import resource_limits

    limits = resource_limits({"gpus": 2, "cpus": 1.5})
    (request,) = limits["device_requests"]
    assert (request["Count"], request["Capabilities"]) == (2, [["gpu"]])
    assert limits["nano_cpus"] == 1_500_000_000
    assert resource_limits({}) == {}
