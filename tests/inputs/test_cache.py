"""The worker's input cache against a real HTTP server that counts the bytes it sends."""

from __future__ import annotations

import hashlib
import os

import pytest

from agent.cache import InputCache, InputFetcher
from agent.client import AgentClient
from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.netguard import ForbiddenAddress, NetGuard, parse_networks


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def client():
    c = AgentClient("http://127.0.0.1:9/", "token")  # no master: only third-party URLs here
    yield c
    c.close()


def fetcher(tmp_path, max_bytes: int = 1 << 20) -> InputFetcher:
    guard = NetGuard(parse_networks(["127.0.0.0/8"]))
    return InputFetcher(guard, InputCache(str(tmp_path / "cache"), max_bytes))


def test_a_repeated_http_input_transfers_no_bytes(tmp_path, file_server, client) -> None:
    data = os.urandom(4096)
    file_server.files["/d.bin"] = data
    f = fetcher(tmp_path)
    url = file_server.url + "/d.bin"
    first = f.fetch(client, "", {}, url, str(tmp_path / "one"))
    assert (first.size, first.sha256, first.transferred) == (4096, sha(data), 4096)
    assert file_server.body_bytes == 4096

    second = f.fetch(client, "", {}, url, str(tmp_path / "two"))
    assert (second.sha256, second.transferred) == (sha(data), 0)
    assert file_server.body_bytes == 4096  # the server answered 304, no body
    assert (tmp_path / "two").read_bytes() == data
    # The cached object is read-only; the execution gets a link (or copy) of it.
    assert not os.access(str(tmp_path / "cache" / "objects" / sha(data)), os.W_OK) or (
        os.geteuid() == 0
    )


def test_a_changed_file_is_downloaded_again(tmp_path, file_server, client) -> None:
    file_server.files["/d.bin"] = b"old"
    f = fetcher(tmp_path)
    url = file_server.url + "/d.bin"
    f.fetch(client, "", {}, url, str(tmp_path / "one"))
    file_server.files["/d.bin"] = b"new!"
    got = f.fetch(client, "", {}, url, str(tmp_path / "two"))
    assert got.transferred == 4 and (tmp_path / "two").read_bytes() == b"new!"


def test_a_known_checksum_skips_the_request(tmp_path, file_server, client) -> None:
    data = b"x" * 1000
    file_server.files["/a"] = data
    file_server.files["/b"] = data  # same bytes under another URL
    f = fetcher(tmp_path)
    f.fetch(client, "", {}, file_server.url + "/a", str(tmp_path / "one"))
    got = f.fetch(client, "", {"sha256": sha(data)}, file_server.url + "/b", str(tmp_path / "2"))
    assert got.transferred == 0 and file_server.requests == ["/a"]


def test_a_wrong_checksum_is_refused(tmp_path, file_server, client) -> None:
    file_server.files["/a"] = b"abc"
    with pytest.raises(InvalidInput, match="expected"):
        fetcher(tmp_path).fetch(client, "", {"sha256": "0" * 64}, file_server.url + "/a", "/tmp/x")


def test_least_recently_used_files_are_evicted(tmp_path, file_server, client) -> None:
    for name in "abc":
        file_server.files[f"/{name}"] = name.encode() * 400
    f = fetcher(tmp_path, max_bytes=1000)
    cache = f.cache
    assert cache is not None
    f.fetch(client, "", {}, file_server.url + "/a", str(tmp_path / "a1"))
    f.fetch(client, "", {}, file_server.url + "/b", str(tmp_path / "b1"))
    # Use "a" again (a cache hit), so "b" is the least recently used.
    assert f.fetch(client, "", {}, file_server.url + "/a", str(tmp_path / "a2")).transferred == 0
    os.utime(os.path.join(cache.objects, sha(b"b" * 400) + ".json"), (1, 1))
    f.fetch(client, "", {}, file_server.url + "/c", str(tmp_path / "c1"))
    assert cache.total() <= 1000
    assert cache.has(sha(b"a" * 400)) and cache.has(sha(b"c" * 400))
    assert not cache.has(sha(b"b" * 400))


def test_a_file_larger_than_the_cache_still_arrives(tmp_path, file_server, client) -> None:
    file_server.files["/big"] = b"z" * 5000
    f = fetcher(tmp_path, max_bytes=1000)
    got = f.fetch(client, "", {}, file_server.url + "/big", str(tmp_path / "big"))
    assert got.size == 5000 and (tmp_path / "big").read_bytes() == b"z" * 5000
    assert f.cache is not None and f.cache.total() == 0


def test_a_tampered_cache_object_is_not_served(tmp_path, file_server, client) -> None:
    file_server.files["/a"] = b"good data"
    f = fetcher(tmp_path)
    f.fetch(client, "", {}, file_server.url + "/a", str(tmp_path / "one"))
    os.unlink(tmp_path / "one")
    obj = os.path.join(str(tmp_path / "cache" / "objects"), sha(b"good data"))
    os.chmod(obj, 0o644)
    with open(obj, "wb") as fh:
        fh.write(b"evil data")
    got = f.fetch(client, "", {}, file_server.url + "/a", str(tmp_path / "two"))
    assert got.transferred == 9 and (tmp_path / "two").read_bytes() == b"good data"


def test_the_guard_applies_to_third_party_urls(tmp_path, file_server, client) -> None:
    file_server.files["/a"] = b"x"
    f = InputFetcher(NetGuard(), InputCache(str(tmp_path / "cache"), 1000))
    with pytest.raises(ForbiddenAddress, match=r"Input 'x': .* loopback address"):
        f.fetch(client, "Input 'x': ", {}, file_server.url + "/a", str(tmp_path / "a"))
    assert file_server.requests == []


def test_an_object_evicted_meanwhile_is_downloaded_again(tmp_path, file_server, client) -> None:
    file_server.files["/a"] = b"abc"
    f = fetcher(tmp_path)
    assert f.cache is not None
    f.fetch(client, "", {}, file_server.url + "/a", str(tmp_path / "one"))
    # Another agent sharing the directory evicts the object after our check.
    f.cache._drop(sha(b"abc"))
    assert f.cache.place(sha(b"abc"), str(tmp_path / "gone")) is False
    assert not (tmp_path / "gone").exists()
    got = f.fetch(client, "", {"sha256": sha(b"abc")}, file_server.url + "/a", str(tmp_path / "2"))
    assert got.transferred == 3 and (tmp_path / "2").read_bytes() == b"abc"
