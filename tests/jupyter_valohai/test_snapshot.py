"""Code snapshots: ignore files, always-skipped folders, size limit, reproducible tarballs."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from jupyter_valohai.archive import safe_extract
from jupyter_valohai.errors import InvalidInput, SnapshotTooLarge
from jupyter_valohai.snapshot import snapshot


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return sorted(m.name for m in tar.getmembers())


def put(root: Path, rel: str, content: str | bytes = "x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    for rel in [
        "train.ipynb",
        "helpers.py",
        "src/model.py",
        "data/big.csv",
        "data/keep.csv",
        "logs/run.log",
        "notes.tmp",
        "sub/local.secret",
        "sub/other.py",
        ".git/config",
        ".ipynb_checkpoints/train-checkpoint.ipynb",
        "__pycache__/helpers.cpython-311.pyc",
        "env/pyvenv.cfg",
        "env/lib/site.py",
        ".venv/bin/python",
        "node_modules/x/index.js",
    ]:
        put(root, rel)
    put(root, ".gitignore", "data/*\n!data/keep.csv\n*.log\n")
    put(root, ".vhignore", "*.tmp\n")
    put(root, "sub/.gitignore", "*.secret\n")
    return root


def test_ignore_files_and_skipped_folders(project: Path) -> None:
    assert names(snapshot(str(project), "train.ipynb")) == [
        ".gitignore",
        ".vhignore",
        "data/keep.csv",
        "helpers.py",
        "src/model.py",
        "sub/.gitignore",
        "sub/other.py",
        "train.ipynb",
    ]


def test_entry_always_included_and_extra_files(project: Path) -> None:
    put(project, ".vhignore", "*.tmp\ntrain.ipynb\n")
    data = snapshot(str(project), "train.ipynb", extra={".jupyter-valohai/valohai.yaml": b"- x"})
    assert "train.ipynb" in names(data)
    assert ".jupyter-valohai/valohai.yaml" in names(data)
    with pytest.raises(InvalidInput, match="No file"):
        snapshot(str(project), "missing.ipynb")


def test_reproducible_and_safe(project: Path, tmp_path) -> None:
    first = snapshot(str(project), "train.ipynb")
    os.utime(project / "helpers.py", (1, 1))
    assert snapshot(str(project), "train.ipynb") == first
    archive = tmp_path / "code.tgz"
    archive.write_bytes(first)
    safe_extract(str(archive), str(tmp_path / "out"))
    assert (tmp_path / "out" / "src" / "model.py").read_text() == "x"


def test_links_leaving_the_folder_are_left_out(project: Path, tmp_path) -> None:
    put(tmp_path, "outside.txt", "secret")
    os.symlink(tmp_path / "outside.txt", project / "link.txt")
    os.symlink(project / "helpers.py", project / "inside.py")
    found = names(snapshot(str(project), "train.ipynb"))
    assert "link.txt" not in found and "inside.py" in found


def test_too_large_names_the_five_biggest(project: Path) -> None:
    for i, size in enumerate([900, 800, 700, 600, 500, 400]):
        put(project, f"weights/w{i}.bin", b"0" * size * 1024)
    with pytest.raises(SnapshotTooLarge) as exc:
        snapshot(str(project), "train.ipynb", max_bytes=1024 * 1024)
    message = exc.value.message
    assert isinstance(exc.value, InvalidInput)
    assert "1.0 MB" in message
    for i in range(5):
        assert f"weights/w{i}.bin" in message
    assert "w5.bin" not in message
    assert "900.0 KB" in message
    assert ".vhignore" in (exc.value.hint or "")
    assert "\n" not in str(exc.value)
    # Ignoring them fixes it.
    put(project, ".vhignore", "*.tmp\nweights/\n")
    assert "train.ipynb" in names(snapshot(str(project), "train.ipynb", max_bytes=1024 * 1024))


def test_linked_folders_are_not_followed(project: Path) -> None:
    os.symlink(project, project / "loop")
    os.symlink(project / "src", project / "src-again")
    found = names(snapshot(str(project), "train.ipynb"))
    assert not any(n.startswith(("loop/", "src-again/")) for n in found)
    assert "src/model.py" in found


def test_fifos_and_sockets_are_left_out(project: Path) -> None:
    os.mkfifo(project / "pipe")  # opening it would block the snapshot
    assert "pipe" not in names(snapshot(str(project), "train.ipynb"))
