"""The stable front of local endpoints: one port, one path per version and per alias.

``/<owner>/<project>/<deployment>/<version or alias>/<endpoint>/<rest>`` is forwarded to the
endpoint's server as ``/<rest>``. Each request resolves its upstream from MongoDB (an alias names
a version; a version's endpoint must be ``running``), so an alias switch is one write and every
master replica sees it. The front counts requests in flight per endpoint: a retired version is
stopped only after :meth:`Front.drain`, and a request whose upstream went away while it was being
resolved is resolved again once, so a switch loses no request.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any
from urllib.parse import quote, unquote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from ..context import Context

log = logging.getLogger(__name__)

HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def front_path(owner: str, project: str, deployment: str, version: str, endpoint: str) -> str:
    parts = (owner, project, deployment, version, endpoint)
    return "/" + "/".join(quote(p, safe="") for p in parts) + "/"


class Front:
    """The proxy's state: where it listens, what it is forwarding."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        db = ctx.store.db
        self.deployments = db["deployments"]
        self.versions = db["deployment_versions"]
        self.endpoints = db["deployment_endpoints"]
        self.aliases = db["deployment_aliases"]
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.server: HTTPServer | None = None
        self.port = 0
        self.address = "127.0.0.1"
        self.client = AsyncHTTPClient(force_instance=True, max_clients=256)

    @property
    def url(self) -> str:
        public = self.ctx.config.deploy_public_url.rstrip("/")
        return public or f"http://{self.address}:{self.port}"

    def listen(self, port: int, address: str) -> None:
        app = Application([(r"/(.*)", FrontHandler)], front=self)
        self.server = HTTPServer(app, xheaders=True, max_body_size=256 << 20)
        bound = bind_sockets(port, address)
        self.server.add_sockets(bound)
        self.port = int(bound[0].getsockname()[1])
        self.address = address
        log.info("deployment front on http://%s:%d", address, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.client.close()

    async def resolve(self, path: str) -> tuple[dict[str, Any], str] | None:
        """``path`` -> (the running endpoint's document, the rest of the path), or None."""
        parts = path.split("/", 5)
        if len(parts) < 5:
            return None
        owner, project, deployment, ref, endpoint = (unquote(p) for p in parts[:5])
        rest = parts[5] if len(parts) > 5 else ""
        user = await self.ctx.store.users.find_one({"username": owner}, {"_id": 1})
        if not user:
            return None
        proj = await self.ctx.store.projects.find_one(
            {"owner": user["_id"], "name": project}, {"_id": 1}
        )
        if not proj:
            return None
        dep = await self.deployments.find_one({"project": proj["_id"], "name": deployment})
        if not dep:
            return None
        alias = await self.aliases.find_one({"deployment": dep["_id"], "name": ref})
        if alias:
            version_query: dict[str, Any] = {"_id": alias["version"]}
        else:
            version_query = {"deployment": dep["_id"], "name": ref}
        version = await self.versions.find_one(version_query, {"_id": 1})
        if not version:
            return None
        doc = await self.endpoints.find_one(
            {"version": version["_id"], "name": endpoint, "status": "running"}
        )
        if not doc or not (doc.get("state") or {}).get("port"):
            return None
        return doc, rest

    async def drain(self, endpoint_id: str, timeout: float = 30.0, grace: float = 0.5) -> None:
        """Wait until no request is in flight to the endpoint (after ``grace`` for requests
        resolved just before the switch)."""
        await asyncio.sleep(grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight[endpoint_id] > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)


class FrontHandler(RequestHandler):
    @property
    def front(self) -> Front:
        return self.settings["front"]  # type: ignore[no-any-return]

    def check_xsrf_cookie(self) -> None:  # an API for programs, not a browser form
        return

    async def _forward(self, path: str) -> None:
        for attempt in range(2):
            found = await self.front.resolve(path)
            if found is None:
                self._error(404, "No running endpoint at this path.")
                return
            doc, rest = found
            state = doc["state"]
            query = f"?{self.request.query}" if self.request.query else ""
            url = f"http://{state.get('host', '127.0.0.1')}:{state['port']}/{rest}{query}"
            headers = {
                k: v for k, v in self.request.headers.get_all() if k.lower() not in HOP_HEADERS
            }
            method = self.request.method or "GET"
            body = self.request.body if method in ("POST", "PUT", "PATCH", "DELETE") else None
            request = HTTPRequest(
                url,
                method=method,
                headers=headers,
                body=body,
                allow_nonstandard_methods=True,
                follow_redirects=False,
                request_timeout=300,
                decompress_response=False,
            )
            self.front.in_flight[doc["_id"]] += 1
            try:
                response = await self.front.client.fetch(request, raise_error=False)
            except (OSError, HTTPClientError) as exc:
                # refused, reset or timed out: the upstream went away; resolve again once
                if attempt == 0:
                    continue
                self._error(502, f"The endpoint's server does not answer: {exc}")
                return
            finally:
                self.front.in_flight[doc["_id"]] -= 1
            if response.code == 599:
                if attempt == 0:
                    continue
                self._error(502, f"The endpoint's server does not answer: {response.error}")
                return
            self.clear()
            self.clear_header("Content-Type")
            self.set_status(response.code, response.reason)
            for key, value in response.headers.get_all():
                if key.lower() not in HOP_HEADERS:
                    self.add_header(key, value)
            if response.body and method != "HEAD":
                self.write(response.body)
            self.finish()
            return

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish({"code": "endpoint_unavailable", "message": message})


async def _handle(self: FrontHandler, path: str) -> None:
    await self._forward(path)


for _method in METHODS:
    setattr(FrontHandler, _method.lower(), _handle)
