"""``Client`` (sync) and ``AsyncClient``: two thin drivers of the operations in :mod:`.calls`."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from ..connection import Connection, resolve_connection
from ..errors import ValohaiError
from . import calls, deploy, workers
from .calls import Call, Event, Op

#: Reconnections of an event stream in a row (without a new event) before giving up.
STREAM_RETRIES = 5
#: The master sends a keepalive every 15 s; a stream silent for longer than this is dead.
STREAM_READ_TIMEOUT = 60.0


_ApiT = TypeVar("_ApiT", bound="_Api")


class _Api:
    """The methods both clients share; ``_run`` returns a value (sync) or a coroutine (async)."""

    url: str

    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @classmethod
    def from_connection(
        cls: type[_ApiT], conn: Connection | None = None, timeout: float = 30
    ) -> _ApiT:
        """Return a client for ``conn``, or for :func:`resolve_connection`'s answer."""
        conn = conn or resolve_connection()
        return cls(conn.url, conn.token, timeout=timeout)

    def _run(self, op: Op) -> Any:
        raise NotImplementedError

    def me(self) -> Any:
        """The user the token belongs to."""
        return self._run(calls.me())

    def projects(self) -> Any:
        """Every project, as a list of dicts."""
        return self._run(calls.projects())

    def get_project(self, id_or_name: str) -> Any:
        """A project by id, else by name."""
        return self._run(calls.get_project(id_or_name))

    def create_project(self, name: str) -> Any:
        return self._run(calls.create_project(name))

    def ensure_project(self, name: str) -> Any:
        """The project called ``name``, created if missing."""
        return self._run(calls.ensure_project(name))

    def environments(self) -> Any:
        return self._run(calls.environments())

    def import_package(
        self, project_id: str, tarball: bytes, yaml_path: str, description: str = ""
    ) -> Any:
        """Upload a code tarball; return the ad-hoc commit (its ``identifier`` is ``~sha256``)."""
        return self._run(calls.import_package(project_id, tarball, yaml_path, description))

    def create_execution(self, body: dict[str, Any]) -> Any:
        """Create (queue) an execution: body has project, commit, step, parameters, inputs..."""
        return self._run(calls.create_execution(body))

    def get_execution(self, ref: str) -> Any:
        """An execution by id or ``<project id>:<counter|latest>``."""
        return self._run(calls.get_execution(ref))

    def list_executions(
        self, project: str | None = None, status: str | None = None, limit: int = 20
    ) -> Any:
        """The newest executions, optionally of one project (id or name) and status."""
        return self._run(calls.list_executions(project, status, limit))

    def stop_execution(self, ref: str) -> Any:
        """Ask for a stop; return the master's message."""
        return self._run(calls.stop_execution(ref))

    def events(self, ref: str, streams: list[str] | str | None = None, limit: int = 0) -> Any:
        """The last ``limit`` events (0: all) of the given streams (default: the master's)."""
        return self._run(calls.events(ref, streams, limit))

    def outputs(self, ref: str) -> Any:
        """The execution's output datums (name, size, sha256, id, ...)."""
        return self._run(calls.outputs(ref))

    def deploy(
        self,
        execution: str,
        endpoint: str | None = None,
        output: str | None = None,
        deployment: str | None = None,
        alias: str | None = None,
        target: str = "local",
        registry: str = "",
    ) -> Any:
        """Deploy an execution's output (see :func:`.calls.deploy`); return the new version."""
        return self._run(
            calls.deploy(execution, endpoint, output, deployment, alias, target, registry)
        )

    def execution_endpoints(self, ref: str) -> Any:
        """Names of the endpoints the execution's valohai.yaml defines."""
        return self._run(calls.execution_endpoints(ref))

    def deployment_version(self, version_id: str) -> Any:
        return self._run(calls.get_deployment_version(version_id))

    def build_log(self, endpoint_id: str) -> Any:
        return self._run(calls.build_log(endpoint_id))

    # --- deploying chosen files (:mod:`.deploy`, the sidebar's) ----------------------------

    def commit_endpoints(self, identifier: str, project: str) -> Any:
        """The ``endpoint:`` definitions of a commit's valohai.yaml."""
        return self._run(deploy.commit_endpoints(identifier, project))

    def deployments(self, project: str) -> Any:
        return self._run(deploy.deployments(project))

    def deployment_targets(self) -> Any:
        return self._run(deploy.deployment_targets())

    def deploy_output(self, execution_ref: str, endpoint: str, files: dict, **kw: Any) -> Any:
        """Create a deployment version of the execution's commit (see :func:`.deploy_output`)."""
        return self._run(deploy.deploy_output(execution_ref, endpoint, files, **kw))

    def deployment_endpoint(self, endpoint_id: str) -> Any:
        """An endpoint: status, failure, URLs, health."""
        return self._run(deploy.deployment_endpoint(endpoint_id))

    # --- workers (:mod:`.workers`) -------------------------------------------------------------

    def workers(self, environment: str | None = None) -> Any:
        """The live workers (of one environment), with state and current execution id."""
        return self._run(workers.workers(environment))

    def environment_workers(self, environment: str) -> Any:
        """An environment's workers, each busy one's execution summarized."""
        return self._run(workers.workers_with_executions(environment))


