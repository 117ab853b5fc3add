"""A notebook step: papermill runs it with the parameters; the executed notebook is an output."""

from __future__ import annotations

import json
import os

import nbformat

from agent import io


def _notebook(path: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import json, os\nprint('x is', x)\nprint(os.getcwd())\nprint(json.dumps({'x': x}))"
        ),
        nbformat.v4.new_code_cell(
            "open(os.environ['VH_OUTPUTS_DIR'] + '/y.txt', 'w').write(str(x))"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nbformat.write(nb, path)


def test_notebook_runs_with_parameters_into_outputs(tmp_path, new_job, runtime) -> None:
    _notebook(str(tmp_path / "repository" / "nbs" / "train.ipynb"))
    job, lines = new_job(["echo before"], kind="notebook", notebook="nbs/train.ipynb")
    layout = io.Layout(str(tmp_path))
    job.env = io.execution_env({"id": "e-nb"}, layout)
    io.write_config({"parameters": {"x": 42}}, layout, {})

    result = runtime.process(job)
    assert result.status == "complete", lines.items

    executed = tmp_path / "outputs" / "train.ipynb"
    nb = nbformat.read(str(executed), as_version=4)
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "x is 42" in outputs
    assert str(tmp_path / "repository") in outputs  # --cwd is the repository
    assert (tmp_path / "outputs" / "y.txt").read_text() == "42"
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)

    stdout = lines.text("stdout")
    assert "before" in stdout
    assert "x is 42\n" in stdout  # cell prints reach the log as stdout lines...
    assert '{"x": 42}\n' in stdout  # ...so a JSON line printed in a cell is metadata
    # The kernel talks over Unix sockets, not loopback TCP (and ipykernel has nothing to warn).
    assert "running over TCP" not in lines.text("stderr")
    assert {f.name for f in io.collect_outputs(str(tmp_path / "outputs"))} == {
        "train.ipynb",
        "y.txt",
    }
    assert json.loads(executed.read_text())["nbformat"] == 4


def test_failing_notebook_is_an_error_and_still_written(tmp_path, new_job, runtime) -> None:
    path = tmp_path / "repository" / "bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    os.makedirs(path.parent, exist_ok=True)
    nbformat.write(nb, str(path))
    job, lines = new_job([], kind="notebook", notebook="bad.ipynb")
    io.write_config({"parameters": {}}, io.Layout(str(tmp_path)), {})
    result = runtime.process(job)
    assert result.status == "error" and result.exit_code != 0
    assert "boom" in lines.text("stderr") + lines.text("stdout")
    assert (tmp_path / "outputs" / "bad.ipynb").exists()


def test_a_notebook_naming_no_kernel_runs_on_python3(tmp_path, new_job, runtime) -> None:
    nb = nbformat.v4.new_notebook()  # as a script writes it: no kernelspec in the metadata
    params = nbformat.v4.new_code_cell("n = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('ran without a kernelspec', n)")]
    path = tmp_path / "repository" / "bare.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    job, lines = new_job([], kind="notebook", notebook="bare.ipynb")
    layout = io.Layout(str(tmp_path))
    job.env = io.execution_env({"id": "e-bare"}, layout)
    io.write_config({"parameters": {"n": 7}}, layout, {})

    result = runtime.process(job)
    assert result.status == "complete", lines.items
    assert "ran without a kernelspec 7" in lines.text("stdout")
