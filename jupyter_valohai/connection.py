"""Where the master is and which token to use: explicit values, environment, files.

Resolution order (the first complete answer wins):

1. explicit ``url`` and ``token`` arguments;
2. environment variables ``VH_MASTER_URL`` and ``VH_TOKEN`` (both set);
3. ``VH_CONNECTION_FILE``: JSON ``{"url", "token"}``, the file ``jupyter valohai up`` writes;
4. the login file ``save_login`` writes: ``<jupyter data dir>/valohai/login.json`` (mode 0600);
5. the embedded default's ``$VH_DATA_DIR/connection.json``, or
   ``~/.local/share/jupyter-valohai/connection.json``.

Nothing found raises :class:`NotConfigured`. A token is never part of a message or ``repr``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

from jupyter_core.paths import jupyter_data_dir

from .errors import InvalidInput, NotConfigured

HINT = "Run `%valohai login URL --token T`, or start a master with `jupyter valohai up`."


@dataclass(frozen=True)
class Connection:
    """A master URL, its API token and where they came from (for messages)."""

    url: str
    token: str = field(repr=False)
    source: str = "arguments"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))


def login_file() -> str:
    """Return the path of the login file ``save_login`` writes."""
    return os.path.join(jupyter_data_dir(), "valohai", "login.json")


def embedded_connection_file() -> str:
    """Return the connection file of the embedded default (``jupyter valohai up``)."""
    data_dir = os.environ.get("VH_DATA_DIR") or os.path.expanduser("~/.local/share/jupyter-valohai")
    return os.path.join(data_dir, "connection.json")


def read_connection_file(path: str, source: str | None = None) -> Connection:
    """Read a JSON ``{"url", "token"}`` file; a broken one is :class:`InvalidInput`."""
    try:
        with open(path, encoding="utf-8") as fp:
            data = json.load(fp)
    except FileNotFoundError:
        raise NotConfigured(f"The connection file {path} does not exist.", hint=HINT) from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"The connection file {path} cannot be read: {exc}.",
            hint='It must be JSON: {"url": "http://host:port", "token": "..."}.',
        ) from None
    url = data.get("url") if isinstance(data, dict) else None
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url or not isinstance(token, str) or not token:
        raise InvalidInput(
            f"The connection file {path} lacks a url or a token.",
            hint='It must be JSON: {"url": "http://host:port", "token": "..."}.',
        )
    return Connection(url, token, source or path)


def save_login(url: str, token: str) -> str:
    """Write the login file (mode 0600, atomically); return its path."""
    if not url or not token:
        raise InvalidInput("A login needs a master URL and a token.", hint=HINT)
    path = login_file()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    # mkstemp creates the file with mode 0600; replacing keeps readers from half a file.
    with tempfile.NamedTemporaryFile(
        "w", dir=os.path.dirname(path), prefix=".login-", delete=False, encoding="utf-8"
    ) as fp:
        json.dump({"url": url.rstrip("/"), "token": token}, fp)
    try:
        os.replace(fp.name, path)
    except OSError:
        os.unlink(fp.name)
        raise
    return path


def resolve_connection(url: str | None = None, token: str | None = None) -> Connection:
    """Return the first complete connection in the documented order, or raise NotConfigured."""
    if url and token:
        return Connection(url, token, "arguments")
    env_url, env_token = os.environ.get("VH_MASTER_URL"), os.environ.get("VH_TOKEN")
    if env_url and env_token:
        return Connection(env_url, env_token, "VH_MASTER_URL and VH_TOKEN")
    candidates: list[tuple[str, str | None]] = []
    if os.environ.get("VH_CONNECTION_FILE"):
        candidates.append((os.environ["VH_CONNECTION_FILE"], "VH_CONNECTION_FILE"))
    candidates.append((login_file(), None))
    candidates.append((embedded_connection_file(), None))
    for path, label in candidates:
        if os.path.exists(path):
            conn = read_connection_file(path, f"{label} ({path})" if label else path)
            # An explicit URL alone takes the token stored for that same URL.
            if not url or conn.url == url.rstrip("/"):
                return conn
    if url:
        raise NotConfigured(f"No token is known for the master at {url}.", hint=HINT)
    raise NotConfigured("No jupyter-valohai master is configured.", hint=HINT)
