"""The API's routes as nested Tornado rules: a request tries a handful of patterns, not all 80.

Tornado tries an application's rules one after the other, one regular expression each; with the
web pages and 80 API routes in one list, finding ``GET /api/v0/executions/{id}/`` took ~45 tries,
a tenth of the request's time (docs/performance.md). Here routes sharing their first path
segments become one rule whose target is the list of them (Tornado's nested rules), level by
level: ``/api/v0`` -> ``/executions`` -> the execution routes. The matching is the same as the
flat list's: a group holds only routes whose path starts with its literal segments, so no route
outside it can match what it matches, and a route that cannot be grouped (a parameter among the
first segments) closes the groups before it, which keeps the order every request sees.
"""

from __future__ import annotations

import re
from typing import Any

from tornado.routing import PathMatches, Rule

#: Literal path segments grouped on, from the first (``api``, ``v0``, ``executions``).
DEPTH = 3


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def nest(routes: list[tuple[str, str, Any]], prefix: str, level: int = 0) -> list[Any]:
    """Rules for ``routes`` — (template path, pattern, handler) in matching order — grouped by
    their literal path segment at ``level`` (and deeper, up to :data:`DEPTH`)."""
    if level >= DEPTH:
        return [(pattern, handler) for _, pattern, handler in routes]
    out: list[Any] = []
    open_groups: dict[str, list[tuple[str, str, Any]]] = {}
    for route in routes:
        segments = _segments(route[0])
        literal = len(segments) > level and all("{" not in s for s in segments[: level + 1])
        if not literal:  # matched in place: groups after it start afresh
            open_groups = {}
            out.append((route[1], route[2]))
            continue
        key = segments[level]
        group = open_groups.get(key)
        if group is None:
            group = open_groups[key] = []
            out.append((key, group))  # the group's place: its first route's
        group.append(route)
    rules: list[Any] = []
    for item in out:
        if isinstance(item[1], list):
            key, members = item
            base = "/".join(_segments(members[0][0])[: level + 1])
            inner = nest(members, prefix, level + 1)
            if len(members) == 1:
                rules.extend(inner)
            else:
                matcher = PathMatches(re.escape(f"{prefix}/{base}") + "(?:/.*)?$")
                rules.append(Rule(matcher, inner))
        else:
            rules.append(item)
    return rules
