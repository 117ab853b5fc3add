"""The master's API described once, without I/O: requests, answers, errors and events.

Each operation is a generator that yields :class:`Call` objects and receives their decoded
answers (or has the mapped :class:`~jupyter_valohai.errors.ValohaiError` thrown into it), so the
sync and async clients run the very same logic through two thin drivers.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from .. import errors
from ..errors import ServiceUnavailable, ValohaiError

API = "api/v0/"

#: An operation: yields calls, gets their answers, returns its result.
Op = Generator["Call", Any, Any]


@dataclass
class Call:
    """One HTTP request to the master and how to read its answer."""

    method: str
    path: str  # relative to the master's URL, e.g. "api/v0/projects/"
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    timeout: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.request`` / ``AsyncClient.request``."""
        kw: dict[str, Any] = {}
        for name in ("params", "json", "data", "files"):
            value = getattr(self, name)
            if value is not None:
                kw[name] = value
        if self.timeout is not None:
            kw["timeout"] = self.timeout
        return kw


class Run:
    """Steps an operation: ``next_call`` sends it the last answer (or throws the last error)."""

    def __init__(self, op: Op) -> None:
        self.op = op
        self.answer: Any = None
        self.error: ValohaiError | None = None
        self.value: Any = None

    def next_call(self) -> Call | None:
        """The operation's next call, or None when it has returned (its result in ``value``)."""
        answer, error = self.answer, self.error
        self.answer, self.error = None, None
        try:
            return self.op.throw(error) if error else self.op.send(answer)
        except StopIteration as stop:
            self.value = stop.value
            return None


@dataclass(frozen=True)
class Event:
    """One server-sent event of an execution: ``kind`` is log, progress, metadata or end."""

    kind: str
    id: str | None
    data: dict[str, Any]


def path(*parts: str) -> str:
    """Return an API path with each part URL-quoted (``project:counter`` refs keep the colon)."""
    return API + "".join(quote(str(p), safe=":") + "/" for p in parts)


# --- answers and errors ---------------------------------------------------------------------


