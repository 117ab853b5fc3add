"""Pages about work: projects, a project's executions, one execution, several compared."""

from __future__ import annotations

import json
from typing import Any

from tornado.escape import json_encode, xhtml_escape

from jupyter_valohai.errors import InvalidInput

from ..services.members import EDITOR, VIEWER
from ..store import Doc
from .base import WebHandler
from .browse import FILTERS, PAGE_SIZE, Browser
from .notebook import NOTEBOOK_CSP
from .notebook import page as notebook_page


def embed(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block (``</`` cannot close it)."""
    return json_encode(data).replace("<", "\\u003c").replace(">", "\\u003e")


class PageHandler(WebHandler):
    @property
    def browser(self) -> Browser:
        assert self.user is not None
        public = self.ctx.config.public_url.rstrip("/")
        base = public or f"{self.request.protocol}://{self.request.host}" + self.root.rstrip("/")
        return Browser(self.ctx, self.services, base, self.user)

    async def project(self, project_id: str, role: str = VIEWER) -> Doc:
        """The project, if the user holds ``role`` in it (else 404, or 403 for a lower role)."""
        assert self.user is not None
        return await self.services.projects.authorize(self.user, project_id, role)

    async def execution(self, project_id: str, counter: str, role: str = VIEWER) -> Doc:
        """Execution ``counter`` of a project the user holds ``role`` in."""
        project = await self.project(project_id, role)
        return await self.services.executions.get(f"{project['_id']}:{counter}")


class ProjectsHandler(PageHandler):
    page = "projects"

    async def get(self) -> None:
        assert self.user is not None
        docs, _ = await self.services.projects.list_projects(self.user, 500, 0)
        projects = []
        for doc in docs:
            executions = self.ctx.store.executions
            projects.append(
                {
                    "id": doc["_id"],
                    "name": doc["name"],
                    "description": doc.get("description", ""),
                    "executions": await executions.count_documents({"project": doc["_id"]}),
                }
            )
        self.render("projects.html", projects=projects)


class ProjectHandler(PageHandler):
    page = "executions"

    async def get(self, project_id: str) -> None:
        project = await self.project(project_id)
        filters = {k: self.get_query_argument(k, "") for k in FILTERS}
        try:
            offset = max(int(self.get_query_argument("offset", "0") or 0), 0)
        except ValueError:
            raise InvalidInput("offset must be an integer.") from None
        browser = self.browser
        executions, count = await browser.executions(project["_id"], filters, offset)
        self.render(
            "executions.html",
            project=project,
            executions=executions,
            count=count,
            offset=offset,
            page_size=PAGE_SIZE,
            filters=filters,
            choices=await browser.filter_choices(project["_id"]),
            timing=embed(
                [
                    {
                        "id": e["id"],
                        "counter": e["counter"],
                        "wait": e["queue_wait"],
                        "duration": e["duration"],
                    }
                    for e in reversed(executions)
                ]
            ),
        )


class ExecutionPageHandler(PageHandler):
    page = "execution"

    async def get(self, project_id: str, counter: str) -> None:
        execution = await self.browser.execution(await self.execution(project_id, counter))
        self.render("execution.html", e=execution)


class NotebookFrameHandler(PageHandler):
    """The executed notebook, sanitized, as the sandboxed frame's document."""

    data_only = True

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", NOTEBOOK_CSP)

    async def get(self, project_id: str, counter: str) -> None:
        body = await self.browser.notebook_html(await self.execution(project_id, counter))
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(notebook_page(body, self.static_url("notebook.css")))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or "The notebook cannot be shown."
        self.set_status(getattr(exc, "status", status_code))
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(notebook_page(f"<p>{xhtml_escape(message)}</p>", self.static_url("app.css")))


class StopHandler(PageHandler):
    async def post(self, project_id: str, counter: str) -> None:
        doc = await self.execution(project_id, counter, EDITOR)
        await self.services.executions.stop(doc)
        self.redirect(f"{self.root}p/{project_id}/executions/{counter}/")


def form_value(original: Any, text: str) -> Any:
    """A parameter typed in a form, as the type the original value had."""
    if isinstance(original, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


class CopyHandler(PageHandler):
    """Queue a new execution like this one, with the parameters from the form."""

    async def post(self, project_id: str, counter: str) -> None:
        assert self.user is not None
        doc = await self.execution(project_id, counter, EDITOR)
        parameters = dict(doc.get("parameters") or {})
        for name, value in parameters.items():
            text = self.get_body_argument(f"param:{name}", None)
            if text is not None:
                parameters[name] = form_value(value, text)
        body = {
            "project": doc["project"],
            "commit": doc["commit"],
            "step": doc["step"],
            "parameters": parameters,
            "inputs": doc.get("inputs") or {},
            "environment": doc["environment"],
            "environment_variables": doc.get("environment_variables") or {},
            "image": doc.get("image") or "",
            "tags": doc.get("tags") or [],
            "title": self.get_body_argument("title", "") or doc.get("title", ""),
            "time_limit": doc.get("time_limit") or 0,
            "runtime_config": doc.get("runtime_config") or {},
        }
        new = await self.services.executions.create(self.user, body)
        self.redirect(f"{self.root}p/{new['project']}/executions/{new['counter']}/")


class CompareHandler(PageHandler):
    page = "compare"

    async def get(self) -> None:
        refs = [r for r in self.get_query_arguments("e") if r]
        executions = await self.browser.compare(refs)
        params = sorted({k for e in executions for k in e["parameters"]})
        metrics = sorted(
            {k for e in executions for k, v in e.get("metadata", {}).items() if _number(v)}
        )
        series = [
            {"label": f"#{e['counter']} {e['step']}", "entries": e["series"]} for e in executions
        ]
        self.render(
            "compare.html",
            executions=executions,
            params=params,
            metrics=metrics,
            data=embed({"executions": series, "metrics": metrics}),
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
