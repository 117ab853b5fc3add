"""The extension's routes under ``<base_url>valohai/``: the master, behind Jupyter's auth.

Every verb is ``@web.authenticated`` + ``@authorized`` (resource ``valohai``), so Jupyter's login,
token and XSRF rules apply. Errors are JSON ``{"code", "message", "hint"}`` with the master's
status code (bad input is 4xx, never 500). The master's token stays on the server.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import fields
from http.client import responses
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..client import AsyncClient
from ..errors import InvalidInput, NotConfigured, NotFound, PermissionDenied, ValohaiError
from ..notebook import notebook_inputs, notebook_parameters, read_notebook
from ..submit import RunRequest, asubmit_prepared, prepare_run
from .link import MasterLink

RUN_FIELDS = {f.name for f in fields(RunRequest)}
HTTP_CODES = {401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "not_allowed"}


class ValohaiHandler(APIHandler):
    """Base of the extension's handlers: the link to the master and JSON errors."""

    auth_resource = "valohai"

    @property
    def link(self) -> MasterLink:
        return self.settings["valohai_link"]  # type: ignore[no-any-return]

    def client(self) -> AsyncClient:
        return self.link.client()

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object body, or InvalidInput."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError as exc:
            raise InvalidInput(
                f"The request body is not JSON: {exc}.", hint="Send a JSON object."
            ) from None
        if not isinstance(body, dict):
            raise InvalidInput("The request body must be a JSON object.")
        return body

    def root_path(self, api_path: str, what: str = "path") -> str:
        """The real path of ``api_path`` (relative to Jupyter's root dir), never outside it."""
        root = os.path.realpath(self.settings["server_root_dir"])
        if not isinstance(api_path, str):
            raise InvalidInput(f"{what} must be a string.")
        full = os.path.realpath(os.path.join(root, api_path.lstrip("/")))
        if os.path.commonpath([root, full]) != root:
            raise PermissionDenied(
                f"The {what} {api_path!r} is outside the Jupyter root dir.",
                hint="Give a path relative to the folder JupyterLab shows.",
            )
        return full

    def api_path(self, full: str) -> str:
        """The path of ``full`` (a real path inside the root dir) relative to the root dir."""
        root = os.path.realpath(self.settings["server_root_dir"])
        return os.path.relpath(full, root).replace(os.sep, "/")

    # -- errors ------------------------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ValohaiError):
            # No master configured is the server's state, not a bad request of the browser.
            self.set_status(503 if isinstance(exc, NotConfigured) else exc.status)
            body = {"code": exc.code, "message": exc.message, "hint": exc.hint}
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message % exc.args if exc.log_message else None
            body = {
                "code": HTTP_CODES.get(status_code, "error"),
                "message": message or exc.reason or responses.get(status_code, "Error"),
                "hint": None,
            }
        else:
            body = {
                "code": "error",
                "message": "Unexpected error in the jupyter-valohai server extension.",
                "hint": "See the Jupyter server's log.",
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ValohaiError):  # expected: one line, no traceback
            self.log.info(
                "valohai: %s %s -> %d %s",
                self.request.method,
                self.request.path,
                value.status,
                value.message,
            )
        else:
            super().log_exception(typ, value, tb)


