"""SSRF guard: addresses are checked after DNS resolution and on every redirect hop."""

from __future__ import annotations

import pytest
import requests

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.netguard import ForbiddenAddress, NetGuard, parse_networks


@pytest.mark.parametrize(
    ("url", "kind", "address"),
    [
        ("http://127.0.0.1/data.csv", "loopback", "127.0.0.1"),
        ("http://10.1.2.3/data.csv", "private", "10.1.2.3"),
        ("http://192.168.0.10/x", "private", "192.168.0.10"),
        ("http://169.254.169.254/latest/meta-data/", "link-local", "169.254.169.254"),
        ("http://[::1]:8080/x", "loopback", "::1"),
        ("http://[::ffff:127.0.0.1]/x", "loopback", "::ffff:7f00:1"),
        ("http://0.0.0.0/x", "unspecified", "0.0.0.0"),
        ("http://224.0.0.1/x", "multicast", "224.0.0.1"),
        ("http://localhost/x", "loopback", ""),  # a name resolving to loopback
    ],
)
def test_non_public_addresses_are_refused(url: str, kind: str, address: str) -> None:
    with pytest.raises(ForbiddenAddress) as info:
        NetGuard().check(url, "Input 'x': ")
    message = str(info.value)
    assert message.startswith("Input 'x': ")
    assert f"address ({address}" in message
    assert kind in message
    assert "which inputs may not reach" in message
    assert "allowed_input_networks" in (info.value.hint or "")


def test_the_message_names_the_url_without_secrets() -> None:
    with pytest.raises(ForbiddenAddress) as info:
        NetGuard().check("http://user:pw@127.0.0.1:81/a?sig=secret", "Input 'x': ")
    assert str(info.value).startswith(
        "Input 'x': http://127.0.0.1:81/a resolves to a loopback address (127.0.0.1)"
    )
    assert "secret" not in str(info.value) and "pw" not in str(info.value)


def test_an_allowed_range_is_reachable(file_server) -> None:
    file_server.files["/a.txt"] = b"hello"
    guard = NetGuard(parse_networks(["127.0.0.0/8"]))
    resp = guard.get(requests.Session(), file_server.url + "/a.txt")
    assert resp.content == b"hello"
    assert guard.check("http://localhost/x") != []


def test_refused_without_the_range_and_nothing_is_requested(file_server) -> None:
    file_server.files["/a.txt"] = b"hello"
    with pytest.raises(ForbiddenAddress):
        NetGuard().get(requests.Session(), file_server.url + "/a.txt")
    assert file_server.requests == []


def test_a_redirect_to_a_forbidden_address_is_refused(file_server, other_loopback_server) -> None:
    # Only the first server's address is allowed; it redirects to another loopback address.
    other_loopback_server.files["/secret"] = b"internal"
    file_server.redirects["/go"] = other_loopback_server.url + "/secret"
    guard = NetGuard(parse_networks(["127.0.0.1/32"]))
    with pytest.raises(ForbiddenAddress) as info:
        guard.get(requests.Session(), file_server.url + "/go", "Input 'x': ")
    assert "resolves to a loopback address (127.0.0.2)" in str(info.value)
    assert file_server.requests == ["/go"]
    assert other_loopback_server.requests == []


def test_a_redirect_within_allowed_ranges_is_followed(file_server) -> None:
    file_server.files["/b"] = b"bee"
    file_server.redirects["/a"] = "/b"
    guard = NetGuard(parse_networks(["127.0.0.1/32"]))
    assert guard.get(requests.Session(), file_server.url + "/a").content == b"bee"


def test_bad_networks_and_urls_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="not an IP network"):
        parse_networks(["10.0.0.0/33"])
    with pytest.raises(InvalidInput, match="not an http"):
        NetGuard().check("ftp://example.com/x")
    with pytest.raises(InvalidInput, match="cannot resolve"):
        NetGuard().check("http://no-such-host.invalid/x")
