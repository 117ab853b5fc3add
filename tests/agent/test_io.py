"""Layout, code and inputs in, outputs out: valohai-utils reads what the agent writes."""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import sys
import tarfile

import pytest

from agent import io
from agent.client import AgentClient
from jupyter_valohai.errors import StaleAttempt, UnsafeArchive

USE_UTILS = """\
import os
import sys
import valohai
x = valohai.parameters("x").value
path = valohai.inputs("d").path()
with open(path) as f:
    rows = f.read().splitlines()
print(f"x={x} rows={len(rows)} name={os.path.basename(path)} greeting={os.environ['GREETING']}")
print("token" if "VH_AGENT_TOKEN" in os.environ else "no token")
with open(valohai.outputs().path("o.txt"), "w") as f:
    f.write(f"{x * 2}")
"""


def tarball(files: dict[str, str]) -> bytes:
    buf = _io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, _io.BytesIO(data))
    return buf.getvalue()


def spec_for(peer, **extra) -> dict:
    other_host = peer.url.replace("127.0.0.1", "localhost")
    return {
        "id": "e-42",
        "attempt": 2,
        "kind": "command",
        "commands": [f"{sys.executable} use_utils.py"],
        "parameters": {"x": 21},
        "inputs": {
            "d": [
                {
                    "name": None,
                    "url": other_host + "/files/data%20set.csv",
                    "uri": "https://example.com/data set.csv",
                    "datum_id": None,
                }
            ]
        },
        "environment_variables": {"GREETING": "hi"},
        "code_url": "/api/agent/executions/e-42/code?attempt=2",
        **extra,
    }


