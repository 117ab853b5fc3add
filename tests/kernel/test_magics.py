"""``%valohai`` / ``%%valohai`` in a real kernel against a real master and agent."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nbformat
import pytest

from tests.e2e.stack import Stack

from .conftest import Kernel, Output

pytestmark = pytest.mark.slow


def write_notebook(path: Path, *cells: tuple[str, str], tags: dict[int, str] | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(cells):
        cell = (
            nbformat.v4.new_code_cell(source)
            if kind == "code"
            else nbformat.v4.new_markdown_cell(source)
        )
        if tags and i in tags:
            cell.metadata["tags"] = [tags[i]]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


def params_notebook(path: Path) -> None:
    write_notebook(
        path,
        ("markdown", "# Train"),
        ("code", "lr = 0.1\nepochs = 2"),
        ("code", "print(f'lr={lr} epochs={epochs}')"),
        tags={1: "parameters"},
    )


def one_error_line(out: Output) -> str:
    """The cell printed exactly one ``Valohai: ... (hint: ...)`` line and no traceback."""
    assert out.status == "ok", out
    assert not out.error and "Traceback" not in out.stderr + out.stdout, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("Valohai: ") and "(hint: " in lines[0], out
    return lines[0]


def executions(stack: Stack) -> list[dict]:
    return stack.api("GET", "/api/v0/executions/", params={"limit": 0}).json()["results"]


def widget_displayed(out: Output) -> dict:
    views = [d for d in out.displays if "application/vnd.jupyter.widget-view+json" in d]
    assert len(views) == 1, out
    assert views[0]["text/plain"].startswith("Valohai execution #"), views
    return views[0]


def test_run_a_notebook_with_a_parameter_and_pull_it_back(
    kernel: Kernel, stack: Stack, workdir: Path
) -> None:
    params_notebook(workdir / "nb.ipynb")
    (workdir / "helper.txt").write_text("travels with the notebook")

    out = kernel.ok("%valohai run nb.ipynb --param lr=0.5 --title 'lr sweep'")
    widget_displayed(out)
    assert out.stdout == ""  # nothing noisy: the widget is the answer

    follow = kernel.ok("%valohai logs --follow")
    assert "lr=0.5 epochs=2" in follow.stdout, stack.logs()
    assert follow.stdout.strip().endswith("-- complete"), follow.stdout

    status = kernel.ok("%valohai status")
    assert "complete" in status.stdout and "[3/3]" in status.stdout, status.stdout

    pulled = kernel.ok("%valohai pull")
    assert "Pulled" in pulled.stdout and "valohai-outputs/default/1" in pulled.stdout, pulled
    link = [d for d in pulled.displays if "text/html" in d]
    assert link and "href='valohai-outputs/default/1/nb.ipynb'" in link[0]["text/html"], pulled
    executed = nbformat.read(str(workdir / "valohai-outputs/default/1/nb.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "lr = 0.5" in injected[0].source, executed.cells
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "lr=0.5 epochs=2" in printed

    (ex,) = executions(stack)
    assert ex["title"] == "lr sweep" and ex["parameters"]["lr"] == 0.5

    # The counter of the session's project works as an id; a second pull is refused by nothing.
    again = kernel.ok("%valohai outputs 1")
    assert "nb.ipynb" in again.stdout
    view = widget_displayed(kernel.ok(f"%valohai view {ex['id']}"))
    assert "complete" in view["text/plain"] or "queued" in view["text/plain"], view


def test_a_cell_runs_as_an_execution_and_its_log_is_readable(
    kernel: Kernel, stack: Stack, workdir: Path
) -> None:
    kernel.ok("%valohai project cells")
    out = kernel.ok(
        "%%valohai --no-widget --param n=6\n"
        "import sys\nprint('hello from a cell', sys.argv[1:], 6 * 7)"
    )
    assert out.stdout.startswith("Valohai execution #1"), out
    assert "project cells" in out.stdout and not out.displays, out

    kernel.ok("%valohai logs --follow")
    logs = kernel.ok("%valohai logs")
    assert "hello from a cell ['--n=6'] 42" in logs.stdout, stack.logs()
    listed = kernel.ok("%valohai list")
    assert "#1\tcomplete\tcell\tcells" in listed.stdout, listed.stdout

    # A .py file and a valohai.yaml step too.
    (workdir / "train.py").write_text("import sys\nprint('script args', sys.argv[1:])\n")
    kernel.ok("%valohai run train.py --no-widget --param epochs=3")
    follow = kernel.ok("%valohai logs --follow")
    assert "script args ['--epochs=3']" in follow.stdout, follow.stdout
    (workdir / "greet.py").write_text("import sys\nprint('hi', *sys.argv[1:])\n")
    (workdir / "valohai.yaml").write_text(
        "- step:\n    name: greet\n    image: python:3.11\n"
        "    command: python greet.py {parameters}\n"
        "    parameters:\n      - name: who\n        type: string\n        default: world\n"
    )
    kernel.ok("%valohai run valohai.yaml --step greet --param who=kernel --no-widget")
    follow = kernel.ok("%valohai logs --follow")
    assert "hi --who=kernel" in follow.stdout, follow.stdout


def test_refusals_are_one_line_with_a_hint_and_create_nothing(
    kernel: Kernel, stack: Stack, workdir: Path
) -> None:
    params_notebook(workdir / "nb.ipynb")
    line = one_error_line(kernel.run("%valohai run nb.ipynb --param epochs=many"))
    assert "epochs" in line and "integer" in line, line

    line = one_error_line(kernel.run("%valohai run nb.ipynb --env no-such-env"))
    assert "no-such-env" in line, line

    with open(workdir / "big.bin", "wb") as fp:  # sparse: its size counts, no disk is used
        fp.truncate(60 * 1024 * 1024)
    line = one_error_line(kernel.run("%valohai run nb.ipynb"))
    assert "big.bin" in line and ".vhignore" in line, line
    (workdir / "big.bin").unlink()

    line = one_error_line(kernel.run("%valohai run nb.ipynb --param lr"))
    assert "NAME=VALUE" in line, line
    line = one_error_line(kernel.run("%valohai run"))  # no notebook known to this kernel
    assert "path" in line, line
    line = one_error_line(kernel.run("%valohai frobnicate"))
    assert "usage" in line, line
    line = one_error_line(kernel.run("%valohai status"))
    assert "No execution yet" in line, line

    stack.stop()  # the master is down
    line = one_error_line(kernel.run("%valohai run nb.ipynb"))
    assert "does not answer" in line and stack.url in line, line
    line = one_error_line(kernel.run("%%valohai\nprint(1)"))
    assert "does not answer" in line, line

    stack.start_master()
    assert executions(stack) == []


def test_login_saves_the_token_without_showing_it(
    kernel: Kernel, stack: Stack, tmp_path: Path
) -> None:
    token = stack.admin_token
    kernel.ok("import os\nfor k in ('VH_MASTER_URL', 'VH_TOKEN'): os.environ.pop(k)")
    line = one_error_line(kernel.run("%valohai list"))
    assert "login" in line, line

    bad = kernel.run(f"%valohai login {stack.url} --token wrong-{token[:4]}")
    assert "wrong-" not in one_error_line(bad)
    login_file = tmp_path / "jupyter-data" / "valohai" / "login.json"
    assert not login_file.exists()

    out = kernel.ok(f"%valohai login {stack.url} --token {token}")
    assert token not in out.stdout + out.stderr + json.dumps(out.displays)
    assert f"Logged in to {stack.url}" in out.stdout, out
    assert json.loads(login_file.read_text()) == {"url": stack.url, "token": token}
    assert stat.S_IMODE(os.stat(login_file).st_mode) == 0o600

    kernel.ok("%valohai project fresh")
    listed = kernel.ok("%valohai list projects")
    assert "* fresh" in listed.stdout, listed.stdout
    envs = kernel.ok("%valohai list environments")
    assert envs.stdout.strip(), envs  # the master's default environment, at least
