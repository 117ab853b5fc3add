"""The web handlers' base: session login, XSRF on every POST, strict CSP, HTML error pages."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tornado import httputil
from tornado.web import HTTPError, RequestHandler

from jupyter_valohai.errors import NotAuthenticated, ValohaiError
from jupyter_valohai.models import INCOMPLETE_STATUSES, TERMINAL_STATUSES, isoformat

from ..store import as_dt
from .sessions import SESSION_COOKIE, SESSION_DAYS, Sessions

if TYPE_CHECKING:
    from ..context import Context
    from ..server import Services
    from ..store import Doc

log = logging.getLogger("master.web")

#: No inline script anywhere; scripts, styles and fetches from the master only.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def page_query(filters: dict[str, str], offset: int) -> str:
    """The query string of a table page: its filters and where it starts."""
    return urlencode({**{k: v for k, v in filters.items() if v}, "offset": offset})


def prefix(base_url: str) -> str:
    """``/`` or ``/some/prefix/``: where the pages live."""
    inner = base_url.strip("/")
    return f"/{inner}/" if inner else "/"


class SessionMixin(RequestHandler):
    """Resolves the browser session cookie to a user (``None`` when not logged in)."""

    @property
    def ctx(self) -> Context:
        return self.settings["ctx"]  # type: ignore[no-any-return]

    @property
    def services(self) -> Services:
        return self.settings["services"]  # type: ignore[no-any-return]

    @property
    def sessions(self) -> Sessions:
        return Sessions(self.ctx.redis)

    @property
    def root(self) -> str:
        """The pages' URL prefix, ending in a slash."""
        return prefix(self.ctx.config.base_url)

    def session_id(self) -> str | None:
        value = self.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
        return value.decode() if value else None

    async def session_user(self) -> Doc | None:
        session_id = self.session_id()
        if not session_id:
            return None
        user_id = await self.sessions.user_id(session_id)
        if not user_id:
            return None
        return await self.ctx.store.users.find_one({"_id": user_id})  # type: ignore[no-any-return]

    def secure_cookies(self) -> bool:
        return self.request.protocol == "https" or self.ctx.config.public_url.startswith("https:")

    def set_session_cookie(self, session_id: str) -> None:
        self.set_signed_cookie(
            SESSION_COOKIE,
            session_id,
            expires_days=SESSION_DAYS,
            path=self.root,
            httponly=True,
            samesite="Lax",
            secure=self.secure_cookies(),
        )


class SessionAPIMixin(SessionMixin):
    """For API handlers reused by pages (server-sent events): the session instead of a token.

    Not logged in: the API's JSON 401. Only GET is routed to these handlers.
    """

    async def prepare(self) -> None:
        user = await self.session_user()
        if user is None:
            raise NotAuthenticated(
                "Not logged in.", hint=f"Log in at {self.root}login and open the page again."
            )
        self.user = user


class WebHandler(SessionMixin):
    """A page. ``login_required`` pages redirect to the login page when there is no session."""

    login_required = True
    admin_required = False
    #: Data for a page (a frame's document): 401 without a session, never a redirect.
    data_only = False
    user: Doc | None = None

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        if self.request.method not in ("GET", "HEAD"):
            self.check_xsrf_cookie()
        self.user = await self.session_user()
        if self.login_required and self.user is None:
            if self.request.method in ("GET", "HEAD") and not self.data_only:
                self.redirect(f"{self.root}login?{urlencode({'next': self.request.uri})}")
                return
            raise HTTPError(401, "Not logged in.")
        if self.admin_required and not (self.user or {}).get("is_admin"):
            raise HTTPError(403, "Only administrators may open this page.")

    def get_template_namespace(self) -> dict[str, Any]:
        ns = super().get_template_namespace()
        ns.update(
            root=self.root,
            user=self.user,
            page=getattr(self, "page", ""),
            json=json,
            json_dumps=json.dumps,
            terminal=TERMINAL_STATUSES,
            incomplete=INCOMPLETE_STATUSES,
            url_escape_query=page_query,
            isoformat=lambda value: isoformat(as_dt(value)),
        )
        return ns

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ValohaiError | HTTPError):
            log.debug("%s %s -> %s", self.request.method, self.request.uri, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        hint = ""
        if isinstance(exc, ValohaiError):
            status_code, message, hint = exc.status, exc.message, exc.hint or ""
        elif isinstance(exc, HTTPError) and exc.log_message and status_code < 500:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code < 500:
            message = httputil.responses.get(status_code, "Error")
        else:
            message = "Internal server error: the master logged the details."
        self.set_status(status_code)
        self.render("error.html", status=status_code, message=message, hint=hint)
