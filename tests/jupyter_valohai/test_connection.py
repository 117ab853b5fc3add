"""Connection resolution: arguments, environment, connection file, login file, embedded default."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from jupyter_valohai.connection import (
    login_file,
    read_connection_file,
    resolve_connection,
    save_login,
)
from jupyter_valohai.errors import InvalidInput, NotConfigured


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("VH_MASTER_URL", "VH_TOKEN", "VH_CONNECTION_FILE", "VH_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))


def write(path, url: str, token: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"url": url, "token": token, "pid": 1}, f)
    return str(path)


def test_nothing_configured(tmp_path) -> None:
    with pytest.raises(NotConfigured) as exc:
        resolve_connection()
    assert "login" in (exc.value.hint or "") and "jupyter valohai up" in (exc.value.hint or "")


def test_order(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    embedded = write(
        tmp_path / "home/.local/share/jupyter-valohai/connection.json", "http://e", "te"
    )
    assert resolve_connection() == resolve_connection()
    assert resolve_connection().url == "http://e" and resolve_connection().source == embedded

    monkeypatch.setenv("VH_DATA_DIR", str(tmp_path / "vhdata"))
    write(tmp_path / "vhdata/connection.json", "http://d", "td")
    assert resolve_connection().url == "http://d"

    save_login("http://login/", "tl")
    assert resolve_connection().url == "http://login"
    assert resolve_connection().token == "tl"

    cfile = write(tmp_path / "conn.json", "http://f", "tf")
    monkeypatch.setenv("VH_CONNECTION_FILE", cfile)
    assert resolve_connection().url == "http://f"
    assert "VH_CONNECTION_FILE" in resolve_connection().source

    monkeypatch.setenv("VH_MASTER_URL", "http://env")
    assert resolve_connection().url == "http://f"  # a URL alone is not a connection
    monkeypatch.setenv("VH_TOKEN", "tenv")
    conn = resolve_connection()
    assert (conn.url, conn.token) == ("http://env", "tenv")

    conn = resolve_connection("http://arg", "targ")
    assert (conn.url, conn.token, conn.source) == ("http://arg", "targ", "arguments")
    assert "targ" not in repr(conn)


def test_url_alone_takes_the_token_stored_for_it(tmp_path) -> None:
    save_login("http://one", "t1")
    assert resolve_connection("http://one/").token == "t1"
    with pytest.raises(NotConfigured, match="http://two"):
        resolve_connection("http://two")


def test_login_file_is_private(tmp_path) -> None:
    path = save_login("http://x", "secret")
    assert path == login_file() and path.startswith(str(tmp_path / "jupyter-data"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(Path(path).read_text()) == {"url": "http://x", "token": "secret"}


def test_broken_connection_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("VH_CONNECTION_FILE", str(bad))
    with pytest.raises(InvalidInput, match="cannot be read"):
        resolve_connection()
    bad.write_text(json.dumps({"url": "http://x"}))
    with pytest.raises(InvalidInput, match="lacks a url or a token"):
        read_connection_file(str(bad))
