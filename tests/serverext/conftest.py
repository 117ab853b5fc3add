"""A real master and agent behind a Jupyter server that runs the extension (pytest-jupyter)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures and hooks, for this folder only
from traitlets.config import Config

from tests.e2e.stack import Stack

EXTENSIONS = {"jupyter_server_terminals": True, "jupyter_valohai": True}


@pytest.fixture
async def jp_asyncio_loop() -> asyncio.AbstractEventLoop:
    """pytest-jupyter's server on the loop pytest-asyncio runs the test in (one loop for both)."""
    return asyncio.get_running_loop()


@pytest.fixture
def jp_server_config(master: Stack) -> Config:
    """The extension, pointed at the real master by ``c.Valohai``."""
    return Config(
        {
            "ServerApp": {"jpserver_extensions": EXTENSIONS},
            "Valohai": {
                "master_url": master.url,
                "token": master.admin_token,
                "embedded": False,
                "default_project": "serverext",
            },
        }
    )


Fetch = Callable[..., Awaitable[Any]]


@pytest.fixture
def api(jp_fetch: Fetch, jp_serverapp: Any) -> Callable[..., Awaitable[tuple[int, Any]]]:
    """Call a ``valohai/`` route with Jupyter's token; return (status, decoded JSON).

    Every answer is checked not to carry the master's token.
    """
    link = jp_serverapp.web_app.settings["valohai_link"]

    async def call(method: str, *parts: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        if body is not None:
            kw["body"] = json.dumps(body)
        elif method == "POST":
            kw["body"] = b""
        response = await jp_fetch("valohai", *parts, method=method, raise_error=False, **kw)
        if link.connection is not None:
            assert link.connection.token.encode() not in response.body
        return response.code, json.loads(response.body or b"null")

    return call