def _error_classes() -> dict[str, type[ValohaiError]]:
    found: dict[str, type[ValohaiError]] = {}
    todo: list[type[ValohaiError]] = [ValohaiError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


BY_STATUS: dict[int, type[ValohaiError]] = {
    400: errors.InvalidInput,
    401: errors.NotAuthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    503: errors.ServiceUnavailable,
}
DEFAULT_HINTS: dict[type[ValohaiError], str] = {
    errors.NotAuthenticated: "Check the token: `%valohai login URL --token T`.",
    errors.PermissionDenied: "Ask the master's operator for access.",
}


def error_from_answer(status: int, content: bytes, url: str) -> ValohaiError:
    """Map an error answer of the master (JSON ``{code, message, hint}``) to a ValohaiError."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        reason = httpx.codes.get_reason_phrase(status) or "Error"
        cls = BY_STATUS.get(status, ValohaiError)
        return cls(
            f"The master at {url} answered {status} {reason}.",
            hint="Is this the URL of a jupyter-valohai master?",
        )
    code = body.get("code")
    found = _error_classes().get(code) if isinstance(code, str) else None
    cls = found if found and found is not ValohaiError else BY_STATUS.get(status, ValohaiError)
    hint = body.get("hint") if isinstance(body.get("hint"), str) else None
    exc = cls(body["message"], hint=hint or DEFAULT_HINTS.get(cls))
    exc.status = status
    return exc


def transport_error(exc: httpx.HTTPError, url: str) -> ValohaiError:
    """Turn a failed connection into one line: the master does not answer."""
    hint = "Start it with `jupyter valohai up`, or check the URL (`%valohai login URL --token T`)."
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return ServiceUnavailable(f"The master at {url} did not answer in time.", hint=hint)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ServiceUnavailable(f"The master at {url} does not answer.", hint=hint)
    return ServiceUnavailable(f"The connection to the master at {url} failed: {exc}.", hint=hint)


def check(response: httpx.Response, url: str, content: bytes | None = None) -> None:
    """Raise the mapped error for a 4xx/5xx answer (``content``: its body, if streamed)."""
    if response.is_error:
        body = response.content if content is None else content
        raise error_from_answer(response.status_code, body, url)


def decode_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ValohaiError(
            f"The master answered {response.request.url} with something that is not JSON.",
            hint="Is this the URL of a jupyter-valohai master?",
        ) from None


def results(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return list(answer.get("results", []))


# --- server-sent events ---------------------------------------------------------------------


def to_event(name: str, data: str, event_id: str | None) -> Event | None:
    """Decode one SSE message; keepalives, empty and unknown shapes give None."""
    try:
        body = json.loads(data) if data.strip() else None
    except ValueError:
        return None
    if not isinstance(body, dict) or not body:
        return None
    kind = "log" if name in ("", "message") else name  # "message": SSE's name for unnamed events
    if kind in ("progress", "metadata") and "data" not in body:
        try:
            body["data"] = json.loads(body.get("message", ""))
        except (TypeError, ValueError):
            body["data"] = None
    return Event(kind, event_id or None, body)


# --- operations -----------------------------------------------------------------------------


def me() -> Op:
    return (yield Call("GET", path("users", "me")))


def projects() -> Op:
    return results((yield Call("GET", path("projects"), params={"limit": 0})))


def get_project(id_or_name: str) -> Op:
    try:
        return (yield Call("GET", path("projects", id_or_name)))
    except errors.NotFound:
        pass
    for project in results((yield Call("GET", path("projects"), params={"limit": 0}))):
        if project.get("name") == id_or_name:
            return project
    raise errors.NotFound(
        f"No project {id_or_name!r}.",
        hint="See `%valohai project`; create one with `%valohai project NAME`.",
    )


def create_project(name: str) -> Op:
    return (yield Call("POST", path("projects"), json={"name": name}))


def ensure_project(name: str) -> Op:
    for _ in range(2):
        for project in results((yield Call("GET", path("projects"), params={"limit": 0}))):
            if project.get("name") == name:
                return project
        try:
            return (yield from create_project(name))
        except errors.Conflict:
            continue  # created by someone else meanwhile: list again
    raise errors.Conflict(f"The project {name!r} could not be created.")


def environments() -> Op:
    return results((yield Call("GET", path("environments"))))


def import_package(project_id: str, tarball: bytes, yaml_path: str, description: str = "") -> Op:
    return (
        yield Call(
            "POST",
            path("projects", project_id, "import-package"),
            data={"yaml_path": yaml_path, "description": description},
            files={"data": ("code.tgz", tarball, "application/gzip")},
            timeout=300.0,
        )
    )


def create_execution(body: dict[str, Any]) -> Op:
    return (yield Call("POST", path("executions"), json=body))


def get_execution(ref: str) -> Op:
    return (yield Call("GET", path("executions", ref)))


def list_executions(project: str | None = None, status: str | None = None, limit: int = 20) -> Op:
    params: dict[str, Any] = {"limit": limit, "ordering": "-counter"}
    if project:
        params["project"] = (yield from get_project(project))["id"]
    if status:
        params["status"] = status
    return results((yield Call("GET", path("executions"), params=params)))


def stop_execution(ref: str) -> Op:
    return str((yield Call("POST", path("executions", ref, "stop")))["message"])


def events(ref: str, streams: list[str] | str | None = None, limit: int = 0) -> Op:
    params: dict[str, Any] = {"limit": limit}
    if streams:
        params["streams"] = streams if isinstance(streams, str) else ",".join(streams)
    return list((yield Call("GET", path("executions", ref, "events"), params=params))["events"])


def outputs(ref: str) -> Op:
    execution_id = ref
    if ":" in ref:
        execution_id = (yield from get_execution(ref))["id"]
    params = {"output_execution": execution_id, "limit": 0}
    return results((yield Call("GET", path("data"), params=params)))


def stream_call(ref: str, after: str | None) -> Call:
    resume = {"after": after} if after else None  # the master's ?after= is Last-Event-ID
    return Call("GET", path("executions", ref, "events", "stream"), params=resume)


def download_call(datum: dict[str, Any] | str) -> Call:
    datum_id = datum if isinstance(datum, str) else datum["id"]
    return Call("GET", path("data", datum_id, "download"))


# --- deployments ----------------------------------------------------------------------------


def _endpoint_files(endpoint: Any, outs: list[dict[str, Any]], output: str | None) -> dict:
    """Pick the output datum of each endpoint file: ``output`` for a one-file endpoint, else the
    output named like the file's path (or its last part)."""
    by_name = {str(o.get("name")): o for o in outs}
    files: dict[str, str] = {}
    for item in endpoint.files:
        wanted = [output] if output and len(endpoint.files) == 1 else []
        wanted += [item.path, item.path.rsplit("/", 1)[-1]]
        chosen = next((by_name[w] for w in wanted if w in by_name), None)
        if chosen is None:
            raise errors.InvalidInput(
                f"Endpoint {endpoint.name!r} needs file {item.name!r} ({item.path}) and the "
                "execution has no such output.",
                hint="Outputs: "
                + (", ".join(sorted(by_name)) or "none")
                + "; name one with --output.",
            )
        files[item.name] = str(chosen["id"])
    return files


def _commit_endpoints(ex: dict[str, Any]) -> Op:
    """(project id, commit identifier, the ``endpoint:`` objects of its valohai.yaml)."""
    from ..valohai_config import parse_config

    project = ex["project"]["id"] if isinstance(ex.get("project"), dict) else ex["project"]
    commit_id = ex["commit"]["identifier"] if isinstance(ex.get("commit"), dict) else ex["commit"]
    commit = yield Call(
        "GET", path("commits", commit_id), params={"project": project, "include": "config"}
    )
    text = commit.get("config") or commit.get("config_text") or ""
    return project, commit_id, list(parse_config(text).endpoints.values()) if text else []


def execution_endpoints(execution: str) -> Op:
    """The endpoint names the execution's valohai.yaml defines (what it could be deployed as)."""
    ex = yield from get_execution(execution)
    return [e.name for e in (yield from _commit_endpoints(ex))[2]]


def deploy(
    execution: str,
    endpoint: str | None = None,
    output: str | None = None,
    deployment: str | None = None,
    alias: str | None = None,
    target: str = "local",
    registry: str = "",
) -> Op:
    """Deploy an execution's output with an ``endpoint:`` of its commit's valohai.yaml: create the
    deployment if needed (named after the endpoint unless ``deployment``), then a version; return
    the version (its endpoints build and start on the master)."""
    ex = yield from get_execution(execution)
    project, commit_id, endpoints = yield from _commit_endpoints(ex)
    if not endpoints:
        raise errors.InvalidInput(
            "The execution's valohai.yaml defines no endpoint.",
            hint="Add an `- endpoint:` (image, wsgi or server-command, files) and run again.",
        )
    if endpoint is None and len(endpoints) > 1:
        raise errors.InvalidInput(
            "The valohai.yaml defines several endpoints: name one.",
            hint="Endpoints: " + ", ".join(e.name for e in endpoints),
        )
    chosen = next((e for e in endpoints if endpoint in (None, e.name)), None)
    if chosen is None:
        raise errors.InvalidInput(
            f"No endpoint {endpoint!r} in the execution's valohai.yaml.",
            hint="Endpoints: " + ", ".join(e.name for e in endpoints),
        )
    files = _endpoint_files(chosen, (yield from outputs(ex["id"])), output)
    name = deployment or chosen.name
    listed = results((yield Call("GET", path("deployments"), params={"project": project})))
    dep = next((d for d in listed if d.get("name") == name), None)
    if dep is None:
        body = {"project": project, "name": name, "target": target, "registry": registry}
        dep = yield Call("POST", path("deployments"), json=body)
    version: dict[str, Any] = {
        "deployment": dep["id"],
        "commit": commit_id,
        "endpoint_configurations": {chosen.name: {"enabled": True, "files": files}},
    }
    if alias:
        version["alias"] = alias
    return (yield Call("POST", path("deployment-versions"), json=version))


def get_deployment_version(version_id: str) -> Op:
    return (yield Call("GET", path("deployment-versions", version_id)))


def build_log(endpoint_id: str) -> Op:
    return (yield Call("GET", path("deployment-endpoints", endpoint_id, "build-log")))
