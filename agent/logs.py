"""Log shipping: lines from the execution's stdout/stderr reach the master in small batches.

A sender thread flushes when ``flush_interval`` has passed since the oldest unsent line, or at once
when the batch reaches ``batch_bytes``; a printed line therefore reaches the master within tens of
milliseconds, and a chatty process still costs one request per batch, not one per line. While a
request is in flight new lines wait, so batches grow with the master's latency. A line printed after
a quiet spell (no log line sent for ``flush_interval``) goes at once, with whatever came with it:
only lines that follow other lines closely wait for company. Progress events (a notebook's cell
starts and ends) do not count as company: a cell's first output goes at once after its start.

A stdout line that is a JSON object is sent as a stdout event and as a metadata entry (Valohai's
convention for metrics). Lines are sent as printed, newline and carriage returns included.

A stdout line carrying the execution's progress marker (``agent.nbrun``: the marker holds a
per-execution nonce) is sent as a ``progress`` event instead, never as a log line; text printed
before the marker on the same line stays a stdout event. A marker with another nonce is a log line.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from jupyter_valohai.errors import StaleAttempt
from jupyter_valohai.models import isoformat, utcnow

from .nbrun import marker

log = logging.getLogger(__name__)

#: A line longer than this is sent in pieces.
LINE_CAP = 64 * 1024

Json = dict[str, Any]
#: ``send(events, metadata)`` posts one batch and returns the master's answer.
Sender = Callable[[list[Json], list[Json]], Json]

_CLOSE = object()


def parse_metadata(line: str) -> Json | None:
    """Return the JSON object a stdout line holds, or ``None`` if it is not one."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def split_progress(text: str, prefix: str | None) -> tuple[str, str | None]:
    """Split a stdout line into the log text before a progress marker and the marker's JSON.

    ``prefix`` is the execution's marker (:func:`agent.nbrun.marker`); without one, or when the
    line holds no marker followed by a JSON object, the whole line is log text.
    """
    if not prefix:
        return text, None
    at = text.find(prefix)
    if at < 0:
        return text, None
    payload = text[at + len(prefix) :].strip()
    try:
        data = json.loads(payload)
    except ValueError:
        return text, None
    if not isinstance(data, dict):
        return text, None
    return text[:at], json.dumps(data)


def split_lines(stream: str, text: str, prefix: str | None) -> list[tuple[str, str]]:
    """Return the ``(stream, message)`` events one printed line becomes."""
    if stream != "stdout":
        return [(stream, text)]
    log_text, progress = split_progress(text, prefix)
    events = [(stream, log_text)] if log_text else []
    if progress is not None:
        events.append(("progress", progress))
    return events


class LogShipper:
    """Collect output lines from any thread; ship them in batches from one sender thread."""

    def __init__(
        self,
        send: Sender,
        *,
        flush_interval: float = 0.02,
        batch_bytes: int = 64 * 1024,
        on_stop: Callable[[], None] | None = None,
        on_stale: Callable[[], None] | None = None,
        progress_nonce: str | None = None,
        retry_for: float = 60.0,
    ) -> None:
        self._send = send
        self.retry_for = retry_for
        self.lost = 0  # lines given up on; the next batch that gets through says how many
        self.progress_prefix = marker(progress_nonce) if progress_nonce else None
        self.flush_interval = flush_interval
        self._last_flush = 0.0  # monotonic end of the last send that carried log lines
        self.batch_bytes = batch_bytes
        self.on_stop = on_stop
        self.on_stale = on_stale
        self.stale = False
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    def write(self, stream: str, message: str) -> None:
        """Queue one line (as printed) from ``stream`` ("stdout", "stderr" or "progress")."""
        now = isoformat(utcnow())
        for start in range(0, max(len(message), 1), LINE_CAP):
            piece = message[start : start + LINE_CAP]
            if piece:
                self._queue.put((stream, piece, now))

    def pump(self, stream: str, pipe: IO[bytes]) -> None:
        """Queue ``pipe``'s lines until it closes (runs in a reader thread of its own)."""
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for raw in iter(lambda: pipe.readline(LINE_CAP), b""):
                text = decoder.decode(raw)
                for kind, message in split_lines(stream, text, self.progress_prefix):
                    self.write(kind, message)
            tail = decoder.decode(b"", final=True)
            if tail:
                self.write(stream, tail)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            pipe.close()

    def close(self, timeout: float = 30.0) -> None:
        """Send everything queued so far, then stop the sender thread."""
        if self._thread.is_alive():
            self._queue.put(_CLOSE)
            self._thread.join(timeout)

    def _send_retrying(self, events: list[Json], metadata: list[Json]) -> Json | None:
        """Send one batch, retrying for ``retry_for`` seconds while the master is away (a master
        restart must not cost lines); new lines queue meanwhile. Lines given up on are counted
        and reported as a gap by the next batch that gets through, never dropped silently."""
        give_up = time.monotonic() + self.retry_for
        delay = 0.2
        while True:
            try:
                return self._send(events, metadata)
            except StaleAttempt:
                self.stale = True
                if self.on_stale:
                    self.on_stale()
                return None
            except Exception as exc:  # keep the execution running whatever happens here
                if time.monotonic() + delay > give_up:
                    lines = sum(1 for e in events if e["stream"] in ("stdout", "stderr"))
                    self.lost += lines
                    log.warning("Could not send %d log lines: %s", lines, exc)
                    return None
                log.info("Master unreachable (%s); retrying a log batch in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # --- the sender thread ---------------------------------------------------------------------

    def _run(self) -> None:
        closing = False
        while not closing:
            item = self._queue.get()
            if item is _CLOSE:
                break
            batch = [item]
            size = len(item[1])
            now = time.monotonic()
            quiet = now - self._last_flush >= self.flush_interval
            deadline = now if quiet else now + self.flush_interval
            while size < self.batch_bytes:
                remaining = deadline - time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=max(remaining, 0))
                        if remaining > 0
                        else (self._queue.get_nowait())
                    )
                except queue.Empty:
                    break
                if item is _CLOSE:
                    closing = True
                    break
                batch.append(item)
                size += len(item[1])
            self._flush(batch)
            if any(stream != "progress" for stream, _, _ in batch):
                self._last_flush = time.monotonic()

    def _flush(self, batch: list[tuple[str, str, str]]) -> None:
        if self.stale:
            return
        events: list[Json] = []
        metadata: list[Json] = []
        for stream, message, at in batch:
            events.append({"stream": stream, "message": message, "time": at})
            if stream == "stdout":
                data = parse_metadata(message)
                if data is not None:
                    metadata.append({"time": at, "data": data})
        if self.lost:
            gap = f"{self.lost} log lines were lost while the master could not be reached"
            events.insert(0, {"stream": "status", "message": gap, "time": isoformat(utcnow())})
        answer = self._send_retrying(events, metadata)
        if answer is None:
            return
        self.lost = 0
        if answer.get("stop") and self.on_stop:
            self.on_stop()
