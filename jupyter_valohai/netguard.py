"""SSRF protection for inputs fetched over http(s).

An input URL comes from a user; the worker that downloads it sits inside a network that user may
not reach. Before every request (the first and every redirect hop) the host is resolved and each
address is checked: loopback, private, link-local, multicast, reserved and unspecified addresses
are refused unless an administrator allowed a range (``AgentApp.allowed_input_networks``).

The connection then goes to the address that was checked (the ``Host`` header and TLS name stay the
URL's), so a name that resolves differently on a second lookup cannot slip past the check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 10
HINT_SETTING = "c.AgentApp.allowed_input_networks"


class ForbiddenAddress(InvalidInput):
    """An input URL leads to an address inputs may not reach."""

    code = "forbidden_address"


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """Parse CIDRs (``"127.0.0.0/8"``, ``"::1/128"``, or a single address)."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise InvalidInput(
                f"allowed_input_networks: {value!r} is not an IP network.",
                hint="Give CIDRs such as 10.1.0.0/16 or 127.0.0.1/32.",
            ) from None
    return out


def classify(address: IPAddress) -> str | None:
    """Why ``address`` is off limits (``"loopback"``, ``"private"``, ...), or ``None``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return classify(address.ipv4_mapped)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # shared (100.64/10), documentation ranges, ...
        return "non-global"
    return None


@dataclass
class NetGuard:
    """Resolve a URL's host and refuse addresses outside the public internet."""

    allowed: list[IPNetwork] = field(default_factory=list)

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> NetGuard:
        return cls(parse_networks(networks))

    def is_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address.version == n.version and address in n for n in self.allowed)

    def check(self, url: str, label: str = "") -> list[str]:
        """Return the host's addresses (all checked); raise :class:`ForbiddenAddress`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"{label}{url_for_message(url)} is not an http(s) URL.")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as exc:
            raise InvalidInput(
                f"{label}cannot resolve the host of {url_for_message(url)}: {exc}.",
                hint="Check the URL's host name.",
            ) from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            kind = classify(address)
            if kind and not self.is_allowed(address):
                article = "an" if kind[0] in "aeiou" else "a"
                raise ForbiddenAddress(
                    f"{label}{url_for_message(url)} resolves to {article} {kind} address "
                    f"({address}), which inputs may not reach.",
                    hint=f"an administrator can allow it with {HINT_SETTING} = "
                    f"['{ipaddress.ip_network(address)}'] in the agent's configuration.",
                )
            addresses.append(str(address))
        if not addresses:
            raise InvalidInput(f"{label}{url_for_message(url)}: the host has no address.")
        return addresses

    def get(self, session: requests.Session, url: str, label: str = "", **kw: Any) -> Any:
        """GET ``url`` streamed, checking the address of the first request and of every redirect
        hop; connect to the checked address. Return the final response (caller closes it)."""
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._get_any(session, url, self.check(url, label), **kw)
            if not resp.is_redirect:
                return resp
            location = resp.headers.get("Location", "")
            resp.close()
            url = urljoin(url, location)
        raise InvalidInput(f"{label}more than {MAX_REDIRECTS} redirects.")

    def _get_any(self, session: requests.Session, url: str, addresses: list[str], **kw: Any) -> Any:
        """Try each checked address in turn, as a client does when one does not answer."""
        error: requests.ConnectionError | None = None
        for address in dict.fromkeys(addresses):
            try:
                return _pinned_get(session, url, address, **kw)
            except requests.ConnectionError as exc:
                error = exc
        assert error is not None
        raise error


def url_for_message(url: str) -> str:
    """``url`` without credentials or query (which may hold a signature)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


class _PinnedAdapter(HTTPAdapter):
    """Connects to one given IP address, keeping the URL's host for ``Host`` and TLS (SNI and
    certificate checks)."""

    def __init__(self, address: str, hostname: str) -> None:
        self.address, self.hostname = address, hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        kw["server_hostname"] = self.hostname
        kw["assert_hostname"] = self.hostname
        super().init_poolmanager(*args, **kw)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kw: Any
    ) -> requests.Response:
        parts = urlsplit(str(request.url))
        host = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{host}:{parts.port}" if parts.port else host
        original = request.url
        request.url = parts._replace(netloc=netloc).geturl()
        request.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
        try:
            resp = super().send(request, **kw)
        finally:
            request.url = original
        resp.url = str(original)
        return resp


def _pinned_get(session: requests.Session, url: str, address: str, **kw: Any) -> Any:
    parts = urlsplit(url)
    pinned = requests.Session()
    pinned.trust_env = False  # a proxy would do its own resolution
    pinned.headers.update(session.headers)
    pinned.mount(f"{parts.scheme}://", _PinnedAdapter(address, parts.hostname or ""))
    try:
        resp = pinned.get(url, stream=True, allow_redirects=False, **kw)
    except requests.RequestException:
        pinned.close()
        raise
    resp.raise_for_status()
    return resp
