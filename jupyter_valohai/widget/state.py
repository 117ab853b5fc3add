"""What an execution view shows, and the pure reducer that folds the execution's events into it.

:func:`reduce` takes a :class:`ViewState` and one :class:`~jupyter_valohai.client.Event` (or one of
the view's own ``execution`` / ``outputs`` events carrying a fetched object) and returns the next
state; it does no I/O, so a replay of the same events always reaches the same state. ExecutionView
(:mod:`.view`) copies the state onto its traits.

Log lines: stdout and stderr messages are split into lines; a message without a final newline
leaves its line open for the next message of the same stream; a line with carriage returns keeps
only the text after the last one (a progress bar redrawn in place is one line); ANSI colour codes
are kept (the HTML pane renders them); only the last ``max_lines`` lines are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from jupyter_valohai.models import TERMINAL_STATUSES

#: Log lines a view keeps by default.
DEFAULT_MAX_LINES = 2000
LOG_STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class ViewState:
    """One execution as a view knows it; ``lines`` holds ``(stream, text)`` pairs."""

    execution_id: str
    max_lines: int = DEFAULT_MAX_LINES
    status: str = ""
    status_message: str = ""
    duration: float | None = None
    started_at: str | None = None
    current_cell: int | None = None
    cells: tuple[dict[str, Any], ...] = ()
    lines: tuple[tuple[str, str], ...] = ()
    #: The unfinished last line: its stream and its raw text since the last carriage return.
    open_stream: str | None = None
    open_raw: str = ""
    metrics: dict[str, tuple[float, ...]] = field(default_factory=dict)
    outputs: tuple[dict[str, Any], ...] = ()
    ended: bool = False
    execution: dict[str, Any] = field(default_factory=dict)
    last_event_id: str | None = None

    @property
    def log_lines(self) -> list[str]:
        return [text for _, text in self.lines]


# --- log lines ------------------------------------------------------------------------------


def collapse(raw: str) -> str:
    """The text a terminal shows for one line redrawn with carriage returns."""
    shown = raw.rstrip("\r")
    return shown[shown.rfind("\r") + 1 :]


def _tail(raw: str) -> str:
    """The part of an open line that later text can still change (from its last redraw on)."""
    if raw.endswith("\r"):
        return collapse(raw) + "\r"
    return raw[raw.rfind("\r") + 1 :]


def add_text(state: ViewState, stream: str, text: str) -> ViewState:
    """Append printed text of ``stream`` to the log lines."""
    if not text:
        return state
    lines = list(state.lines)
    open_stream, open_raw = state.open_stream, state.open_raw
    if open_stream is not None and open_stream != stream:
        open_stream, open_raw = None, ""  # another stream's line: the open one stays as it is
    elif open_stream is not None:
        lines.pop()  # the open line is rebuilt with the new text
    pieces = (open_raw + text).split("\n")
    for piece in pieces[:-1]:
        lines.append((stream, collapse(piece)))
    last = pieces[-1]
    if last:
        lines.append((stream, collapse(last)))
        open_stream, open_raw = stream, _tail(last)
    else:
        open_stream, open_raw = None, ""
    if len(lines) > state.max_lines:
        lines = lines[-state.max_lines :]
    return replace(state, lines=tuple(lines), open_stream=open_stream, open_raw=open_raw)


# --- metrics and cells ----------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def add_metadata(state: ViewState, data: Any) -> ViewState:
    """Append each numeric field of one metadata object to its metric's series."""
    if not isinstance(data, dict):
        return state
    metrics = dict(state.metrics)
    for name, value in data.items():
        number = _number(value)
        if number is not None:
            metrics[str(name)] = (*metrics.get(str(name), ()), number)
    return replace(state, metrics=metrics)


