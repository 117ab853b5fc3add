"""The pages' routes and the Tornado settings they need, under the master's ``base_url``."""

from __future__ import annotations

import os
from typing import Any

from tornado.web import RequestHandler

from ..config import MasterConfig
from . import auth, live, ops, pages
from .base import prefix
from .sessions import cookie_secret

HERE = os.path.dirname(os.path.abspath(__file__))

#: (path under the prefix, handler); ``{}`` is one path segment.
PAGES: list[tuple[str, type[RequestHandler]]] = [
    ("", pages.ProjectsHandler),
    ("login", auth.LoginHandler),
    ("logout", auth.LogoutHandler),
    ("tokens", auth.TokensHandler),
    ("p/{}/", pages.ProjectHandler),
    ("p/{}/executions/{}/", pages.ExecutionPageHandler),
    ("p/{}/executions/{}/notebook", pages.NotebookFrameHandler),
    ("p/{}/executions/{}/stop", pages.StopHandler),
    ("p/{}/executions/{}/copy", pages.CopyHandler),
    ("compare", pages.CompareHandler),
    ("environments", ops.EnvironmentsHandler),
    ("deployments", ops.DeploymentsHandler),
    ("deployments/endpoints/{}/", ops.EndpointHandler),
    ("admin", ops.AdminHandler),
    ("live/executions/{}/events", live.ExecutionEventsStream),
    ("live/projects/{}/executions", live.ProjectFeedStream),
    ("live/deployment-endpoints/{}/build-log", live.BuildLogStream),
    ("live/environments", live.EnvironmentsStream),
]


def web_routes(base_url: str = "/") -> list[tuple[str, type[RequestHandler]]]:
    """Tornado's (pattern, handler) list of the pages; put it before the API's catch-all."""
    root = prefix(base_url)
    table = []
    for path, handler in PAGES:
        body = path.rstrip("/").replace("{}", "([^/]+)")
        table.append((f"{root}{body}/?$" if body else f"{root}?$", handler))
    return table


def web_settings(config: MasterConfig) -> dict[str, Any]:
    """Application settings: templates, static files, the cookie secret, the XSRF cookie."""
    root = prefix(config.base_url)
    return {
        "template_path": os.path.join(HERE, "templates"),
        "static_path": os.path.join(HERE, "static"),
        "static_url_prefix": f"{root}static/",
        "cookie_secret": cookie_secret(config.data_dir),
        "xsrf_cookie_kwargs": {
            "httponly": True,
            "samesite": "Lax",
            "path": root,
            "secure": config.public_url.startswith("https:"),
        },
    }
