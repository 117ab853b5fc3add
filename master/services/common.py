"""Helpers the services share: pagination, id lookups and time arithmetic."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from jupyter_valohai.errors import InvalidInput

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def page_params(limit: Any, offset: Any) -> tuple[int, int]:
    """Parse ``limit``/``offset`` query values (strings or None)."""
    try:
        lim = DEFAULT_LIMIT if limit in (None, "") else int(limit)
        off = 0 if offset in (None, "") else int(offset)
    except (TypeError, ValueError):
        raise InvalidInput("limit and offset must be integers.") from None
    if lim < 0 or off < 0:
        raise InvalidInput("limit and offset must not be negative.")
    return min(lim or MAX_LIMIT, MAX_LIMIT), off


def page(
    results: list[dict[str, Any]],
    count: int,
    url: str,
    query: dict[str, Any],
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Return a Django REST framework style page: ``{count, next, previous, results}``."""

    def link(off: int) -> str:
        q = {k: v for k, v in query.items() if k not in ("limit", "offset")}
        q.update(limit=limit, offset=off)
        return f"{url}?{urlencode(q, doseq=True)}"

    nxt = link(offset + limit) if offset + limit < count else None
    prev = link(max(offset - limit, 0)) if offset > 0 else None
    return {"count": count, "next": nxt, "previous": prev, "results": results}


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def as_bool(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
