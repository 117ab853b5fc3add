"""The nested API routes (master/api/router.py) match every request as the flat list did."""

from __future__ import annotations

import re

import pytest
from tornado.httputil import HTTPServerRequest
from tornado.web import Application

from master.api.routes import ROUTES, build_routes
from master.web import web_routes

PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


def flat_routes(prefix: str) -> list[tuple[str, type]]:
    root = "/" + prefix.strip("/") if prefix.strip("/") else ""
    nested = build_routes(prefix)
    return [(r.pattern(root), r.handler) for r in ROUTES] + [nested[-1]]


def sample_paths(prefix: str) -> list[str]:
    root = "/" + prefix.strip("/") if prefix.strip("/") else ""
    paths = []
    for route in ROUTES:
        for value in ("e-1", "p-2:3", "a/b"):
            path = root + PARAM.sub(
                lambda m, v=value: v if m.group(2) else v.split("/")[0], route.path
            )
            paths += [path, path.rstrip("/"), path + "x", path + "x/y/"]
    paths += [f"{root}/api/v0/executionsX/", f"{root}/api/", f"{root}/api", f"{root}/nope", "/"]
    return paths


def handler_for(app: Application, path: str) -> tuple[str, list[bytes | str]]:
    request = HTTPServerRequest(method="GET", uri=path)
    delegate = app.find_handler(request)
    return delegate.handler_class.__name__, list(delegate.path_args)


@pytest.mark.parametrize("prefix", ["/", "/vh/"])
def test_nested_routes_match_like_the_flat_list(prefix: str) -> None:
    pages = web_routes(prefix)
    nested = build_routes(prefix)
    new = Application(nested[:-1] + pages + nested[-1:])
    old = Application(pages + flat_routes(prefix))
    root = prefix.rstrip("/")
    page_paths = ["", "/", "/login", "/p/p-1/", "/p/p-1/executions/3/stop", "/live/environments"]
    for path in sample_paths(prefix) + [root + p for p in page_paths]:
        assert handler_for(new, path) == handler_for(old, path), path