class ConnectionHandler(ValohaiHandler):
    """``GET valohai/connection``: where the master is, whether it is ready, and who we are
    there (``user: {username}`` from the master's ``users/me``; null if it does not say)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        body = self.link.describe()
        if self.link.state == "ready":
            try:
                me = await self.client().me()
            except ValohaiError as exc:  # the panel learns of it from the calls that need it
                self.log.info("valohai: who am I on the master? %s", exc.message)
                me = None
            username = me.get("username") if isinstance(me, dict) else None
            body["user"] = {"username": username} if username else None
        self.write_json(body)


class ProjectsHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"results": await self.client().projects()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        name = self.json_body().get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("A project needs a name.", hint='Send {"name": "my-project"}.')
        project = await self.client().create_project(name.strip())
        self.set_header("Location", url_path_join(self.base_url, "valohai/projects", project["id"]))
        self.write_json(project, 201)


class EnvironmentsHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"results": await self.client().environments()})


class EnvironmentWorkersHandler(ValohaiHandler):
    """``GET valohai/environments/{id}/workers``: the group's workers with state and current
    execution (``current_execution``: ``{id, counter, title, status, project}`` or null)."""

    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.write_json({"results": await self.client().environment_workers(ref)})


class ExecutionsHandler(ValohaiHandler):
    """List executions; create one from a notebook, script, step or code (RunRequest fields)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            limit = int(self.get_argument("limit", "20"))
        except ValueError:
            raise InvalidInput("limit must be an integer.") from None
        found = await self.client().list_executions(
            project=self.get_argument("project", None) or None,
            status=self.get_argument("status", None) or None,
            limit=limit,
        )
        self.write_json({"results": found})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        req = self.run_request(body)
        client = self.client()
        config = self.link.config
        if not body.get("project") and config.default_project:
            await client.ensure_project(config.default_project)  # created on first use
        prepared = await asyncio.to_thread(
            prepare_run,
            req,
            default_image=config.image or None,
            max_bytes=config.max_snapshot_bytes,
        )
        if req.path:  # which notebook (or file) this was, for "re-run with changes"
            prepared.body["runtime_config"] = {
                **(prepared.body.get("runtime_config") or {}),
                "jupyter_path": self.api_path(req.path),
            }
        execution = await asubmit_prepared(client, prepared, req.project)
        location = url_path_join(self.base_url, "valohai/executions", str(execution["id"]))
        self.set_header("Location", location)
        self.write_json(execution, 201)

    def run_request(self, body: dict[str, Any]) -> RunRequest:
        """A RunRequest from the body: paths inside the root dir, the configured defaults."""
        unknown = sorted(set(body) - RUN_FIELDS)
        if unknown:
            raise InvalidInput(
                f"Unknown field(s): {', '.join(unknown)}.",
                hint=f"Known fields: {', '.join(sorted(RUN_FIELDS))}.",
            )
        for name in ("parameters", "inputs"):
            if not isinstance(body.get(name) or {}, dict):
                raise InvalidInput(f"{name} must be a JSON object.")
        for name in RUN_FIELDS - {"parameters", "inputs"}:
            if body.get(name) is not None and not isinstance(body[name], str):
                raise InvalidInput(f"{name} must be a string.")
        config = self.link.config
        cwd = self.root_path(body.get("cwd") or "", "cwd")
        path = self.root_path(body["path"]) if body.get("path") else None
        return RunRequest(
            path=path,
            code=body.get("code"),
            parameters=body.get("parameters") or {},
            inputs=body.get("inputs") or {},
            environment=body.get("environment") or config.environment or None,
            image=body.get("image") or None,
            title=body.get("title") or None,
            project=body.get("project") or config.default_project or None,
            step=body.get("step") or None,
            cwd=cwd,
        )


class ExecutionHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.write_json(await self.client().get_execution(ref))


class StopHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def post(self, ref: str) -> None:
        self.write_json({"message": await self.client().stop_execution(ref)})


class OutputsHandler(ValohaiHandler):
    @web.authenticated
    @authorized
    async def get(self, ref: str) -> None:
        self.write_json({"results": await self.client().outputs(ref)})


class NotebookParametersHandler(ValohaiHandler):
    """``GET valohai/notebook-parameters?path=``: the parameters (and inputs) of a notebook."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        api_path = self.get_argument("path", "")
        if not api_path:
            raise InvalidInput("Which notebook?", hint="Pass ?path=<notebook path>.")
        path = self.root_path(api_path)
        self.write_json(await asyncio.to_thread(_describe_notebook, path, api_path))


def _describe_notebook(path: str, api_path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise NotFound(f"No notebook {api_path}.", hint="Save the notebook first.")
    nb = read_notebook(path)
    params = notebook_parameters(nb)
    return {
        "path": api_path,
        "parameters": [
            {"name": p.name, "type": p.type, "default": p.default} for p in params.values()
        ],
        "inputs": notebook_inputs(nb),
    }
