"""HTML of an execution view's panes: header, cells table, log pane, outputs and links.

Every text that comes from the execution (log lines, cell sources, names) is escaped; log lines go
through nbconvert's ANSI filter, which escapes the text and turns colour codes into the same
``ansi-*`` classes JupyterLab's own output area uses.
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import quote

from jupyter_valohai.models import TERMINAL_STATUSES

STATUS_COLOURS = {
    "created": "#777",
    "queued": "#777",
    "started": "#1a73e8",
    "stopping": "#e37400",
    "complete": "#188038",
    "error": "#d93025",
    "stopped": "#e37400",
    "crashed": "#d93025",
}
STREAM_CLASSES = {"stderr": "ansi-red-fg"}


def ansi_html(text: str) -> str:
    """Escape ``text`` and render its ANSI colour codes as HTML spans."""
    from nbconvert.filters.ansi import ansi2html  # imported on first use: nbconvert is heavy

    return str(ansi2html(text))


def human_size(size: Any) -> str:
    if not isinstance(size, int | float):
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def header(execution: dict[str, Any], status: str, duration: float | None, message: str) -> str:
    """Title line: counter, step, project, status badge, duration and the last status message."""
    colour = STATUS_COLOURS.get(status, "#777")
    project = (execution.get("project") or {}).get("name", "")
    counter = execution.get("counter")
    title = execution.get("title") or execution.get("step") or ""
    parts = [
        f"<b>Valohai execution #{html.escape(str(counter))}</b>" if counter else "<b>Valohai</b>",
        html.escape(str(title)),
        f"<span style='color:#777'>{html.escape(str(project))}</span>" if project else "",
        f"<span style='background:{colour};color:white;border-radius:3px;padding:0 6px'>"
        f"{html.escape(status or 'unknown')}</span>",
        html.escape(human_duration(duration)),
        f"<span style='color:#777'>{html.escape(message)}</span>" if message else "",
    ]
    return "&ensp;".join(p for p in parts if p)


def cells_table(cells: list[dict[str, Any]], current: int | None) -> str:
    """One row per code cell: position, first line, state, duration; the running one in bold."""
    if not cells:
        return ""
    total = len(cells)
    rows = []
    for cell in cells:
        state = str(cell.get("state") or "")
        mark = {"running": "&#9654;", "ok": "&#10003;", "error": "&#10007;"}.get(state, "")
        colour = {"running": "#1a73e8", "error": "#d93025"}.get(state, "inherit")
        weight = "bold" if cell.get("index") == current else "normal"
        rows.append(
            f"<tr style='color:{colour};font-weight:{weight}'>"
            f"<td>{mark}</td><td>[{html.escape(str(cell.get('position') or ''))}/{total}]</td>"
            f"<td><code>{html.escape(str(cell.get('source') or ''))}</code></td>"
            f"<td>{html.escape(human_duration(cell.get('duration')))}</td></tr>"
        )
    return "<table style='font-size:90%'>" + "".join(rows) + "</table>"


def log_pane(lines: list[tuple[str, str]], height: str = "20em") -> str:
    """The log lines as a scrolled ``<pre>``; stderr in red, ANSI colours kept.

    The box is a reversed flex column, so the browser keeps it scrolled to the newest line; the
    ``<pre>`` must not shrink, or it would overflow the box instead of making it scroll.
    """
    body = "\n".join(
        f"<span class='{STREAM_CLASSES[stream]}'>{ansi_html(text)}</span>"
        if stream in STREAM_CLASSES
        else ansi_html(text)
        for stream, text in lines
    )
    return (
        f"<div class='jp-RenderedText' style='max-height:{height};overflow-y:auto;"
        "display:flex;flex-direction:column-reverse'>"
        f"<pre style='margin:0;white-space:pre-wrap;flex-shrink:0'>{body}</pre></div>"
    )


def lab_href(local_path: str) -> str:
    """An absolute JupyterLab URL of a local file, for HTML that Lab does not resolve itself
    (widgets): ``<base url>lab/tree/<path from the server's root>``.

    The server's root and base URL come from ``VH_JUPYTER_ROOT_DIR`` / ``VH_JUPYTER_BASE_URL``
    when the server sets them; else the kernel's folder is taken as the root and ``/`` as base.
    """
    root = os.environ.get("VH_JUPYTER_ROOT_DIR") or os.getcwd()
    base = os.environ.get("VH_JUPYTER_BASE_URL") or "/"
    rel = os.path.relpath(os.path.abspath(local_path), os.path.abspath(root))
    if rel.startswith(".."):
        rel = os.path.relpath(os.path.abspath(local_path))
    return base.rstrip("/") + "/lab/tree/" + quote(rel.replace(os.sep, "/"))


def file_href(local_path: str) -> str:
    """A link relative to the kernel's folder: JupyterLab opens it in a tab from an output."""
    return quote(os.path.relpath(os.path.abspath(local_path)).replace(os.sep, "/"))


def link(href: str, text: str) -> str:
    return (
        f"<a href='{html.escape(href, quote=True)}' target='_blank' "
        f"style='color:#1a73e8;text-decoration:underline'>{html.escape(text)}</a>"
    )


def summary(execution: dict[str, Any], status: str) -> str:
    """One line of text for frontends without widgets."""
    counter = execution.get("counter")
    project = (execution.get("project") or {}).get("name", "")
    where = f" in project {project}" if project else ""
    what = f"#{counter} ({execution.get('id')})" if counter else str(execution.get("id", ""))
    ended = " (ended)" if status in TERMINAL_STATUSES else ""
    return f"Valohai execution {what}{where}: {status or 'unknown'}{ended}"
