"""Every route of the master, in one list; the OpenAPI description is generated from it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tornado.web import RequestHandler

from .. import __doc__ as master_doc
from . import (
    agent,
    bootstrap,
    data,
    datums,
    deployments,
    environments,
    executions,
    feed,
    projects,
    registries,
    users,
    workers,
)
from .base import BaseHandler, NotFoundHandler
from .router import nest


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI style: /api/v0/projects/{id}/ ; {name:path} may hold slashes
    handler: type[RequestHandler]
    ops: dict[str, str] = field(default_factory=dict)  # method -> summary

    def pattern(self, prefix: str) -> str:
        def group(match: re.Match[str]) -> str:
            return "(.+)" if match.group(0).endswith(":path}") else "([^/]+)"

        body = re.sub(r"\{[^}]+\}", group, self.path.rstrip("/"))
        return f"{prefix}{body}/?$"


def R(path: str, handler: type[RequestHandler], **ops: str) -> Route:
    return Route(path, handler, ops)


V0 = "/api/v0"
AG = "/api/agent"

ROUTES: list[Route] = [
    R(f"{V0}/get-token/", users.GetTokenHandler, post="Exchange username/password for a token"),
    R(f"{V0}/users/me/", users.MeHandler, get="The current user"),
    R(
        f"{V0}/users/",
        users.UsersHandler,
        get="List users (administrators)",
        post="Create a user {username, password, email, is_admin} (administrators)",
    ),
    R(f"{V0}/projects/", projects.ProjectsHandler, get="List projects", post="Create a project"),
    R(
        f"{V0}/projects/ownership_options/",
        projects.OwnershipOptionsHandler,
        get="Who may own new projects",
    ),
    R(
        f"{V0}/projects/{{id}}/",
        projects.ProjectHandler,
        get="Describe a project",
        patch="Link a Git repository ({repository: {url, ref, username, password, "
        "ssh_private_key}} or null to unlink)",
    ),
    R(
        f"{V0}/projects/{{id}}/fetch/",
        projects.FetchHandler,
        post="Fetch the linked Git repository; answer {commits: [new], errors}",
    ),
    R(
        f"{V0}/projects/{{id}}/import-package/",
        projects.ImportPackageHandler,
        post="Upload a code tarball as an ad-hoc commit (multipart field `data`)",
    ),
    R(f"{V0}/projects/{{id}}/commits/", projects.CommitsHandler, get="List a project's commits"),
    R(
        f"{V0}/projects/{{id}}/members/",
        users.MembersHandler,
        get="List the project's members and roles",
        post="Add a member or change a role {user (name or id), role: viewer|editor|owner} "
        "(owners)",
    ),
    R(
        f"{V0}/projects/{{id}}/environment-variables/",
        projects.VariablesHandler,
        get="List the project's environment variables (secret values are never answered)",
        post="Set {name, value, secret}; secret ones are encrypted at rest, injected only into "
        "running executions and masked in their logs (owners)",
    ),
    R(
        f"{V0}/projects/{{id}}/environment-variables/{{name}}/",
        projects.VariableHandler,
        delete="Delete an environment variable (owners)",
    ),
    R(
        f"{V0}/projects/{{id}}/members/{{user}}/",
        users.MemberHandler,
        delete="Remove a member (owners)",
    ),
    R(
        f"{V0}/projects/{{id}}/executions/stream/",
        feed.ProjectExecutionStreamHandler,
        get="The project's executions pushed as server-sent events (`event: execution`) on each "
        "change of status or cells: the current page first (?limit=), then the changes; "
        "Last-Event-ID / ?after= resume",
    ),
    R(f"{V0}/commits/", projects.CommitsHandler, get="List commits (?project=&adhoc=)"),
    R(f"{V0}/commits/{{identifier}}/", projects.CommitHandler, get="Describe a commit (?project=)"),
    R(
        f"{V0}/environments/",
        environments.EnvironmentsHandler,
        get="List environments (worker groups)",
        post="Create a worker group (admins; answers its worker token once)",
    ),
    R(
        f"{V0}/environments/{{ref}}/",
        environments.EnvironmentHandler,
        get="Describe an environment by id or slug, with its scaling state",
        patch="Change a worker group's settings (admins)",
    ),
    R(
        f"{V0}/environments/{{ref}}/decisions/",
        environments.DecisionsHandler,
        get="The scaler's last decisions for a worker group, newest first",
    ),
    R(f"{V0}/workers/", workers.WorkersHandler, get="List workers (?environment=, ?gone=true)"),
    R(f"{V0}/workers/{{id}}/", workers.WorkerHandler, get="Describe a worker"),
    R(
        f"{V0}/workers/{{id}}/drain/",
        workers.DrainHandler,
        post="Drain a worker (admins): it finishes its execution and claims no more; "
        '{"drain": false} lets it take work again',
    ),
    R(
        f"{V0}/executions/",
        executions.ExecutionsHandler,
        get="List executions",
        post="Create (queue) an execution",
    ),
    R(
        f"{V0}/executions/{{ref}}/",
        executions.ExecutionHandler,
        get="Describe an execution by id or <project id>:<counter|latest>",
    ),
    R(f"{V0}/executions/{{ref}}/stop/", executions.StopHandler, post="Stop an execution"),
    R(
        f"{V0}/executions/{{ref}}/events/",
        executions.EventsHandler,
        get="Last events (?limit=N, 0 = all; ?streams=stdout,stderr,status,progress,metadata)",
    ),
    R(
        f"{V0}/executions/{{ref}}/events/stream/",
        executions.EventStreamHandler,
        get="Events of every stream pushed as server-sent events until the execution ends",
    ),
    R(
        f"{V0}/executions/{{ref}}/metadata/",
        executions.MetadataHandler,
        get="Metadata entries of an execution",
    ),
    R(f"{V0}/data/", data.DataHandler, get="List datums (?output_execution=)"),
    R(f"{V0}/data/{{id}}/", data.DatumHandler, get="Describe a datum"),
    R(f"{V0}/data/{{id}}/download/", data.DatumDownloadHandler, get="Download a datum"),
    R(
        f"{V0}/data/{{id}}/lineage/",
        datums.DatumLineageHandler,
        get="The execution that made the datum, the executions that consumed it",
    ),
    R(
        f"{V0}/datum-aliases/",
        datums.DatumAliasesHandler,
        get="List datum aliases (?project=)",
        post="Point alias {project, name} at a datum (creates or moves it)",
    ),
    R(f"{V0}/datum-aliases/{{id}}/", datums.DatumAliasHandler, get="Describe a datum alias"),
    R(f"{V0}/datasets/", datums.DatasetsHandler, get="List datasets and versions (?project=)"),
    R(f"{V0}/datasets/{{id}}/", datums.DatasetHandler, get="Describe a dataset and its versions"),
    R(
        f"{V0}/registry-credentials/",
        registries.RegistryCredentialsHandler,
        get="List Docker registry credentials (never their passwords)",
        post="Store {registry: host[:port], username, password} for image pulls",
    ),
    R(
        f"{V0}/registry-credentials/{{id}}/",
        registries.RegistryCredentialHandler,
        delete="Delete a Docker registry credential",
    ),
    R(
        f"{V0}/deployments/",
        deployments.DeploymentsHandler,
        get="List deployments (?project=)",
        post="Create a deployment {project, name, target, registry}",
    ),
    R(f"{V0}/deployments/{{id}}/", deployments.DeploymentHandler, get="Describe a deployment"),
    R(
        f"{V0}/deployments/{{id}}/suggest_version_name/",
        deployments.SuggestVersionNameHandler,
        get="A free version name ({name})",
    ),
    R(
        f"{V0}/deployments/{{id}}/aliases/",
        deployments.AliasesHandler,
        get="List the deployment's version aliases",
        post="Point alias {name, version, retire_previous} at a running version",
    ),
    R(
        f"{V0}/deployment-versions/",
        deployments.VersionsHandler,
        get="List deployment versions (?deployment=&project=)",
        post="Create a version {deployment, commit, name, endpoint_configurations, alias}: "
        "queues the builds of its endpoints",
    ),
    R(
        f"{V0}/deployment-versions/{{id}}/",
        deployments.VersionHandler,
        get="Describe a deployment version and its endpoints",
    ),
    R(
        f"{V0}/deployment-versions/{{id}}/stop/",
        deployments.VersionStopHandler,
        post="Stop a version's endpoints (after the requests in flight)",
    ),
    R(
        f"{V0}/deployment-endpoints/",
        deployments.EndpointsHandler,
        get="List deployment endpoints (?version=&project=)",
    ),
    R(
        f"{V0}/deployment-endpoints/{{id}}/",
        deployments.EndpointHandler,
        get="Describe an endpoint: status, URLs, failure, health",
    ),
    R(
        f"{V0}/deployment-endpoints/{{id}}/build-log/",
        deployments.BuildLogHandler,
        get="The endpoint's build log and failure reason",
    ),
    R(
        f"{V0}/deployment-endpoints/{{id}}/build-log/stream/",
        deployments.BuildLogStreamHandler,
        get="The build log pushed as server-sent events until the build ends",
    ),
    R(
        f"{V0}/deployment-endpoints/{{id}}/logs/",
        deployments.EndpointLogsHandler,
        get="The running endpoint's own log lines (?tail=)",
    ),
    R(f"{V0}/deployment-targets/", deployments.TargetsHandler, get="List deployment targets"),
    R(f"{AG}/claim", agent.ClaimHandler, post="Claim the next execution (long poll)"),
    R(
        f"{AG}/worker",
        workers.CheckInHandler,
        post="Check in an idle worker; answers {drain, upgrade}",
    ),
    R(
        f"{AG}/bootstrap.sh",
        bootstrap.BootstrapHandler,
        get="The bootstrap script of a worker group (?group=<slug>)",
    ),
    R(
        f"{AG}/releases/{{version}}/{{name}}",
        bootstrap.ReleaseFileHandler,
        get="A file of the agent release (its wheel)",
    ),
    R(f"{AG}/executions/{{id}}/heartbeat", agent.HeartbeatHandler, post="Renew the lease"),
    R(f"{AG}/executions/{{id}}/events", agent.AgentEventsHandler, post="Send log events"),
    R(f"{AG}/executions/{{id}}/code", agent.CodeHandler, get="Download the code tarball"),
    R(
        f"{AG}/executions/{{id}}/outputs/prepare",
        agent.PrepareOutputsHandler,
        post="Get upload URLs for outputs",
    ),
    R(f"{AG}/executions/{{id}}/outputs", agent.OutputsHandler, post="Register outputs"),
    R(f"{AG}/executions/{{id}}/status", agent.AgentStatusHandler, post="Report the final status"),
    R(f"{AG}/data/{{id}}/download", agent.AgentDataHandler, get="Download a datum (inputs)"),
    R(
        f"{AG}/uploads/{{id}}/{{attempt}}/{{name:path}}",
        agent.UploadHandler,
        put="Upload one output file (raw bytes)",
    ),
]


#: The request body every writing operation takes: a JSON object (fields in each summary).
BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def openapi(routes: list[Route] = ROUTES) -> dict[str, Any]:
    """Return an OpenAPI 3 description of ``routes``."""
    paths: dict[str, Any] = {}
    for route in routes:
        params = [
            {
                "name": name.split(":")[0],
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            }
            for name in re.findall(r"\{([^}]+)\}", route.path)
        ]
        path = re.sub(r"\{([^}:]+):path\}", r"{\1}", route.path)
        security: list[dict[str, list[str]]] = (
            [{"agentToken": []}] if route.path.startswith(AG) else [{"token": []}]
        )
        if route.handler is users.GetTokenHandler:
            security = []
        paths[path] = {
            method: {
                "summary": summary,
                "parameters": params,
                "security": security,
                "responses": {
                    "2XX": {"description": "OK"},
                    "3XX": {"description": "A redirect (downloads from a store that signs URLs)"},
                    "4XX": {"description": "JSON error {code, message, hint}"},
                },
                **(BODY if method in ("post", "put", "patch") else {}),
            }
            for method, summary in route.ops.items()
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "jupyter-valohai master",
            "version": "0",
            "description": (master_doc or "").strip(),
        },
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Token <API token>",
                },
                "agentToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Token <worker-group token>",
                },
            }
        },
        "paths": paths,
    }


class OpenAPIHandler(BaseHandler):
    auth = None

    async def get(self) -> None:
        self.write_json(openapi())


ROUTES.append(R(f"{V0}/openapi.json", OpenAPIHandler, get="This description"))


def build_routes(base_url: str = "/") -> list[Any]:
    """Return Tornado's (pattern, handler) list, under ``base_url``."""
    prefix = "/" + base_url.strip("/") if base_url.strip("/") else ""
    # nested by their first path segments (master/api/router.py): the same matching, fewer tries
    table: list[Any] = nest([(r.path, r.pattern(prefix), r.handler) for r in ROUTES], prefix)
    table.append((r".*", NotFoundHandler))
    return table
