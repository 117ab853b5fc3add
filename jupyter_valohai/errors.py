"""Errors shared by the master, the agent and the Jupyter side.

Every error the product raises on purpose descends from :class:`ValohaiError`, carries a message a
person can act on and, where it helps, a hint on how to fix it. ``status`` is the HTTP status the
master answers with when the error crosses the API.

    ValohaiError                      500
    ├── InvalidInput                  400  (bad body, bad parameter, bad valohai.yaml)
    │   └── UnsafeArchive             400  (a tarball that would escape its directory)
    ├── NotAuthenticated              401
    ├── PermissionDenied              403
    ├── NotFound                      404
    ├── Conflict                      409
    │   └── StaleAttempt              409  (a fenced agent call from an attempt that lost its lease)
    ├── PayloadTooLarge               413
    ├── TooManyRequests               429  (a limit of the master, e.g. executions in flight)
    └── ServiceUnavailable            503  (MongoDB, Redis or the artifact store is not answering)
"""

from __future__ import annotations

from typing import Any


class ValohaiError(Exception):
    """Base of every error jupyter-valohai raises on purpose."""

    status: int = 500
    code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body the API answers with for this error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        # valohai-cli shows "detail" for errors it does not recognise.
        body["detail"] = self.message
        if self.hint:
            body["hint"] = self.hint
        body.update(self.extra)
        return body

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class InvalidInput(ValohaiError):
    status = 400
    code = "invalid"


class UnsafeArchive(InvalidInput):
    code = "unsafe_archive"


class NotAuthenticated(ValohaiError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(ValohaiError):
    status = 403
    code = "permission_denied"


class NotFound(ValohaiError):
    status = 404
    code = "not_found"


class Conflict(ValohaiError):
    status = 409
    code = "conflict"


class StaleAttempt(Conflict):
    code = "stale_attempt"


class PayloadTooLarge(ValohaiError):
    status = 413
    code = "too_large"


class TooManyRequests(ValohaiError):
    status = 429
    code = "too_many"


class ServiceUnavailable(ValohaiError):
    status = 503
    code = "unavailable"


class NotConfigured(ValohaiError):
    """No master URL and token were given or found (see ``jupyter_valohai.connection``)."""

    status = 400
    code = "not_configured"


class SnapshotTooLarge(InvalidInput):
    """A code snapshot over its size limit."""

    code = "snapshot_too_large"
