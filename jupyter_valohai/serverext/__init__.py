"""The Jupyter server extension: the master behind Jupyter's auth, under ``<base_url>valohai/``.

Enabled by ``jupyter_server_config.d/jupyter_valohai.json`` when the package is installed;
configured by ``c.Valohai`` (:mod:`.config`). With no master configured it runs the embedded
default beside Jupyter and stops it with Jupyter (:mod:`.link`).

Routes (JSON unless said; errors are ``{"code", "message", "hint"}`` with a 4xx/5xx status;
503 with code ``starting`` while the embedded default starts):

- ``GET connection``: ``{state: starting|ready|failed|stopped, url, source, embedded,
  default_project, environment, image, user: {username} | null, error?}`` (never the token);
- ``GET projects`` -> ``{results: [project]}``; ``POST projects {name}`` -> 201 project;
- ``GET environments`` -> ``{results: [environment]}``;
- ``GET environments/{id}/workers`` -> ``{results: [worker]}``: state, current execution;
- ``GET executions?project=&status=&limit=`` -> ``{results: [execution]}`` (newest first);
- ``POST executions`` with RunRequest fields (``path`` and ``cwd`` relative to Jupyter's root
  dir, ``code``, ``parameters``, ``inputs``, ``environment``, ``image``, ``title``, ``project``,
  ``step``) -> 201 execution, ``Location`` header; the c.Valohai defaults fill what is missing;
- ``GET executions/{id}`` -> execution (with ``cells`` and ``current_cell``);
- ``POST executions/{id}/stop`` -> ``{message}``;
- ``GET executions/{id}/events`` (``?after=`` or ``Last-Event-ID``): ``text/event-stream`` of
  ``log``, ``progress``, ``metadata`` events, then ``end`` (``{status}``), or ``error``;
- ``GET executions/{id}/outputs`` -> ``{results: [datum]}``;
- ``POST executions/{id}/outputs/{datum_id}/fetch`` -> ``{path}``: the output saved under the
  root dir at ``valohai-outputs/<project>/<counter>/<name>`` (:mod:`.outputs`);
- ``GET projects/{id}/executions/events`` (``?limit=``, ``Last-Event-ID``): ``text/event-stream``
  of ``execution`` events (the execution's JSON): the current page, then every change;
- ``GET notebook-parameters?path=`` -> ``{path, parameters: [{name, type, default}], inputs}``;
- deploying an output: ``GET executions/{id}/deploy-options``, ``POST deployments``,
  ``GET deployment-versions/{id}``, ``GET deployment-endpoints/{id}/build-log/events``,
  ``POST deployment-endpoints/{id}/try`` (:mod:`.deploy`).
"""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp

from .config import Valohai
from .deploy import (
    BuildLogHandler,
    DeployHandler,
    DeploymentVersionHandler,
    DeployOptionsHandler,
    TryEndpointHandler,
)
from .events import EventsHandler, ProjectEventsHandler
from .handlers import (
    ConnectionHandler,
    EnvironmentsHandler,
    EnvironmentWorkersHandler,
    ExecutionHandler,
    ExecutionsHandler,
    NotebookParametersHandler,
    OutputsHandler,
    ProjectsHandler,
    StopHandler,
)
from .link import MasterLink
from .outputs import FetchOutputHandler

_REF = r"(?P<ref>[^/]+)"

#: The routes, relative to the server's base URL.
ROUTES = [
    (r"valohai/connection", ConnectionHandler),
    (r"valohai/projects", ProjectsHandler),
    (r"valohai/environments", EnvironmentsHandler),
    (rf"valohai/environments/{_REF}/workers", EnvironmentWorkersHandler),
    (r"valohai/executions", ExecutionsHandler),
    (rf"valohai/executions/{_REF}", ExecutionHandler),
    (rf"valohai/executions/{_REF}/stop", StopHandler),
    (rf"valohai/executions/{_REF}/events", EventsHandler),
    (rf"valohai/executions/{_REF}/outputs", OutputsHandler),
    (rf"valohai/executions/{_REF}/outputs/(?P<datum_id>[^/]+)/fetch", FetchOutputHandler),
    (rf"valohai/projects/{_REF}/executions/events", ProjectEventsHandler),
    (r"valohai/notebook-parameters", NotebookParametersHandler),
    (rf"valohai/executions/{_REF}/deploy-options", DeployOptionsHandler),
    (r"valohai/deployments", DeployHandler),
    (rf"valohai/deployment-versions/{_REF}", DeploymentVersionHandler),
    (rf"valohai/deployment-endpoints/{_REF}/build-log/events", BuildLogHandler),
    (rf"valohai/deployment-endpoints/{_REF}/try", TryEndpointHandler),
]


#: Set for the kernels this server starts (they inherit its environment).
KERNEL_ENV = ("VH_JUPYTER_ROOT_DIR", "VH_JUPYTER_BASE_URL")


class ValohaiExtension(ExtensionApp):
    """jupyter-valohai's server extension: routes, the master link, the embedded default."""

    name = "valohai"  # config file: jupyter_valohai_config.py
    classes = [Valohai]  # type: ignore[assignment]
    load_other_extensions = True

    link: MasterLink | None = None

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        config = Valohai(parent=self)
        name = f"valohai-connection-{os.getpid()}-{self.serverapp.port}.json"
        runtime_file = os.path.join(self.serverapp.runtime_dir, name)
        os.makedirs(self.serverapp.runtime_dir, exist_ok=True)
        self.link = MasterLink(config, runtime_file)
        self.link.start()
        self.settings["valohai_link"] = self.link
        # Kernels inherit the server's environment: the ExecutionView links executed notebooks
        # into Lab with these (the root dir and base URL of the server that started them).
        self._saved_env = {name: os.environ.get(name) for name in KERNEL_ENV}
        os.environ["VH_JUPYTER_ROOT_DIR"] = os.path.abspath(self.serverapp.root_dir)
        os.environ["VH_JUPYTER_BASE_URL"] = self.serverapp.base_url

    def initialize_handlers(self) -> None:
        self.handlers.extend(ROUTES)

    async def stop_extension(self) -> None:
        """Stop the embedded default (if we started it); forget the connection file."""
        if self.link is not None:
            await self.link.stop()
        for name, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


__all__ = ["ROUTES", "Valohai", "ValohaiExtension"]
