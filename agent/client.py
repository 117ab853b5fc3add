"""The agent's side of the master protocol (``docs/agent-protocol.md``), over HTTP.

Every call about a running execution carries its ``attempt``; a ``409`` answer raises
:class:`~jupyter_valohai.errors.StaleAttempt` and the caller abandons the attempt. Idempotent calls
are retried with backoff on connection errors and 5xx answers; ``claim`` is never retried here (a
lost claim answer is recovered by the master's lease reaper), the loop backs off instead.

The token goes only to the master: absolute URLs elsewhere (an input on a web server, a presigned
S3 upload) are fetched without it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from jupyter_valohai.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    StaleAttempt,
    ValohaiError,
)

log = logging.getLogger(__name__)

Json = dict[str, Any]
CHUNK = 1 << 20


class MasterUnreachable(ServiceUnavailable):
    """The master did not answer (connection refused, timeout, or 5xx after retries)."""

    code = "master_unreachable"


_BY_STATUS: dict[int, type[ValohaiError]] = {
    401: NotAuthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: StaleAttempt,
}


def _error_for(resp: requests.Response) -> ValohaiError:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    message = (body.get("message") if isinstance(body, dict) else None) or resp.text[:200]
    hint = body.get("hint") if isinstance(body, dict) else None
    text = f"{resp.request.method} {urlsplit(resp.url).path}: {resp.status_code} {message}"
    if resp.status_code >= 500:
        return MasterUnreachable(text, hint=hint)
    cls = _BY_STATUS.get(resp.status_code, ValohaiError)
    err = cls(text, hint=hint)
    err.status = resp.status_code
    return err


class AgentClient:
    """A ``requests`` session bound to one master and one worker-group token."""

    def __init__(
        self,
        master_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        max_backoff: float = 5.0,
    ) -> None:
        self.master_url = master_url.rstrip("/") + "/"
        self.timeout = timeout
        self.retries = retries
        self.max_backoff = max_backoff
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        # Third-party URLs (inputs, presigned uploads) never see the token.
        self.anonymous = requests.Session()
        self.anonymous.trust_env = True

    def close(self) -> None:
        self.session.close()
        self.anonymous.close()

    # --- plumbing ------------------------------------------------------------------------------

    def url(self, url: str) -> str:
        """Return ``url`` made absolute against the master (a leading ``/`` means the master)."""
        return urljoin(self.master_url, url.lstrip("/")) if url.startswith("/") else url

    def is_master(self, url: str) -> bool:
        a, b = urlsplit(self.url(url)), urlsplit(self.master_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _session_for(self, url: str) -> requests.Session:
        return self.session if self.is_master(url) else self.anonymous

    def request(
        self, method: str, url: str, *, retries: int | None = None, **kw: Any
    ) -> requests.Response:
        """Send one request; retry connection errors and 5xx up to ``retries`` times."""
        url = self.url(url)
        session = self._session_for(url)
        kw.setdefault("timeout", self.timeout)
        attempts = 1 + (self.retries if retries is None else retries)
        delay = 0.2
        for n in range(attempts):
            last = n == attempts - 1
            rewind: Callable[[int], Any] | None = getattr(kw.get("data"), "seek", None)
            if rewind is not None and n:
                rewind(0)
            try:
                resp = session.request(method, url, **kw)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise MasterUnreachable(
                        f"{method} {urlsplit(url).path}: {exc.__class__.__name__}",
                        hint="Check that the master is running and --master-url points at it.",
                    ) from exc
            else:
                if resp.status_code < 500 or last:
                    if resp.status_code >= 400:
                        raise _error_for(resp)
                    return resp
                resp.close()
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, url: str, body: Json, **kw: Any) -> Json:
        resp = self.request(method, url, json=body, **kw)
        if resp.status_code == 204 or not resp.content:
            return {}
        data = resp.json()
        return data if isinstance(data, dict) else {"data": data}

    # --- the protocol --------------------------------------------------------------------------

    def check_in(self, worker: Json) -> Json:
        """Say this worker is alive and idle; the answer may ask it to drain or upgrade."""
        try:
            return self._json("POST", "/api/agent/worker", {"worker": worker}, retries=0)
        except NotFound:  # a master without the workers registry
            return {}

    def claim(self, worker: Json, wait: float) -> Json | None:
        """Long-poll for an execution; return its spec, or ``None`` when nothing arrived."""
        resp = self.request(
            "POST",
            "/api/agent/claim",
            retries=0,
            timeout=wait + 15,
            json={"worker": worker, "wait": wait},
        )
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def heartbeat(self, execution_id: str, attempt: int) -> Json:
        return self._json(
            "POST",
            f"/api/agent/executions/{execution_id}/heartbeat",
            {"attempt": attempt},
            retries=1,
        )

    def events(
        self, execution_id: str, attempt: int, events: list[Json], metadata: list[Json]
    ) -> Json:
        # Retried: a log line shown twice after a master hiccup beats a lost one.
        return self._json(
            "POST",
            f"/api/agent/executions/{execution_id}/events",
            {"attempt": attempt, "events": events, "metadata": metadata},
        )

    def download(self, url: str, dest: str) -> tuple[int, str]:
        """Stream ``url`` into the file ``dest``; return its size and SHA-256."""
        resp = self.request("GET", url, stream=True)
        digest, size = hashlib.sha256(), 0
        try:
            with open(dest, "wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        finally:
            resp.close()
        return size, digest.hexdigest()

    def download_code(self, url: str, dest: str) -> tuple[int, str]:
        return self.download(url, dest)

    def download_datum(self, datum_id: str, dest: str) -> tuple[int, str]:
        return self.download(f"/api/agent/data/{datum_id}/download", dest)

    def prepare_outputs(self, execution_id: str, attempt: int, files: list[Json]) -> list[Json]:
        data = self._json(
            "POST",
            f"/api/agent/executions/{execution_id}/outputs/prepare",
            {"attempt": attempt, "files": files},
        )
        return list(data.get("uploads", []))

    def put(self, upload: Json, path: str) -> Json:
        """Upload the file at ``path`` as an upload answer of ``prepare_outputs`` says."""
        headers = dict(upload.get("headers") or {})
        headers.setdefault("Content-Length", str(os.path.getsize(path)))
        with open(path, "rb") as f:
            resp = self.request(
                upload.get("method", "PUT"),
                upload["url"],
                data=f,
                headers=headers,
                timeout=max(self.timeout, 300),
            )
        try:
            return resp.json() if resp.content else {}
        except ValueError:  # S3 answers PUT with an empty (or XML) body
            return {}

    def register_outputs(self, execution_id: str, attempt: int, outputs: list[Json]) -> list[Json]:
        data = self._json(
            "POST",
            f"/api/agent/executions/{execution_id}/outputs",
            {"attempt": attempt, "outputs": outputs},
        )
        return list(data.get("datums", []))

    def status(
        self, execution_id: str, attempt: int, status: str, exit_code: int | None, message: str
    ) -> Json:
        return self._json(
            "POST",
            f"/api/agent/executions/{execution_id}/status",
            {"attempt": attempt, "status": status, "exit_code": exit_code, "message": message},
        )
