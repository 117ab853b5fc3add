"""A run's generated valohai.yaml carries the ``endpoint:`` items of the valohai.yaml beside it,
so the run's commit can be deployed (the sidebar's Deploy, issue 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_valohai.client.deploy import endpoint_definitions
from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.submit import RunRequest, prepare_run
from jupyter_valohai.valohai_config import parse_config

ENDPOINT = """\
- step:
    name: other
    image: python:3.11
    command: python other.py
- endpoint:
    name: predict
    image: python:3.11
    wsgi: predict:application
    port: 8000
    files:
      - name: model
        path: model.pkl
"""


def test_endpoints_beside_the_script_are_carried(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "valohai.yaml").write_text(ENDPOINT)
    prepared = prepare_run(RunRequest(path="train.py", cwd=str(tmp_path)))
    config = parse_config(prepared.config_text)
    assert list(config.endpoints) == ["predict"]
    assert list(config.steps) == [prepared.step]  # the step run, not the file's own steps
    (endpoint,) = endpoint_definitions(prepared.config_text)
    assert endpoint == {
        "name": "predict",
        "description": "",
        "image": "python:3.11",
        "port": 8000,
        "wsgi": "predict:application",
        "server_command": None,
        "files": [{"name": "model", "path": "model.pkl"}],
    }


def test_no_or_broken_valohai_yaml_carries_nothing(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    prepared = prepare_run(RunRequest(path="train.py", cwd=str(tmp_path)))
    assert endpoint_definitions(prepared.config_text) == []
    (tmp_path / "valohai.yaml").write_text("- endpoint: [not, a, mapping]\n")
    prepared = prepare_run(RunRequest(path="train.py", cwd=str(tmp_path)))  # still runs
    assert parse_config(prepared.config_text).endpoints == {}


def test_endpoint_definitions_of_bad_yaml_say_so() -> None:
    assert endpoint_definitions(None) == []
    with pytest.raises(InvalidInput):
        endpoint_definitions("- endpoint: {name: x}\n")
