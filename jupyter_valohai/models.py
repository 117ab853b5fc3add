"""Execution statuses and small helpers shared by every component."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import BinaryIO

CREATED = "created"
QUEUED = "queued"
STARTED = "started"
STOPPING = "stopping"
COMPLETE = "complete"
ERROR = "error"
STOPPED = "stopped"
CRASHED = "crashed"

INCOMPLETE_STATUSES = frozenset({CREATED, QUEUED, STARTED, STOPPING})
TERMINAL_STATUSES = frozenset({COMPLETE, ERROR, STOPPED, CRASHED})
ALL_STATUSES = INCOMPLETE_STATUSES | TERMINAL_STATUSES
#: Statuses an agent may report at the end of an attempt.
AGENT_FINAL_STATUSES = frozenset({COMPLETE, ERROR, STOPPED})

#: Log event streams; "metadata" carries a parsed JSON object printed on stdout.
LOG_STREAMS = frozenset({"stdout", "stderr", "status"})


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def isoformat(value: dt.datetime | None) -> str | None:
    """Format a datetime the way Valohai's API does (UTC, microseconds, no offset suffix)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def new_token(nbytes: int = 32) -> str:
    """Return a new random token (256 bits by default) for API or agent authentication."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """Return the stored form of a token; tokens are high-entropy, so one SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sha256_fileobj(fp: BinaryIO, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file object from its current position to its end."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fp.read(chunk_size), b""):
        digest.update(chunk)
    return digest.hexdigest()