def _dest_file(datum: dict[str, Any] | str, dest_path: str) -> str:
    if os.path.isdir(dest_path):
        if isinstance(datum, str):
            raise ValohaiError("Give a file path to download a datum by id into.")
        return os.path.join(dest_path, os.path.basename(datum["name"]))
    return dest_path


@contextmanager
def _atomic_file(dest: str) -> Iterator[IO[bytes]]:
    """A file beside ``dest`` that replaces it once complete (readers never see half a file)."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fp:
            yield fp
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


class _Stream:
    """One event stream across reconnections: where to resume, when it ended, when to give up."""

    def __init__(self, client: _Api, ref: str, after: str | None) -> None:
        self.client, self.ref, self.last = client, ref, after
        self.failures = 0
        self.ended = False
        self.connected = False

    def request(self) -> tuple[str, dict[str, Any]]:
        """The path and keyword arguments of the next (re)connection."""
        call = calls.stream_call(self.ref, self.last)
        timeout = httpx.Timeout(self.client.timeout, read=STREAM_READ_TIMEOUT)
        return call.path, {"params": call.params, "timeout": timeout}

    def take(self, sse: ServerSentEvent) -> Event | None:
        """The event of one SSE message, or None for messages that carry none."""
        event = calls.to_event(sse.event, sse.data, sse.id)
        if event is not None:
            self.failures = 0
            self.last = event.id or self.last
            self.ended = event.kind == "end"
        return event

    def opened(self, response: httpx.Response, content: bytes | None = None) -> None:
        """Check the answer to a (re)connection; an error answer raises its mapped error."""
        calls.check(response, self.client.url, content)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise ValohaiError(
                f"The master at {self.client.url} sent no event stream for {self.ref}.",
                hint="Is this the URL of a jupyter-valohai master?",
            )
        self.connected = True

    def failed(self, exc: BaseException | None = None) -> float:
        """Count a lost connection (or a stream closed before ``end``); return the wait before
        reconnecting, or raise when the master never answered or keeps failing."""
        self.failures += 1
        if self.failures <= STREAM_RETRIES and self.connected:
            return float(min(0.25 * 2**self.failures, 5.0))
        if isinstance(exc, httpx.HTTPError):
            raise calls.transport_error(exc, self.client.url) from None
        raise ValohaiError(
            f"The event stream of {self.ref} keeps closing before its end.",
            hint="Look at the execution with `%valohai status`; the master may be restarting.",
        )


class Client(_Api):
    """A synchronous client of the master's API (one ``httpx.Client``; close it or use ``with``)."""

    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        super().__init__(url, token, timeout)
        self._http = httpx.Client(
            base_url=self.url + "/", headers=self._headers, timeout=timeout, follow_redirects=True
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, **call.kwargs())
        except httpx.HTTPError as exc:
            raise calls.transport_error(exc, self.url) from None
        calls.check(response, self.url)
        return calls.decode_json(response)

    def _run(self, op: Op) -> Any:
        run = calls.Run(op)
        while (call := run.next_call()) is not None:
            try:
                run.answer = self._send(call)
            except ValohaiError as exc:
                run.error = exc
        return run.value

    def stream_events(self, ref: str, after: str | None = None) -> Iterator[Event]:
        """Yield the execution's events as the master pushes them, ending with ``end``."""
        stream = _Stream(self, ref, after)
        while not stream.ended:
            path, kwargs = stream.request()
            try:
                with connect_sse(self._http, "GET", path, **kwargs) as src:
                    error = src.response.is_error
                    stream.opened(src.response, src.response.read() if error else None)
                    for sse in src.iter_sse():
                        if event := stream.take(sse):
                            yield event
                        if stream.ended:
                            return
                time.sleep(stream.failed())
            except httpx.HTTPError as exc:
                time.sleep(stream.failed(exc))

    def download(self, datum: dict[str, Any] | str, dest_path: str) -> str:
        """Save a datum (dict or id) to ``dest_path`` (a file, or a folder for its name)."""
        dest = _dest_file(datum, dest_path)
        call = calls.download_call(datum)
        try:
            with self._http.stream(
                "GET", call.path, timeout=httpx.Timeout(self.timeout, read=STREAM_READ_TIMEOUT)
            ) as response:
                if response.is_error:
                    calls.check(response, self.url, response.read())
                with _atomic_file(dest) as fp:
                    for chunk in response.iter_bytes():
                        fp.write(chunk)
        except httpx.HTTPError as exc:
            raise calls.transport_error(exc, self.url) from None
        return dest


