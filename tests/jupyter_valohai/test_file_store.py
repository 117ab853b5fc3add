"""``stores.FileStore``: atomic puts, and keys that would leave the root are refused."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.stores import FileStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(f"file://{tmp_path / 'artifacts'}")


def test_round_trip(store: FileStore) -> None:
    data = os.urandom(3 << 20)  # several read chunks
    obj = store.put("code/abc.tgz", io.BytesIO(data))
    assert obj.size == len(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists("code/abc.tgz")
    assert store.size("code/abc.tgz") == len(data)
    with store.open("code/abc.tgz") as fp:
        assert fp.read() == data
    assert store.uri("code/abc.tgz") == f"{store.url}/code/abc.tgz"
    store.delete("code/abc.tgz")
    store.delete("code/abc.tgz")  # deleting twice is fine
    assert not store.exists("code/abc.tgz")
    with pytest.raises(NotFound):
        store.open("code/abc.tgz")
    with pytest.raises(NotFound):
        store.size("code/abc.tgz")


class _Exploding(io.RawIOBase):
    """A stream that fails after yielding some bytes, like a dropped upload."""

    def __init__(self) -> None:
        self.sent = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.sent >= 2 << 20:
            raise ConnectionResetError("client went away")
        self.sent += 1 << 20
        return b"n" * (1 << 20)


def test_put_is_atomic(store: FileStore) -> None:
    store.put("outputs/model.bin", io.BytesIO(b"old"))
    with pytest.raises(ConnectionResetError):
        store.put("outputs/model.bin", _Exploding())
    with store.open("outputs/model.bin") as fp:
        assert fp.read() == b"old"
    # No half-written temporary file is left behind.
    assert sorted(os.listdir(Path(store.root) / "outputs")) == ["model.bin"]


@pytest.mark.parametrize(
    "key",
    ["", "../escape", "/etc/passwd", "a/../../escape", "a//b", "./a", "a\\..\\b", "a\x00b", ".."],
)
def test_escaping_keys_refused(store: FileStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidInput):
        store.open(key)
    assert not (tmp_path / "escape").exists()


def test_symlink_out_of_root_refused(store: FileStore, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path, Path(store.root) / "link")
    with pytest.raises(NotFound):
        store.open("link/secret.txt")
    with pytest.raises(NotFound):
        store.put("link/planted.txt", io.BytesIO(b"x"))
    assert not (tmp_path / "planted.txt").exists()


def test_open_store_by_scheme(tmp_path: Path) -> None:
    assert isinstance(open_store(f"file://{tmp_path}"), FileStore)
    assert isinstance(open_store(str(tmp_path)), FileStore)
    with pytest.raises(InvalidInput, match="gopher://"):
        open_store("gopher://example/x")
