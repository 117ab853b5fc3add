"""Deploy an execution's output from the sidebar: the routes under ``<base_url>valohai/``.

- ``GET executions/{id}/deploy-options`` -> ``{execution, project, commit, endpoints: [{name,
  image, port, wsgi, server_command, files: [{name, path}]}], deployments, targets, problem}``:
  the ``endpoint:`` definitions of the execution's commit (``problem`` says why there are none);
- ``POST deployments {execution, endpoint, files: {file: datum id}, deployment, alias?, version?,
  target?, registry?}`` -> 201 the deployment version (the deployment is created if missing);
- ``GET deployment-versions/{id}`` -> the version and its endpoints (status, failure, URLs);
- ``GET deployment-endpoints/{id}/build-log/events``: ``text/event-stream`` of the build log
  (``log`` events, then ``end`` with ``{status}``), relayed like an execution's events;
- ``POST deployment-endpoints/{id}/try {payload, alias?}`` -> ``{url, status, content_type,
  body}``: the JSON ``payload`` POSTed to the endpoint's URL (as the master gives it, never one
  from the browser), its answer (JSON, or text cut at 64 kB).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from jupyter_server.auth.decorator import authorized
from tornado import web

from ..client import Event
from ..client.calls import error_from_answer, transport_error
from ..errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from .events import RelayHandler
from .handlers import ValohaiHandler

DEPLOY_FIELDS = {"execution", "endpoint", "files", "deployment", "alias", "version"}
DEPLOY_FIELDS |= {"target", "registry"}
#: The most of an endpoint's answer shown in the sidebar.
MAX_ANSWER = 64 * 1024
MAX_PAYLOAD = 1024 * 1024
TRY_TIMEOUT = 30.0
NO_ENDPOINTS_HINT = (
    "Add an `endpoint:` (image, wsgi or server-command, port, and `files:` naming the model) to a "
    "valohai.yaml beside the notebook, then run the notebook again: its code carries it."
)


class DeployOptionsHandler(ValohaiHandler):
    """What the execution's output can be deployed as: endpoints, deployments, targets."""

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        client = self.client()
        execution = await client.get_execution(ref)
        commit = (execution.get("commit") or {}).get("identifier")
        project = (execution.get("project") or {}).get("id")
        endpoints: list[dict[str, Any]] = []
        problem = None
        if commit and project:
            try:
                endpoints = await client.commit_endpoints(commit, project)
            except InvalidInput as exc:  # the commit's valohai.yaml does not parse
                problem = {"message": exc.message, "hint": exc.hint}
        if not endpoints and problem is None:
            problem = {
                "message": f"The code of execution #{execution.get('counter')} defines no "
                "endpoint to deploy.",
                "hint": NO_ENDPOINTS_HINT,
            }
        self.write_json(
            {
                "execution": execution["id"],
                "project": project,
                "commit": commit,
                "endpoints": endpoints,
                "deployments": await client.deployments(project) if project else [],
                "targets": await client.deployment_targets(),
                "problem": problem,
            }
        )


def _text(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"'{name}' is required.", hint="See GET deploy-options.")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be a string.")
    return value.strip()


class DeployHandler(ValohaiHandler):
    """Create a deployment version from an execution's output (queues its build)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - DEPLOY_FIELDS)
        if unknown:
            raise InvalidInput(
                f"Unknown field(s): {', '.join(unknown)}.",
                hint=f"Known fields: {', '.join(sorted(DEPLOY_FIELDS))}.",
            )
        files = body.get("files") or {}
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in files.items()
        ):
            raise InvalidInput(
                "'files' must map each file of the endpoint to a datum id.",
                hint='e.g. {"model": "<the output\'s id>"}',
            )
        execution = _text(body, "execution", True)
        endpoint = _text(body, "endpoint", True)
        assert execution and endpoint
        version = await self.client().deploy_output(
            execution,
            endpoint,
            files,
            deployment=_text(body, "deployment", True),
            alias=_text(body, "alias"),
            version=_text(body, "version"),
            target=_text(body, "target"),
            registry=_text(body, "registry"),
        )
        self.write_json(version, 201)


class DeploymentVersionHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.write_json(await self.client().deployment_version(ref))


class BuildLogHandler(RelayHandler):
    """``GET valohai/deployment-endpoints/{id}/build-log/events``: the build log as it grows."""

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        client = self.client()
        endpoint = await client.deployment_endpoint(ref)  # unknown: a JSON 404, not a stream
        conn = self.link.connection
        assert conn is not None  # a client exists, so the link is ready
        events = build_log_events(conn.url, conn.token, endpoint["id"], self.resume_after())
        await self.relay(events)


async def build_log_events(
    url: str, token: str, endpoint_id: str, after: str | None
) -> AsyncIterator[Event]:
    """The master's ``deployment-endpoints/{id}/build-log/stream/`` as ``log`` then ``end``."""
    headers = {"Authorization": f"Token {token}", "Accept": "text/event-stream"}
    if after:
        headers["Last-Event-ID"] = after
    path = f"/api/v0/deployment-endpoints/{endpoint_id}/build-log/stream/"
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(30, read=None)
    ) as http:
        try:
            async with aconnect_sse(http, "GET", path) as src:
                if src.response.is_error:
                    content = await src.response.aread()
                    raise error_from_answer(src.response.status_code, content, url)
                async for message in src.aiter_sse():
                    if message.event in ("log", "end"):
                        yield Event(message.event, message.id or None, json.loads(message.data))
        except httpx.HTTPError as exc:
            raise transport_error(exc, url) from None


class TryEndpointHandler(ValohaiHandler):
    """POST a JSON payload to a running endpoint (its URL as the master gives it)."""

    @web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        if len(self.request.body) > MAX_PAYLOAD:
            raise InvalidInput("The payload is over 1 MB.", hint="Try a smaller example.")
        body = self.json_body()
        if "payload" not in body:
            raise InvalidInput("Which JSON to send?", hint='Send {"payload": {...}}.')
        endpoint = await self.client().deployment_endpoint(ref)
        if endpoint.get("status") != "running":
            raise Conflict(
                f"Endpoint {endpoint.get('name')} is {endpoint.get('status')}: it answers once "
                "it runs.",
                hint="Wait for its build to end.",
            )
        alias = _text(body, "alias")
        url = (endpoint.get("alias_urls") or {}).get(alias) if alias else endpoint["endpoint_url"]
        if not url:
            raise NotFound(f"The endpoint has no URL for {alias or 'its version'}.")
        self.write_json(await post_json(url, body["payload"]))


async def post_json(url: str, payload: Any) -> dict[str, Any]:
    """POST ``payload`` as JSON to ``url``; the answer's status, type and body (JSON or text)."""
    try:
        async with httpx.AsyncClient(timeout=TRY_TIMEOUT, follow_redirects=False) as http:
            response = await http.post(url, json=payload)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"The endpoint at {url} did not answer: {type(exc).__name__}.",
            hint="See the endpoint's log (GET /api/v0/deployment-endpoints/<id>/logs/).",
        ) from None
    content_type = response.headers.get("content-type", "")
    answer: Any = response.text[:MAX_ANSWER]
    if "json" in content_type:
        with contextlib.suppress(ValueError):
            answer = response.json()
    return {
        "url": url,
        "status": response.status_code,
        "content_type": content_type,
        "body": answer,
    }


__all__ = [
    "BuildLogHandler",
    "DeployHandler",
    "DeployOptionsHandler",
    "DeploymentVersionHandler",
    "TryEndpointHandler",
]
