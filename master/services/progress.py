"""Event streams beyond plain logs: cell progress of notebook runs, and metadata in the log.

An agent posts ``progress`` events (message: the JSON text of a cell event, see
docs/agent-protocol.md) among its stdout/stderr lines. The master keeps them in the log stream and
folds each batch into the execution's ``cell_progress`` (one entry per cell index) and
``current_cell``, in the same update that renews the lease. Metadata entries the agent posts are
also appended to the log as ``metadata`` events, each right after the stdout line it came from, so
viewers see them in order.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.models import TERMINAL_STATUSES, isoformat

from ..store import Doc, as_dt

LOG_STREAMS = ("stdout", "stderr", "status")
#: Streams an agent may post.
AGENT_STREAMS = (*LOG_STREAMS, "progress")
#: Every stream in an execution's log.
ALL_STREAMS = (*AGENT_STREAMS, "metadata")
#: Streams whose message is JSON text (the SSE ``data`` carries it parsed).
JSON_STREAMS = ("progress", "metadata")
CELL_STATES = ("start", "end")
CELL_STATUSES = ("ok", "error")

Event = dict[str, Any]


def parse_streams(value: str | None) -> tuple[str, ...]:
    """Return the streams a ``?streams=a,b`` query asks for (default: the log streams)."""
    if not value:
        return LOG_STREAMS
    streams = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in streams if s not in ALL_STREAMS]
    if unknown or not streams:
        raise InvalidInput(
            f"Unknown stream {', '.join(map(repr, unknown)) or repr(value)}.",
            hint=f"Ask for some of: {','.join(ALL_STREAMS)}.",
        )
    return streams


def parsed(event: Event) -> Any:
    """Return the object a progress or metadata event's message holds (``None`` if unreadable)."""
    try:
        return json.loads(event.get("message") or "")
    except ValueError:
        return None


def check_progress(message: str) -> dict[str, Any]:
    """Return the progress event a message holds; raise :class:`InvalidInput` if malformed."""
    try:
        data = json.loads(message)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidInput("A progress event's message must be the JSON text of an object.")
    if data.get("type") == "cell":
        index = data.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidInput("A cell progress event needs an 'index' (integer >= 0).")
        if data.get("state") not in CELL_STATES:
            raise InvalidInput("A cell progress event's 'state' must be 'start' or 'end'.")
        if data["state"] == "end" and data.get("status") not in CELL_STATUSES:
            raise InvalidInput("A cell's end event needs a 'status' of 'ok' or 'error'.")
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _time(value: Any) -> str | None:
    try:
        return isoformat(as_dt(value)) if value else None
    except (TypeError, ValueError):
        return None


def cell_sets(progress: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the ``$set`` that folds a batch's cell events into the execution document."""
    sets: dict[str, Any] = {}
    current: int | None = None
    touched = False
    for event in progress:
        if event.get("type") != "cell":
            continue
        index = event["index"]
        key = f"cell_progress.{index}"
        info = {
            "index": index,
            "position": event.get("position"),
            "total": event.get("total"),
            "source": str(event.get("source") or "")[:200],
        }
        if event["state"] == "start":
            for stale in [k for k in sets if k.startswith(key + ".")]:
                del sets[stale]  # a start replaces the cell as a whole (a path may be set once)
            sets[key] = {**info, "state": "running", "started_at": _time(event.get("time"))}
            sets[key]["duration"] = None
            current, touched = index, True
        else:
            end = {"state": event["status"], "duration": _number(event.get("duration"))}
            if key in sets:
                sets[key].update(end)
            else:
                sets.update({f"{key}.{k}": v for k, v in {**info, **end}.items()})
            if current in (None, index):
                current, touched = None, True
    if touched:
        sets["current_cell"] = current
    return sets


def describe_cells(doc: Doc) -> tuple[list[dict[str, Any]], int | None]:
    """Return the execution's ``cells`` list and ``current_cell`` as the API shows them.

    A cell still ``running`` when the execution has ended (stopped, crashed) is shown as ``error``.
    """
    ended = doc.get("status") in TERMINAL_STATUSES
    stored = doc.get("cell_progress") or {}
    cells = []
    for cell in sorted(stored.values(), key=lambda c: int(c.get("index", 0))):
        state = cell.get("state") or "running"
        cells.append(
            {
                "index": cell.get("index"),
                "position": cell.get("position"),
                "source": cell.get("source", ""),
                "state": "error" if ended and state == "running" else state,
                "started_at": cell.get("started_at"),
                "duration": cell.get("duration"),
            }
        )
    current = None if ended else doc.get("current_cell")
    return cells, current


def with_metadata(events: list[Event], metadata: list[dict[str, Any]]) -> list[Event]:
    """Return ``events`` with a ``metadata`` event after the stdout line each entry came from.

    The agent stamps a metadata entry (``time`` as sent, ``data``) with the time of its stdout
    line; an entry with no such line in the batch goes at the end.
    """
    waiting: dict[str, list[dict[str, Any]]] = {}
    for entry in metadata:
        waiting.setdefault(str(entry.get("time") or ""), []).append(entry)
    out: list[Event] = []

    def metadata_event(entry: dict[str, Any], at: str) -> Event:
        return {"stream": "metadata", "message": json.dumps(entry["data"]), "time": at}

    for event in events:
        out.append(event)
        queue = waiting.get(event["time"])
        if queue and event["stream"] == "stdout" and event["message"].lstrip().startswith("{"):
            out.append(metadata_event(queue.pop(0), event["time"]))
    for at, queue in waiting.items():
        out.extend(metadata_event(entry, at) for entry in queue)
    return out
