"""Notebooks, scripts, cells and valohai.yaml steps submitted to a real master and agent."""

from __future__ import annotations

import asyncio
import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from jupyter_valohai.client import AsyncClient, Client
from jupyter_valohai.errors import InvalidInput, NotFound, ServiceUnavailable, SnapshotTooLarge
from jupyter_valohai.services import free_port
from jupyter_valohai.submit import GENERATED_YAML, RunRequest, asubmit, prepare_run, submit
from jupyter_valohai.valohai_config import get_step, parse_config
from tests.e2e.stack import Stack
from tests.jupyter_valohai.test_client import agent_stack

pytestmark = pytest.mark.slow


@pytest.fixture
def running(tmp_path, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[tuple]:
    with agent_stack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url) as pair:
        yield pair


@pytest.fixture
def stack(running: tuple[Stack, Client]) -> Stack:
    return running[0]


@pytest.fixture
def client(running: tuple[Stack, Client]) -> Client:
    return running[1]


def make_notebook(path: Path, *cells: str | tuple[str, str]) -> None:
    """Write a python3 notebook; a cell given as (tag, source) carries that tag."""
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    for cell in cells:
        tag, source = cell if isinstance(cell, tuple) else (None, cell)
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": [tag] if tag else []}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def write_notebook(path: Path) -> None:
    make_notebook(
        path,
        ("parameters", "epochs = 2\nlr = 0.5\nname = 'base'\nverbose = False"),
        "print(f'epochs={epochs} lr={lr} name={name} v={verbose}')",
        "from helper import twice\nprint('twice', twice(epochs))",
        "import json\nprint(json.dumps({'loss': 1 / epochs}))",
    )


