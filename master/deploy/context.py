"""The image context of one endpoint: the commit's code, the model files and a small server.

Layout written under ``dest``::

    Dockerfile
    repository/          the commit's code archive, with each endpoint file at its path
    vh_serve.py          serves a ``wsgi:`` application (threaded wsgiref, no dependencies)

The endpoint's image is the base. ``requirements-deployment.txt`` in the repository (Valohai's
convention) is installed at build time; offline builds find wheels in ``repository/wheels/``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import BinaryIO

from jupyter_valohai.archive import safe_extract

from .models import EndpointDef

REPOSITORY = "/valohai/repository"
REQUIREMENTS = "requirements-deployment.txt"

SERVE_PY = '''\
"""Serve the WSGI application named by $VH_WSGI ("module" or "module:callable")."""
import importlib
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.getcwd())
module_name, _, attr = os.environ["VH_WSGI"].partition(":")
module = importlib.import_module(module_name)
if attr:
    app = getattr(module, attr)
else:
    app = getattr(module, "application", None) or getattr(module, "app")


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s %s\\n" % (self.address_string(), format % args))


port = int(os.environ.get("VH_WSGI_PORT") or os.environ.get("PORT") or 8000)
print(f"serving {os.environ['VH_WSGI']} on port {port}", flush=True)
make_server("0.0.0.0", port, app, server_class=Server, handler_class=Handler).serve_forever()
'''


class ContextError(Exception):
    """The context cannot be made (a missing model file, a bad archive); the message says why."""


def dockerfile(definition: EndpointDef, offline: bool) -> str:
    """The Dockerfile of an endpoint image (the definition's image is the base)."""
    pip_flags = "--no-index " if offline else ""
    install = (
        f"RUN if [ -f {REQUIREMENTS} ]; then "
        f'FIND=""; if [ -d wheels ]; then FIND="--find-links {REPOSITORY}/wheels"; fi; '
        f"python3 -m pip install --no-cache-dir --disable-pip-version-check {pip_flags}"
        f"$FIND -r {REQUIREMENTS}; fi"
    )
    if definition.wsgi:
        cmd = json.dumps(["python3", "/valohai/vh_serve.py"])
    else:
        cmd = json.dumps(["sh", "-c", definition.server_command or ""])
    env = {
        "VH_REPOSITORY_DIR": REPOSITORY,
        "PORT": str(definition.port),
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
    }
    if definition.wsgi:
        env["VH_WSGI"] = definition.wsgi
    env_lines = " \\\n    ".join(f"{k}={json.dumps(v)}" for k, v in env.items())
    return "\n".join(
        [
            f"FROM {definition.image}",
            f"COPY repository {REPOSITORY}",
            "COPY vh_serve.py /valohai/vh_serve.py",
            f"WORKDIR {REPOSITORY}",
            f"ENV {env_lines}",
            install,
            "USER 65534:65534",
            f"EXPOSE {definition.port}",
            f"CMD {cmd}",
            "",
        ]
    )


def write_context(
    dest: str,
    definition: EndpointDef,
    code_archive: str | None,
    files: dict[str, Callable[[], BinaryIO]],
    offline: bool = True,
) -> None:
    """Write the context of ``definition`` into ``dest``.

    ``files`` maps each endpoint file name to an opener of its datum's bytes; a file of the
    definition that is missing there raises :class:`ContextError`.
    """
    repo = os.path.join(dest, "repository")
    os.makedirs(repo, exist_ok=True)
    if code_archive:
        safe_extract(code_archive, repo)
    for item in definition.files:
        opener = files.get(item.name)
        if opener is None:
            raise ContextError(
                f"Endpoint {definition.name!r} needs file {item.name!r} ({item.path}) "
                "and no datum was given for it."
            )
        target = os.path.realpath(os.path.join(repo, item.path))
        if not target.startswith(os.path.realpath(repo) + os.sep):
            raise ContextError(f"File path {item.path!r} leaves the repository.")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with opener() as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    with open(os.path.join(dest, "vh_serve.py"), "w") as f:
        f.write(SERVE_PY)
    with open(os.path.join(dest, "Dockerfile"), "w") as f:
        f.write(dockerfile(definition, offline))
