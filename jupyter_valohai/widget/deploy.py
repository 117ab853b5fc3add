"""The Deploy panel of an ExecutionView: deploy an output, follow the build, try the endpoint.

The master does the work (see docs/deployments.md); the panel creates the version with
:meth:`Client.deploy`, follows it until it runs or fails (with the build log's reason), then shows
the endpoint's URL and a small "try it" box that POSTs JSON to it.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import ipywidgets as widgets
from traitlets import Unicode

from jupyter_valohai.client import Client
from jupyter_valohai.errors import ValohaiError

ENDED = ("running", "failed", "stopped")


def wait_version(
    client: Client,
    version_id: str,
    timeout: float = 900.0,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll the version until it runs, fails or stops (or ``timeout``); return it."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        version = dict(client.deployment_version(version_id))
        if on_status is not None and version["status"] != last:
            on_status(version)
            last = version["status"]
        if version["status"] in ENDED:
            return version
        if time.monotonic() > deadline:
            raise ValohaiError(
                f"Deployment version {version['name']} is still {version['status']}.",
                hint="It goes on building on the master; look again later.",
            )
        time.sleep(1.0)


def outcome(version: dict[str, Any]) -> tuple[str, str | None]:
    """One line about a finished version, and its endpoint URL if it runs."""
    endpoint = (version.get("endpoints") or [{}])[0]
    if version["status"] == "running":
        url = endpoint.get("endpoint_url")
        aliases = endpoint.get("alias_urls") or {}
        if aliases:
            url = next(iter(aliases.values()))
        return f"Endpoint {endpoint.get('name')} is running at {url}", url
    failure = endpoint.get("failure") or {}
    reason = failure.get("reason") or version["status"]
    return f"Deployment version {version['name']} {version['status']}: {reason}", None


class DeployPanel(widgets.VBox):
    """Deploy one execution's output; ``run()`` does it all (the button calls it in a thread)."""

    status = Unicode("", help="The version's status: building, running, failed...")
    url = Unicode("", help="The endpoint's URL once it runs.")

    def __init__(self, client: Client, execution_id: str, **options: Any) -> None:
        self._client = client
        self._execution_id = execution_id
        self._options = options
        self._message = widgets.HTML()
        self._request = widgets.Textarea(
            value='{"data": [[5.1, 3.5, 1.4, 0.2]]}',
            description="JSON",
            layout=widgets.Layout(width="60%", display="none"),
        )
        self._send = widgets.Button(
            description="Send", icon="paper-plane", layout=widgets.Layout(display="none")
        )
        self._send.on_click(lambda _: self.try_it())
        self._answer = widgets.HTML()
        super().__init__(
            children=[
                self._message,
                widgets.HBox([self._request, self._send]),
                self._answer,
            ]
        )
        self.version: dict[str, Any] = {}

    def _say(self, text: str) -> None:
        self._message.value = html.escape(text)

    def run(self, timeout: float = 900.0) -> str:
        """Create the version, wait for it; return the one-line outcome."""
        self._say("Creating the deployment version...")
        created = self._client.deploy(self._execution_id, **self._options)
        self._say(f"Building deployment version {created['name']}...")

        def show(version: dict[str, Any]) -> None:
            self.status = version["status"]
            self._say(f"Deployment version {version['name']}: {version['status']}")

        self.version = wait_version(self._client, created["id"], timeout, show)
        self.status = self.version["status"]
        line, url = outcome(self.version)
        self._say(line)
        if url:
            self.url = url
            self._message.value = (
                f"Endpoint running at <a href='{html.escape(url)}' target='_blank'>"
                f"{html.escape(url)}</a>"
            )
            self._request.layout.display = ""
            self._send.layout.display = ""
        return line

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a thread (a button's click must not block the kernel)."""

        def target() -> None:
            try:
                self.run()
            except ValohaiError as exc:
                self._say(str(exc))
            except Exception as exc:
                self._say(f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=target, name="valohai-deploy", daemon=True)
        thread.start()
        return thread

    def try_it(self, body: str | None = None) -> str:
        """POST the JSON of the box (or ``body``) to the endpoint; show and return the answer."""
        if not self.url:
            raise ValohaiError("The endpoint is not running yet.")
        text = self._request.value if body is None else body
        try:
            payload = json.loads(text)
        except ValueError as exc:
            self._answer.value = html.escape(f"Not JSON: {exc}")
            return self._answer.value
        try:
            resp = httpx.post(self.url, json=payload, timeout=60)
            answer = f"{resp.status_code}: {resp.text[:2000]}"
        except httpx.HTTPError as exc:
            answer = f"The endpoint did not answer: {exc}"
        self._answer.value = f"<pre>{html.escape(answer)}</pre>"
        return answer