@pytest.fixture
def workdir(tmp_path) -> Path:
    root = tmp_path / "work"
    write_notebook(root / "train.ipynb")
    (root / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (root / "big.bin").write_bytes(b"0" * 300_000)
    (root / ".gitignore").write_text("big.bin\n")
    return root


def finish(client: Client, stack: Stack, execution: dict, events: list | None = None) -> tuple:
    """Stream the execution to its end (events into ``events``); return it and its log text."""
    seen = list(client.stream_events(execution["id"]))
    final = client.get_execution(execution["id"])
    assert final["status"] == "complete", stack.explain(execution["id"])
    if events is not None:
        events.extend(seen)
    return final, "".join(e.data.get("message", "") for e in seen if e.kind == "log")


def count(client: Client) -> int:
    return sum(len(client.list_executions(project=p["id"], limit=0)) for p in client.projects())


def test_notebook_with_override_completes(client: Client, stack: Stack, workdir, tmp_path) -> None:
    req = RunRequest(path="train.ipynb", parameters={"epochs": "5"}, cwd=str(workdir), title="nb")
    execution = submit(client, req)
    assert execution["project"]["name"] == "default" and execution["kind"] == "notebook"
    assert execution["parameters"]["epochs"] == 5 and execution["parameters"]["lr"] == 0.5
    events: list = []
    final, log = finish(client, stack, execution, events)
    assert "epochs=5 lr=0.5 name=base v=False" in log and "twice 10" in log
    # Per-cell progress and metadata arrive decoded on the same stream.
    progress = [e.data["data"] for e in events if e.kind == "progress"]
    assert [(p["position"], p["state"]) for p in progress][-2:] == [(5, "start"), (5, "end")]
    assert all(p["status"] == "ok" for p in progress if p["state"] == "end")
    assert [e.data["data"] for e in events if e.kind == "metadata"] == [{"loss": 0.2}]
    assert [c["state"] for c in final["cells"]] == ["ok"] * 5 and final["current_cell"] is None
    shown = client.events(execution["id"], streams=["progress", "metadata"])
    assert {e["stream"] for e in shown} == {"progress", "metadata"}
    outputs = {o["name"]: o for o in client.outputs(final["id"])}
    assert "train.ipynb" in outputs
    path = client.download(outputs["train.ipynb"], str(tmp_path / "executed.ipynb"))
    executed = nbformat.read(path, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "epochs = 5" in injected[0].source
    assert any(
        "epochs=5" in out.get("text", "") for c in executed.cells for out in c.get("outputs", [])
    )


def test_snapshot_left_out_ignored_files(workdir) -> None:
    prepared = prepare_run(RunRequest(path="train.ipynb", cwd=str(workdir)))
    with tarfile.open(fileobj=io.BytesIO(prepared.tarball), mode="r:gz") as tar:
        names = set(tar.getnames())
        config_text = tar.extractfile(GENERATED_YAML).read().decode()  # type: ignore[union-attr]
    assert {"train.ipynb", "helper.py", ".gitignore", GENERATED_YAML} <= names
    assert "big.bin" not in names
    step = get_step(parse_config(config_text), "train")
    assert step.source_path == "train.ipynb" and step.image == "python:3.11"
    assert {n: p.type for n, p in step.parameters.items()} == {
        "epochs": "integer",
        "lr": "float",
        "name": "string",
        "verbose": "flag",
    }
    assert prepared.notebook == "train.ipynb" and prepared.step == "train"


def test_images(workdir) -> None:
    assert prepare_run(RunRequest(path="train.ipynb", cwd=str(workdir))).body["image"] == (
        "python:3.11"
    )
    configured = prepare_run(RunRequest(path="train.ipynb", cwd=str(workdir)), default_image="c:1")
    assert configured.body["image"] == "c:1"
    asked = RunRequest(path="train.ipynb", cwd=str(workdir), image="r:2")
    assert prepare_run(asked, default_image="c:1").body["image"] == "r:2"


def test_python_script(client: Client, stack: Stack, tmp_path) -> None:
    (tmp_path / "train.py").write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--lr', type=float)\n"
        "p.add_argument('--epochs', type=int)\n"
        "p.add_argument('--optimizer')\n"
        "a = p.parse_args()\n"
        "print('script', a.lr * a.epochs, a.optimizer)\n"
    )
    req = RunRequest(
        path="train.py",
        parameters={"lr": "0.25", "epochs": "4", "optimizer": "adam"},
        cwd=str(tmp_path),
    )
    execution = submit(client, req)
    assert execution["command"] == "python train.py --lr=0.25 --epochs=4 --optimizer=adam"
    _, log = finish(client, stack, execution)
    assert "script 1.0 adam" in log


def test_code_cell(client: Client, stack: Stack, tmp_path) -> None:
    (tmp_path / "util.py").write_text("ANSWER = 42\n")
    req = RunRequest(
        code="from util import ANSWER\nprint('cell says', ANSWER)\n", cwd=str(tmp_path)
    )
    execution = submit(client, req)
    assert execution["step"] == "cell" and execution["command"] == "python cell.py"
    _, log = finish(client, stack, execution)
    assert "cell says 42" in log


def test_valohai_yaml_step(client: Client, stack: Stack, tmp_path) -> None:
    (tmp_path / "valohai.yaml").write_text(
        "- step:\n    name: greet\n    image: python:3.11\n"
        "    command: python greet.py {parameters}\n"
        "    parameters:\n      - name: times\n        type: integer\n        default: 1\n"
        "- step:\n    name: other\n    image: python:3.11\n    command: 'true'\n"
    )
    (tmp_path / "greet.py").write_text(
        "import sys\nn = int(sys.argv[1].split('=')[1])\nprint('hi ' * n)\n"
    )
    with pytest.raises(InvalidInput, match="say which"):
        prepare_run(RunRequest(path="valohai.yaml", cwd=str(tmp_path)))
    req = RunRequest(
        path="valohai.yaml", step="greet", parameters={"times": "3"}, cwd=str(tmp_path)
    )
    _, log = finish(client, stack, submit(client, req))
    assert "hi hi hi" in log


def test_async_submit(stack: Stack, workdir) -> None:
    async def main() -> dict:
        async with AsyncClient(stack.url, stack.admin_token) as ac:
            project = await ac.create_project("async-one")
            req = RunRequest(path="train.ipynb", project="async-one", cwd=str(workdir))
            execution = await asubmit(ac, req)
            assert execution["project"]["id"] == project["id"]
            events = [e async for e in ac.stream_events(execution["id"])]
            assert events[-1].data["status"] == "complete", stack.explain(execution["id"])
            return await ac.get_execution(execution["id"])

    assert asyncio.run(main())["parameters"]["epochs"] == 2


def test_refusals_create_no_execution(client: Client, stack: Stack, workdir) -> None:
    finish(client, stack, submit(client, RunRequest(path="train.ipynb", cwd=str(workdir))))
    before = count(client)
    assert before == 1

    with pytest.raises(InvalidInput) as bad:
        submit(
            client, RunRequest(path="train.ipynb", parameters={"epochs": "ten"}, cwd=str(workdir))
        )
    assert "'epochs'" in bad.value.message and "integer" in bad.value.message
    assert "2" in (bad.value.hint or "")

    with pytest.raises(InvalidInput) as env:
        submit(client, RunRequest(path="train.ipynb", environment="gpu-x", cwd=str(workdir)))
    assert "gpu-x" in env.value.message and "local" in (env.value.hint or "")

    (workdir / ".gitignore").write_text("")
    with pytest.raises(SnapshotTooLarge) as large:
        submit(client, RunRequest(path="train.ipynb", cwd=str(workdir)), max_bytes=200_000)
    assert "big.bin" in large.value.message

    with pytest.raises(NotFound):
        submit(client, RunRequest(path="train.ipynb", project="nope", cwd=str(workdir)))

    down = Client(f"http://127.0.0.1:{free_port()}", stack.admin_token)
    with pytest.raises(ServiceUnavailable) as unavailable:
        submit(down, RunRequest(path="train.ipynb", cwd=str(workdir)))
    assert "does not answer" in unavailable.value.message

    assert count(client) == before


@pytest.fixture
def data_server(tmp_path) -> Iterator[str]:
    """A real HTTP server with two input files; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.csv").write_text("from a\n")
    (root / "b.csv").write_text("from b\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_notebook_inputs_and_override(client: Client, stack: Stack, tmp_path, data_server) -> None:
    make_notebook(
        tmp_path / "reader.ipynb",
        ("inputs", f'{{"table": "{data_server}/a.csv"}}'),
        "import os, glob\n"
        "for p in glob.glob(os.path.join(os.environ['VH_INPUTS_DIR'], 'table', '*')):\n"
        "    print('read', open(p).read().strip())",
    )

    prepared = prepare_run(RunRequest(path="reader.ipynb", cwd=str(tmp_path)))
    step = get_step(parse_config(prepared.config_text), "reader")
    assert step.inputs["table"].default == f"{data_server}/a.csv"

    _, log = finish(
        client, stack, submit(client, RunRequest(path="reader.ipynb", cwd=str(tmp_path)))
    )
    assert "read from a" in log
    req = RunRequest(
        path="reader.ipynb", inputs={"table": f"{data_server}/b.csv"}, cwd=str(tmp_path)
    )
    _, log = finish(client, stack, submit(client, req))
    assert "read from b" in log and "read from a" not in log


def test_inputs_must_be_uris(workdir) -> None:
    with pytest.raises(InvalidInput, match="is not a URI") as exc:
        prepare_run(RunRequest(path="train.ipynb", inputs={"d": "data/x.csv"}, cwd=str(workdir)))
    assert "snapshot" in (exc.value.hint or "")
    with pytest.raises(InvalidInput, match="URI or a list"):
        prepare_run(RunRequest(path="train.ipynb", inputs={"d": 3}, cwd=str(workdir)))


def test_script_names_and_bad_requests(tmp_path) -> None:
    (tmp_path / "my script.py").write_text("print(1)\n")
    prepared = prepare_run(
        RunRequest(path="my script.py", parameters={"n": "2"}, cwd=str(tmp_path))
    )
    step = get_step(parse_config(prepared.config_text), "my-script")
    assert step.command == ["python 'my script.py' {parameters}"]
    assert step.parameters["n"].type == "integer" and prepared.body["parameters"] == {"n": 2}
    for req, message in [
        (RunRequest(cwd=str(tmp_path)), "Give a notebook"),
        (RunRequest(path="nope.ipynb", cwd=str(tmp_path)), "No file"),
        (RunRequest(path="my script.py", code="print(2)", cwd=str(tmp_path)), "not both"),
        (RunRequest(code="  ", cwd=str(tmp_path)), "no code"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            prepare_run(req)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidInput, match="Cannot run"):
        prepare_run(RunRequest(path="notes.txt", cwd=str(tmp_path)))
