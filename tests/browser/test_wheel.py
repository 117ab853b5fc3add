"""The built wheel is the whole installation: the lab extension enabled and OK, no Node.js."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .lab import REPO

pytestmark = pytest.mark.slow

PREFIX = "share/jupyter/labextensions/jupyter-valohai/"
NOT_COPIED = (".git", "node_modules", ".venv", "test-artifacts", "__pycache__", "*.egg-info")


def run(argv: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout + done.stderr)


def test_the_wheel_installs_the_lab_extension(tmp_path: Path) -> None:
    # The wheel, as `pip wheel` builds it; from a copy of the tree, so that a build of the
    # extension (hatch-jupyter-builder, when labextension/dist is missing or older than src/)
    # never swaps files under a Lab that another test is running.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)])
    (wheel,) = tmp_path.glob("jupyter_valohai-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        data = [n.split(".data/data/", 1)[1] for n in zf.namelist() if ".data/data/" in n]
    assert PREFIX + "package.json" in data, data
    assert PREFIX + "install.json" in data, data
    assert any(n.startswith(PREFIX + "static/remoteEntry.") for n in data), data

    # A fresh venv with the wheel and JupyterLab, and no Node.js on PATH.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, str(wheel), "jupyterlab>=4.2"])
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": str(venv / "bin"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    listed = run([str(venv / "bin" / "jupyter"), "labextension", "list"], env=env)
    line = next((x for x in listed.splitlines() if "jupyter-valohai" in x), "")
    assert "enabled" in line and "OK" in line, listed
    assert "(python, jupyter-valohai)" in line, listed
    servers = run([str(venv / "bin" / "jupyter"), "server", "extension", "list"], env=env)
    assert "jupyter_valohai" in servers and "enabled" in servers, servers
