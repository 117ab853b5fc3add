"""Parameters and inputs read from notebooks: tagged cells, valohai-utils calls, type checks."""

from __future__ import annotations

import nbformat
import pytest

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.notebook import (
    Param,
    coerce_overrides,
    infer_text_type,
    notebook_inputs,
    notebook_parameters,
    read_notebook,
)


def notebook(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


PARAMS = """\
%matplotlib inline
epochs = 10
lr: float = 0.001
name = "resnet"
verbose = False
layers = [1, 2]   # not a parameter: no valohai.yaml type for lists
nothing = None
scale = 2.5e3
"""


def test_types_inferred_from_parameters_cell() -> None:
    nb = notebook(("import os", []), (PARAMS, ["parameters"]), ("print(epochs)", []))
    params = notebook_parameters(nb)
    assert params == {
        "epochs": Param("epochs", "integer", 10),
        "lr": Param("lr", "float", 0.001),
        "name": Param("name", "string", "resnet"),
        "verbose": Param("verbose", "flag", False),
        "scale": Param("scale", "float", 2500.0),
    }
    assert list(params) == ["epochs", "lr", "name", "verbose", "scale"]


def test_no_parameters_cell_and_broken_cell() -> None:
    assert notebook_parameters(notebook(("x = 1", []))) == {}
    with pytest.raises(InvalidInput, match="parameters cell"):
        notebook_parameters(notebook(("x = = 1", ["parameters"])))


def test_valohai_prepare_parameters_count_too() -> None:
    nb = notebook(
        ("epochs = 3", ["parameters"]),
        (
            "import valohai\n"
            "valohai.prepare(step='t', default_parameters={'epochs': 1, 'dropout': 0.2})",
            [],
        ),
    )
    params = notebook_parameters(nb)
    assert params["epochs"] == Param("epochs", "integer", 3)
    assert params["dropout"] == Param("dropout", "float", 0.2)


def test_overrides_coerced() -> None:
    params = notebook_parameters(notebook((PARAMS, ["parameters"])))
    values = coerce_overrides(
        params, {"epochs": "5", "lr": "0.1", "name": "vgg", "verbose": "true", "scale": "3"}
    )
    assert values == {"epochs": 5, "lr": 0.1, "name": "vgg", "verbose": True, "scale": 3.0}
    assert type(values["scale"]) is float
    # typed values (from JSON bodies) are checked too
    assert coerce_overrides(params, {"epochs": 7, "lr": 1, "verbose": False, "name": 5}) == {
        "epochs": 7,
        "lr": 1.0,
        "verbose": False,
        "name": "5",
    }
    with pytest.raises(InvalidInput, match="'name' must be text"):
        coerce_overrides(params, {"name": [1]})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("epochs", "ten", "an integer"),
        ("epochs", "1.5", "an integer"),
        ("epochs", True, "an integer"),
        ("lr", "fast", "a number"),
        ("lr", "nan", "a number"),
        ("verbose", "maybe", "true or false"),
    ],
)
def test_bad_override_names_parameter_type_and_default(name, value, expected) -> None:
    params = notebook_parameters(notebook((PARAMS, ["parameters"])))
    with pytest.raises(InvalidInput) as exc:
        coerce_overrides(params, {name: value})
    assert name in exc.value.message and expected in exc.value.message
    assert repr(params[name].default) in (exc.value.hint or "")
    assert "\n" not in str(exc.value)


def test_unknown_override_lists_known() -> None:
    params = notebook_parameters(notebook((PARAMS, ["parameters"])))
    with pytest.raises(InvalidInput, match="Unknown parameter") as exc:
        coerce_overrides(params, {"epoch": "1"})
    assert "epochs" in (exc.value.hint or "")


def test_infer_text_type() -> None:
    assert infer_text_type("3") == ("integer", 3)
    assert infer_text_type("0.5") == ("float", 0.5)
    assert infer_text_type("True") == ("flag", True)
    assert infer_text_type("inf") == ("string", "inf")
    assert infer_text_type("adam") == ("string", "adam")


def test_inputs_from_tagged_cells_and_valohai_utils() -> None:
    nb = notebook(
        (
            '{"train": "https://h/train.csv", "images": ["s3://b/1.png", "s3://b/2.png"]}',
            ["inputs"],
        ),
        ('labels = "datum://abc"\nlater = None\ncount = 3', ["inputs"]),
        ('inputs = {"extra": "https://h/x"}', ["inputs"]),
        (
            "import valohai\n!pip install -q x\n"
            "default_inputs = {'model': 'https://h/model.pkl'}\n"
            "valohai.prepare(step='s', default_inputs=default_inputs)",
            [],
        ),
    )
    assert notebook_inputs(nb) == {
        "model": ["https://h/model.pkl"],
        "train": ["https://h/train.csv"],
        "images": ["s3://b/1.png", "s3://b/2.png"],
        "labels": ["datum://abc"],
        "later": [],
        "extra": ["https://h/x"],
    }


def test_read_notebook_errors(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="No notebook"):
        read_notebook(str(tmp_path / "missing.ipynb"))
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ nope")
    with pytest.raises(InvalidInput, match="not a readable notebook"):
        read_notebook(str(bad))


def test_raw_json_notebooks_with_list_sources() -> None:
    raw = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": ["a = 1\n", "b = 'x'"],
            },
            {
                "cell_type": "code",
                "metadata": {"tags": ["inputs"]},
                "source": ["d = 'https://h/d'"],
            },
        ]
    }
    assert notebook_parameters(raw) == {
        "a": Param("a", "integer", 1),
        "b": Param("b", "string", "x"),
    }
    assert notebook_inputs(raw) == {"d": ["https://h/d"]}