class AsyncClient(_Api):
    """The same API on ``httpx.AsyncClient``: methods are coroutines, streams async iterators."""

    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        super().__init__(url, token, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.url + "/", headers=self._headers, timeout=timeout, follow_redirects=True
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, **call.kwargs())
        except httpx.HTTPError as exc:
            raise calls.transport_error(exc, self.url) from None
        calls.check(response, self.url)
        return calls.decode_json(response)

    async def _run(self, op: Op) -> Any:  # type: ignore[override]
        run = calls.Run(op)
        while (call := run.next_call()) is not None:
            try:
                run.answer = await self._send(call)
            except ValohaiError as exc:
                run.error = exc
        return run.value

    async def stream_events(self, ref: str, after: str | None = None) -> AsyncIterator[Event]:
        """Yield the execution's events as the master pushes them, ending with ``end``."""
        stream = _Stream(self, ref, after)
        while not stream.ended:
            path, kwargs = stream.request()
            try:
                async with aconnect_sse(self._http, "GET", path, **kwargs) as src:
                    error = src.response.is_error
                    stream.opened(src.response, await src.response.aread() if error else None)
                    async for sse in src.aiter_sse():
                        if event := stream.take(sse):
                            yield event
                        if stream.ended:
                            return
                await asyncio.sleep(stream.failed())
            except httpx.HTTPError as exc:
                await asyncio.sleep(stream.failed(exc))

    async def download(self, datum: dict[str, Any] | str, dest_path: str) -> str:
        """Save a datum (dict or id) to ``dest_path`` (a file, or a folder for its name)."""
        dest = _dest_file(datum, dest_path)
        call = calls.download_call(datum)
        try:
            async with self._http.stream(
                "GET", call.path, timeout=httpx.Timeout(self.timeout, read=STREAM_READ_TIMEOUT)
            ) as response:
                if response.is_error:
                    calls.check(response, self.url, await response.aread())
                with _atomic_file(dest) as fp:
                    async for chunk in response.aiter_bytes():
                        fp.write(chunk)
        except httpx.HTTPError as exc:
            raise calls.transport_error(exc, self.url) from None
        return dest
