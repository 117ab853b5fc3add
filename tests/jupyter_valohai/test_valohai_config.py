"""valohai.yaml handling: typed parameters, unknown steps, bad YAML."""

from __future__ import annotations

import pytest

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.valohai_config import (
    build_commands,
    get_step,
    notebook_path,
    parse_config,
    resolve_environment_variables,
    resolve_inputs,
    resolve_parameters,
)

CONFIG = """
- step:
    name: train
    image: python:3.11
    command: python train.py {parameters}
    parameters:
      - name: lr
        type: float
        default: 0.1
      - name: epochs
        type: integer
        default: 3
      - name: label
        type: string
        default: hi
      - name: verbose
        type: flag
        default: false
    inputs:
      - name: data
        default: https://example.com/a.csv
      - name: extra
        optional: true
    environment-variables:
      - name: FOO
        default: bar
- step:
    name: notebook
    image: python:3.11
    command: pip --version
    source-path: notebooks/explore.ipynb
"""


@pytest.fixture
def config():  # type: ignore[no-untyped-def]
    return parse_config(CONFIG)


def test_defaults_and_typed_overrides(config) -> None:  # type: ignore[no-untyped-def]
    step = get_step(config, "train")
    assert resolve_parameters(step, None) == {
        "lr": 0.1,
        "epochs": 3,
        "label": "hi",
        "verbose": False,
    }
    values = resolve_parameters(step, {"lr": "0.5", "epochs": "7", "verbose": "true"})
    assert values == {"lr": 0.5, "epochs": 7, "label": "hi", "verbose": True}
    assert isinstance(values["epochs"], int)
    assert build_commands(step, values) == [
        "python train.py --lr=0.5 --epochs=7 --label=hi --verbose"
    ]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epochs": "many"}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"lr": "fast"}, "lr"),
        ({"momentum": 0.9}, "Unknown parameter"),
    ],
)
def test_bad_parameters(config, overrides: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=message) as info:
        resolve_parameters(get_step(config, "train"), overrides)
    assert info.value.status == 400
    assert info.value.hint


def test_unknown_step_lists_known_steps(config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="'evaluate'") as info:
        get_step(config, "evaluate")
    assert "notebook" in (info.value.hint or "")
    assert "train" in (info.value.hint or "")


@pytest.mark.parametrize(
    "text",
    [
        "- step: [",
        "foo: bar",
        "- step:\n    name: x\n",
        b"\xff\xfe not utf-8",
        "\t- step:",
    ],
    ids=["syntax", "not-a-list", "missing-fields", "not-utf8", "tab"],
)
def test_bad_yaml(text: str | bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_config(text)
    assert info.value.status == 400


def test_inputs_and_environment(config) -> None:  # type: ignore[no-untyped-def]
    step = get_step(config, "train")
    assert resolve_inputs(step, None) == {"data": ["https://example.com/a.csv"], "extra": []}
    assert resolve_inputs(step, {"data": ["s3://b/1", " s3://b/2 "]})["data"] == [
        "s3://b/1",
        "s3://b/2",
    ]
    with pytest.raises(InvalidInput):
        resolve_inputs(step, {"nope": "x"})
    assert resolve_environment_variables(step, {"N": 3}) == {"FOO": "bar", "N": "3"}
    with pytest.raises(InvalidInput):
        resolve_environment_variables(step, {"A=B": "x"})


def test_notebook_step(config) -> None:  # type: ignore[no-untyped-def]
    assert notebook_path(get_step(config, "notebook")) == "notebooks/explore.ipynb"
    assert notebook_path(get_step(config, "train")) is None
