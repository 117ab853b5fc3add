"""The base handler: token authentication, JSON in and out, and the one error mapper."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from tornado import httputil
from tornado.iostream import StreamClosedError
from tornado.web import HTTPError, RequestHandler

from jupyter_valohai.errors import (
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    ValohaiError,
)

from ..services.describe import encode_json

if TYPE_CHECKING:
    from jupyter_valohai.stores import ArtifactStore

    from ..context import Context
    from ..server import Master, Services
    from ..store import Doc

log = logging.getLogger("master.api")

CHUNK = 256 * 1024


class BaseHandler(RequestHandler):
    """Handlers parse and answer; services decide. ``auth`` is "user", "agent" or None."""

    auth: str | None = "user"
    user: Doc
    environment: Doc

    @property
    def master(self) -> Master:
        return self.settings["master"]  # type: ignore[no-any-return]

    @property
    def services(self) -> Services:
        return self.settings["services"]  # type: ignore[no-any-return]

    @property
    def ctx(self) -> Context:
        return self.settings["ctx"]  # type: ignore[no-any-return]

    @property
    def base(self) -> str:
        """Absolute URL prefix for links in answers (``public_url`` or the request's host)."""
        public = self.ctx.config.public_url.rstrip("/")
        if public:
            return public
        prefix = self.ctx.config.base_url.rstrip("/")
        return f"{self.request.protocol}://{self.request.host}{prefix}"

    def token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
        return None

    def max_body_bytes(self) -> int:
        """The largest request body this handler takes (uploads override it)."""
        return self.ctx.config.max_request_bytes

    def check_body_size(self) -> None:
        """Refuse a body over the handler's limit with a clear 413."""
        length = self.request.headers.get("Content-Length")
        size = len(self.request.body or b"") if length is None else length
        try:
            size = int(size)
        except ValueError:
            raise InvalidInput("Content-Length is not a number.") from None
        limit = self.max_body_bytes()
        if size > limit:
            raise PayloadTooLarge(
                f"The request body has {size} bytes; this route takes at most {limit}.",
                hint="Send less per request (the master's operator sets the limits, e.g. "
                "--MasterApp.max_request_bytes).",
            )

    async def prepare(self) -> None:
        self.check_body_size()
        if self.auth == "user":
            self.user = await self.services.users.authenticate(self.token())
        elif self.auth == "agent":
            self.environment = await self.services.environments.authenticate_agent(self.token())

    # --- authorization (every project-scoped handler goes through these) ---------------------

    async def project_for(self, project_id: Any, role: str = "viewer") -> Doc:
        """The project, if the user holds ``role`` (viewer, editor, owner) in it; else 404/403."""
        return await self.services.projects.authorize(self.user, project_id, role)

    async def authorize(self, doc: Doc, role: str = "viewer", what: str = "object") -> Doc:
        """Check ``role`` in the project a document (execution, datum, alias...) belongs to.

        A user who cannot read that project is told the object does not exist.
        """
        missing = f"No {what} {doc.get('_id')!r}."
        await self.services.projects.authorize(self.user, doc.get("project"), role, missing)
        return doc

    async def execution_for(self, ref: str, role: str = "viewer") -> Doc:
        """The execution (id or ``project:counter``) if the user holds ``role`` in its project."""
        doc = await self.services.executions.get(ref)
        try:
            return await self.authorize(doc, role, "execution")
        except NotFound:
            raise NotFound(f"No execution {ref!r}.", hint="See `vh exec list`.") from None

    async def readable_projects(self) -> list[str] | None:
        """Ids of the projects the user may read (``None``: all, for administrators)."""
        return await self.services.projects.readable(self.user)

    async def scope(self, project_id: Any) -> str | list[str] | None:
        """A list query's project filter: the asked project (checked), else every readable one."""
        if project_id:
            return str((await self.project_for(project_id))["_id"])
        return await self.readable_projects()

    # --- input ----------------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """Return the request body as a dict: JSON, or form / multipart fields."""
        ctype = self.request.headers.get("Content-Type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            return {k: self.get_body_argument(k) for k in self.request.body_arguments}
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"The request body is not valid JSON: {exc}.",
                hint="Send a JSON object with Content-Type: application/json.",
            ) from exc
        if not isinstance(data, dict):
            raise InvalidInput("The request body must be a JSON object.")
        return data

    def query(self) -> dict[str, list[str]]:
        return {
            k: [v.decode("utf-8", "replace") for v in vs]
            for k, vs in self.request.query_arguments.items()
        }

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.get_query_argument(name, default)

    # --- output ---------------------------------------------------------------------------------

    def write_json(self, data: Any, status: int = 200) -> None:
        self.write_json_bytes(encode_json(data), status)

    def write_json_bytes(self, body: bytes, status: int = 200) -> None:
        """Answer JSON already encoded (see :func:`master.services.describe.encode_json`)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(body)

    async def stream_object(
        self, key: str, filename: str, content_type: str, store: ArtifactStore | None = None
    ) -> None:
        """Send an artifact (from ``store``, else the default) as an attachment, read in chunks
        off the event loop."""
        artifacts = store or self.ctx.artifacts
        size = await asyncio.to_thread(artifacts.size, key)
        fp = await asyncio.to_thread(artifacts.open, key)
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Length", str(size))
        quoted = re.sub(r'["\\\x00-\x1f\x7f-\x9f]', "", filename)  # one inert header value
        self.set_header("Content-Disposition", f'attachment; filename="{quoted}"')
        try:
            while chunk := await asyncio.to_thread(fp.read, CHUNK):
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            return
        finally:
            fp.close()
        self.finish()

    # --- errors ---------------------------------------------------------------------------------

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ValohaiError | HTTPError):
            log.debug("%s %s -> %s", self.request.method, self.request.uri, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ValohaiError):
            status, body = exc.status, exc.to_dict()
        elif isinstance(exc, HTTPError):
            status = exc.status_code
            message = exc.log_message or httputil.responses.get(status, "Error")
            if exc.args and "%" in message:
                message = message % exc.args
            body = {"code": "http_error", "message": message, "detail": message}
        elif status_code < 500:
            reason = httputil.responses.get(status_code, "Error")
            status, body = status_code, {"code": "http_error", "message": reason, "detail": reason}
        else:
            status = 500
            body = {
                "code": "internal_error",
                "message": "Internal server error.",
                "detail": "Internal server error.",
                "hint": "The master logged the details; tell its operator.",
            }
        self.clear_header("Content-Disposition")
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if isinstance(exc, NotAuthenticated):
            self.set_header("WWW-Authenticate", "Token")
        self.finish(json.dumps(body, default=str))


class NotFoundHandler(BaseHandler):
    """Any path no route matches: a JSON 404."""

    auth = None

    async def prepare(self) -> None:
        raise HTTPError(404, "No such API route: %s", self.request.path)
