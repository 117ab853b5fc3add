"""Deployment operations of the master's API (``/api/v0/deployments/`` and friends), driven by
the sync and async clients like :mod:`.calls`: an execution's output becomes an endpoint."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..valohai_config import parse_config
from .calls import Call, Op, get_execution, path, results


def endpoint_definitions(config_text: str | None, source: str = "valohai.yaml") -> list[dict]:
    """The ``endpoint:`` definitions of a valohai.yaml text, in the API's shape."""
    if not config_text:
        return []
    config = parse_config(config_text, source=source)
    out = []
    for name, endpoint in sorted(config.endpoints.items()):
        out.append(
            {
                "name": name,
                "description": endpoint.description or "",
                "image": endpoint.image,
                "port": int(endpoint.port) if endpoint.port else None,
                "wsgi": endpoint.wsgi,
                "server_command": endpoint.server_command,
                "files": [{"name": f.name, "path": f.path} for f in endpoint.files],
            }
        )
    return out


def commit_endpoints(identifier: str, project: str) -> Op:
    """The endpoint definitions of a commit's valohai.yaml."""
    commit = yield Call(
        "GET", path("commits", identifier), params={"project": project, "include": "config"}
    )
    text = commit.get("config_text") or commit.get("config")
    return endpoint_definitions(text, commit.get("yaml_path") or "valohai.yaml")


def deployments(project: str) -> Op:
    return results((yield Call("GET", path("deployments"), params={"project": project})))


def deployment_targets() -> Op:
    return results((yield Call("GET", path("deployment-targets"))))


def ensure_deployment(project: str, name: str, target: str | None, registry: str | None) -> Op:
    """The project's deployment called ``name``, created (with target and registry) if missing."""
    for _ in range(2):
        for found in (yield from deployments(project)):
            if found.get("name") == name:
                return found
        body = {"project": project, "name": name, "target": target or "local"}
        if registry:
            body["registry"] = registry
        try:
            return (yield Call("POST", path("deployments"), json=body))
        except errors.Conflict:
            continue  # created by someone else meanwhile: list again
    raise errors.Conflict(f"The deployment {name!r} could not be created.")


def deploy_output(
    execution_ref: str,
    endpoint: str,
    files: dict[str, str],
    deployment: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    target: str | None = None,
    registry: str | None = None,
) -> Op:
    """Deploy the endpoint ``endpoint`` of the execution's commit with ``files`` (file name ->
    datum id): the deployment ``deployment`` (created if missing), a new version (builds queued).
    Answer the version."""
    execution = yield from get_execution(execution_ref)
    commit = (execution.get("commit") or {}).get("identifier")
    project = (execution.get("project") or {}).get("id")
    if not commit or not project:
        raise errors.InvalidInput(
            f"Execution {execution_ref} has no commit to deploy.",
            hint="Deploy the outputs of an execution that ran on this master.",
        )
    found = yield from ensure_deployment(project, deployment, target, registry)
    body: dict[str, Any] = {
        "deployment": found["id"],
        "commit": commit,
        "endpoint_configurations": {endpoint: {"files": files}},
    }
    if alias:
        body["alias"] = alias
    if version:
        body["name"] = version
    return (yield Call("POST", path("deployment-versions"), json=body))


def deployment_endpoint(endpoint_id: str) -> Op:
    return (yield Call("GET", path("deployment-endpoints", endpoint_id)))


def build_log_call(endpoint_id: str, after: str | None) -> Call:
    """The build log pushed as server-sent events (``log`` events, then ``end``)."""
    resume = {"after": after} if after else None
    return Call("GET", path("deployment-endpoints", endpoint_id, "build-log", "stream"), resume)
