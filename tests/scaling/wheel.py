"""This package's wheel, built once per source state and cached (the agent release under test)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyter-valohai-tests"
SOURCES = ["jupyter_valohai", "master", "agent", "jupyter-config", "labextension/src"]
SOURCE_FILES = ["pyproject.toml", "labextension/package.json", "README.md"]
NOT_COPIED = (".git", "node_modules", ".venv", "test-artifacts", "__pycache__", "*.egg-info")


def source_digest() -> str:
    digest = hashlib.sha256()
    files = [REPO / f for f in SOURCE_FILES]
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files.append(path)
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def agent_wheel_dir(scratch: Path) -> Path:
    """A directory holding the wheel of the current sources (built on a cache miss)."""
    out = CACHE / "agent-wheel" / source_digest()
    if list(out.glob("jupyter_valohai-*.whl")):
        return out
    source = scratch / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    build = scratch / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(build), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"building the wheel failed:\n{done.stdout}\n{done.stderr}"
    out.mkdir(parents=True, exist_ok=True)
    for wheel in build.glob("jupyter_valohai-*.whl"):
        shutil.copy(wheel, out / wheel.name)
    return out