def test_valohai_utils_reads_layout_written_by_agent(peer, tmp_path, runtime) -> None:
    from agent.runtimes.base import Job

    peer.route(
        "GET",
        "/api/agent/executions/e-42/code",
        lambda r: (200, tarball({"use_utils.py": USE_UTILS}), "application/gzip"),
    )
    data = b"a,b\n1,2\n3,4\n"
    peer.route("GET", "/files/", lambda r: (200, data, "text/csv"))
    client = AgentClient(peer.url, "secret-token")
    spec = spec_for(peer)
    layout = io.Layout.create(str(tmp_path / "work"), spec["id"])
    io.fetch_code(client, spec, layout)
    inputs = io.fetch_inputs(client, spec, layout)
    io.write_config(spec, layout, inputs)

    # The token went to the master (relative URL) and not to the other host.
    code_req, data_req = peer.requests
    assert code_req.headers.get("Authorization") == "Token secret-token"
    assert "Authorization" not in data_req.headers

    with open(os.path.join(layout.config, "inputs.json")) as f:
        written = json.load(f)
    (entry,) = written["d"]["files"]
    assert entry["name"] == "data set.csv"
    assert entry["path"] == os.path.join(layout.inputs, "d", "data set.csv")
    assert entry["size"] == len(data)
    assert entry["checksums"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert entry["uri"] == "https://example.com/data set.csv"

    lines: list[tuple[str, str]] = []
    env = io.execution_env(spec, layout, base={**os.environ, "VH_AGENT_TOKEN": "secret-token"})
    job = Job(
        spec=spec,
        repository=layout.repository,
        inputs=layout.inputs,
        outputs=layout.outputs,
        config=layout.config,
        env=env,
        emit=lambda s, m: lines.append((s, m)),
    )
    result = runtime.process(job)
    stdout = "".join(m for s, m in lines if s == "stdout")
    assert result.status == "complete", lines
    assert "x=21 rows=3 name=data set.csv greeting=hi" in stdout
    assert "no token" in stdout
    with open(os.path.join(layout.outputs, "o.txt")) as f:
        assert f.read() == "42"
    assert env["VH_JOB_ID"] == env["VH_EXECUTION_ID"] == "e-42"
    layout.remove()
    assert not os.path.exists(layout.root)


def test_input_names_cannot_escape_their_directory(peer, tmp_path) -> None:
    peer.route("GET", "/files/", lambda r: (200, b"x", "text/plain"))
    client = AgentClient(peer.url, "t")
    spec = {
        "id": "e-1",
        "inputs": {
            "../up": [
                {"name": "../../evil.txt", "url": peer.url + "/files/a"},
                {"name": None, "url": peer.url + "/files/..%2F..%2Fevil.txt"},
                {"name": "..", "url": peer.url + "/files/"},
            ]
        },
    }
    layout = io.Layout.create(str(tmp_path / "work"), "e-1")
    inputs = io.fetch_inputs(client, spec, layout)
    paths = [f["path"] for f in inputs["../up"]["files"]]
    for path in paths:
        assert os.path.dirname(path) == os.path.join(layout.inputs, "up")
    assert [os.path.basename(p) for p in paths] == ["evil.txt", "evil-1.txt", "file"]
    assert sorted(os.listdir(tmp_path / "work")) == ["e-1"]


def test_datum_inputs_come_from_the_master(peer, tmp_path) -> None:
    peer.route("GET", "/api/agent/data/d-7/download", lambda r: (200, b"model", "x/y"))
    client = AgentClient(peer.url, "t")
    spec = {
        "id": "e-1",
        "inputs": {
            "m": [{"name": "m.bin", "url": "datum://d-7", "datum_id": "d-7", "sha256": None}]
        },
    }
    layout = io.Layout.create(str(tmp_path / "w"), "e-1")
    (entry,) = io.fetch_inputs(client, spec, layout)["m"]["files"]
    assert entry["datum_id"] == "d-7" and entry["size"] == 5
    assert peer.requests[0].headers["Authorization"] == "Token t"


def test_unsafe_code_archive_is_refused(peer, tmp_path) -> None:
    peer.route("GET", "/code", lambda r: (200, tarball({"../escape.py": "x"}), "application/gzip"))
    layout = io.Layout.create(str(tmp_path / "w"), "e-1")
    with pytest.raises(UnsafeArchive):
        io.fetch_code(AgentClient(peer.url, "t"), {"code_url": "/code"}, layout)
    assert not os.path.exists(tmp_path / "w" / "e-1" / "escape.py")
    assert os.listdir(layout.repository) == []


def _outputs(tmp_path) -> str:
    out = tmp_path / "outputs"
    (out / "sub").mkdir(parents=True)
    (out / "model.bin").write_bytes(b"weights")
    (out / "model.bin.metadata.json").write_text(json.dumps({"valohai.tags": ["best"], "a": 1}))
    (out / "sub" / "plot.png").write_bytes(b"png")
    (out / "valohai.metadata.jsonl").write_text(
        json.dumps({"file": "sub/plot.png", "metadata": {"kind": "plot"}})
        + "\n"
        + json.dumps({"file": "model.bin", "metadata": {"b": 2}})
        + "\nnot json\n"
    )
    os.symlink("/etc/passwd", out / "passwd")
    os.symlink("/etc", out / "etc-dir")
    os.symlink(str(out / "model.bin"), out / "inner-link")
    os.mkfifo(out / "fifo")
    return str(out)


def test_collect_outputs_reads_sidecars_and_refuses_links(tmp_path) -> None:
    files = {f.name: f for f in io.collect_outputs(_outputs(tmp_path))}
    assert set(files) == {"model.bin", "sub/plot.png"}
    assert files["model.bin"].metadata == {"valohai.tags": ["best"], "a": 1, "b": 2}
    assert files["model.bin"].size == 7
    assert files["model.bin"].sha256 == hashlib.sha256(b"weights").hexdigest()
    assert files["sub/plot.png"].metadata == {"kind": "plot"}


def test_upload_outputs_prepare_put_register(peer, tmp_path) -> None:
    files = io.collect_outputs(_outputs(tmp_path))
    peer.route(
        "POST",
        "/api/agent/executions/e-1/outputs/prepare",
        lambda r: (
            200,
            json.dumps(
                {
                    "uploads": [
                        {
                            "name": f["name"],
                            "url": f"/api/agent/uploads/{i}",
                            "method": "PUT",
                            "headers": {"Content-Type": "application/octet-stream"},
                        }
                        for i, f in enumerate(r.json()["files"])
                    ]
                }
            ).encode(),
            "application/json",
        ),
    )
    peer.json_route(
        "POST", "/api/agent/executions/e-1/outputs", {"datums": [{"id": "d-1"}]}, status=201
    )
    client = AgentClient(peer.url, "t")
    datums = io.upload_outputs(client, "e-1", 5, files)
    assert datums == [{"id": "d-1"}]
    prepare, put0, put1, register = peer.requests
    assert prepare.json() == {
        "attempt": 5,
        "files": [{"name": "model.bin", "size": 7}, {"name": "sub/plot.png", "size": 3}],
    }
    assert (put0.method, put0.body, put1.body) == ("PUT", b"weights", b"png")
    body = register.json()
    assert body["attempt"] == 5
    assert [o["name"] for o in body["outputs"]] == ["model.bin", "sub/plot.png"]
    assert body["outputs"][0]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert body["outputs"][0]["metadata"]["b"] == 2
    assert all(b"root:" not in r.body for r in peer.requests)


def test_stale_attempt_on_prepare_uploads_nothing(peer, tmp_path) -> None:
    files = io.collect_outputs(_outputs(tmp_path))
    peer.json_route(
        "POST",
        "/api/agent/executions/e-1/outputs/prepare",
        {"code": "stale_attempt", "message": "lost"},
        status=409,
    )
    with pytest.raises(StaleAttempt):
        io.upload_outputs(AgentClient(peer.url, "t"), "e-1", 1, files)
    assert [r.method for r in peer.requests] == ["POST"]


def test_the_agents_credentials_never_reach_an_execution(tmp_path) -> None:
    layout = io.Layout.create(str(tmp_path), "e-env")
    agent_env = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "VH_AGENT_TOKEN": "t1",
        "VH_ADMIN_TOKEN": "t2",
        "AWS_SECRET_ACCESS_KEY": "s1",
        "AWS_ACCESS_KEY_ID": "k1",
        "AZURE_STORAGE_CONNECTION_STRING": "c1",
        "GOOGLE_APPLICATION_CREDENTIALS": "/secret.json",
        "TEAM_A_SECRET_ACCESS_KEY": "s2",
        "GITHUB_TOKEN": "t3",
        "DB_PASSWORD": "p1",
    }
    spec = {"id": "e-env", "environment_variables": {"DB_PASSWORD": "given-by-the-step"}}
    env = io.execution_env(spec, layout, base=agent_env)
    assert env["PATH"] == "/usr/bin" and env["LANG"] == "C.UTF-8"
    assert env["DB_PASSWORD"] == "given-by-the-step"  # the step's own variables are kept
    leaked = {k for k, v in env.items() if v in {"t1", "t2", "s1", "k1", "c1", "s2", "t3", "p1"}}
    assert not leaked
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env
