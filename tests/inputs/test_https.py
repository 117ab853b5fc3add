"""The guard connects to the address it checked, yet TLS still verifies the URL's host name."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator

import pytest
import requests

from jupyter_valohai.netguard import NetGuard, parse_networks
from tests.certs import self_signed


@pytest.fixture
def https_server(tmp_path) -> Iterator[tuple[int, str]]:
    cert, key = self_signed(tmp_path, "localhost")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"host={self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def test_https_keeps_the_host_name_for_sni_and_verification(https_server) -> None:
    port, cert = https_server
    guard = NetGuard(parse_networks(["127.0.0.0/8", "::1/128"]))
    resp = guard.get(requests.Session(), f"https://localhost:{port}/x", verify=cert)
    assert resp.content == f"host=localhost:{port}".encode()
    # The certificate names localhost, not the address: verification still applies.
    with pytest.raises(requests.exceptions.SSLError):
        guard.get(requests.Session(), f"https://127.0.0.1:{port}/x", verify=cert)