def add_progress(state: ViewState, data: Any) -> ViewState:
    """Apply one cell event (``{"type": "cell", "state": "start"|"end", "index", ...}``)."""
    if not isinstance(data, dict) or data.get("type") != "cell":
        return state
    index = data.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        return state
    cells = {c["index"]: dict(c) for c in state.cells}
    cell = cells.setdefault(
        index,
        {
            "index": index,
            "position": data.get("position"),
            "source": data.get("source", ""),
            "state": "running",
            "started_at": None,
            "duration": None,
        },
    )
    current = state.current_cell
    if data.get("state") == "start":
        cell.update(state="running", started_at=data.get("time"), duration=None)
        current = index
    elif data.get("state") == "end":
        cell.update(state=data.get("status") or "ok", duration=_number(data.get("duration")))
        current = None if current == index else current
    else:
        return state
    for key in ("position", "source"):
        if data.get(key) is not None:
            cell[key] = data[key]
    ordered = tuple(cells[i] for i in sorted(cells))
    return replace(state, cells=ordered, current_cell=current)


# --- whole objects --------------------------------------------------------------------------


def _parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _tick(state: ViewState, event_time: Any) -> ViewState:
    """While running, the duration grows with the time of each event."""
    if state.ended or state.status in TERMINAL_STATUSES:
        return state
    start, now = _parse_time(state.started_at), _parse_time(event_time)
    if start is None or now is None:
        return state
    seconds = max((now - start).total_seconds(), 0.0)
    if state.duration is not None and seconds <= state.duration:
        return state
    return replace(state, duration=round(seconds, 3))


def apply_execution(state: ViewState, execution: dict[str, Any]) -> ViewState:
    """Take status, duration and cells from the execution as the master describes it."""
    status = str(execution.get("status") or state.status)
    ended = state.ended or status in TERMINAL_STATUSES
    cells = execution.get("cells")
    return replace(
        state,
        execution=execution,
        status=status,
        duration=_number(execution.get("duration")),
        started_at=execution.get("started_at") or state.started_at,
        cells=tuple(dict(c) for c in cells) if isinstance(cells, list) else state.cells,
        current_cell=None if ended else execution.get("current_cell"),
        ended=ended,
    )


def apply_outputs(state: ViewState, outputs: list[dict[str, Any]]) -> ViewState:
    """Keep each output's name, size and id (and the rest of the datum under ``datum``)."""
    rows = tuple(
        {"name": d.get("name", ""), "size": d.get("size"), "id": d.get("id"), "datum": d}
        for d in outputs
    )
    return replace(state, outputs=rows)


def _data(event: Any) -> dict[str, Any]:
    data = getattr(event, "data", None)
    return data if isinstance(data, dict) else {}


def reduce(state: ViewState, event: Any) -> ViewState:
    """The state after one event.

    Events: the SSE ones (log, progress, metadata, end), and the view's own
    ``Event("execution", None, <execution>)`` and ``Event("outputs", None, {"results": [...]})``.
    """
    kind, data = getattr(event, "kind", None), _data(event)
    event_id = getattr(event, "id", None)
    if event_id:
        state = replace(state, last_event_id=event_id)
    if kind == "log":
        stream, message = data.get("stream"), data.get("message")
        if not isinstance(message, str):
            return state
        state = _tick(state, data.get("time"))
        if stream in LOG_STREAMS:
            return add_text(state, str(stream), message)
        if stream == "status":
            return replace(state, status_message=message.strip())
        return state
    if kind == "progress":
        return add_progress(_tick(state, data.get("time")), data.get("data"))
    if kind == "metadata":
        parsed = data.get("data")
        if parsed is None and isinstance(data.get("message"), str):
            try:
                parsed = json.loads(data["message"])
            except ValueError:
                parsed = None
        return add_metadata(_tick(state, data.get("time")), parsed)
    if kind == "end":
        status = str(data.get("status") or state.status)
        return replace(state, status=status, ended=True, current_cell=None)
    if kind == "execution":
        return apply_execution(state, data)
    if kind == "outputs":
        return apply_outputs(state, list(data.get("results") or []))
    return state
