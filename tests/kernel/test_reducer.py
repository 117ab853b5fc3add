"""The view's pure event reducer and its HTML: no kernel, no master."""

from __future__ import annotations

import json

import pytest

from jupyter_valohai.client import Event
from jupyter_valohai.errors import UnsafeArchive
from jupyter_valohai.widget import render
from jupyter_valohai.widget.local import execution_dir, safe_destination
from jupyter_valohai.widget.state import ViewState, collapse, reduce


def log(message: str, stream: str = "stdout", time: str = "2026-01-01T00:00:01.000000") -> Event:
    return Event("log", None, {"stream": stream, "message": message, "time": time})


def fold(*events: Event, max_lines: int = 2000) -> ViewState:
    state = ViewState("e-1", max_lines=max_lines)
    for event in events:
        state = reduce(state, event)
    return state


def test_lines_are_split_and_joined_across_messages() -> None:
    state = fold(log("one\ntw"), log("o\nthree\n"), log("four"))
    assert state.log_lines == ["one", "two", "three", "four"]
    state = reduce(state, log(" and more\n"))
    assert state.log_lines == ["one", "two", "three", "four and more"]


def test_an_open_line_of_another_stream_is_left_as_it_is() -> None:
    state = fold(log("partial"), log("oops\n", "stderr"), log(" rest\n"))
    assert state.lines == (("stdout", "partial"), ("stderr", "oops"), ("stdout", " rest"))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain", "plain"),
        (" 10%\r 50%\r100%", "100%"),
        ("\r 10%|#   |\r 20%|##  |", " 20%|##  |"),
        ("done\r", "done"),
        ("a\r\r", "a"),
        ("", ""),
    ],
)
def test_carriage_returns_keep_the_last_redraw(raw: str, shown: str) -> None:
    assert collapse(raw) == shown


def test_a_progress_bar_over_many_messages_is_one_line() -> None:
    bar = [log(f"\r{pct:3d}%|{'#' * (pct // 10)}") for pct in range(0, 101, 10)]
    state = fold(log("start\n"), *bar, log("\n"), log("after\n"))
    assert state.log_lines == ["start", "100%|##########", "after"]


def test_a_redraw_that_ends_with_a_carriage_return_is_overwritten_by_the_next() -> None:
    state = fold(log("10%\r"), log("20%\r"), log("30%\n"))
    assert state.log_lines == ["30%"]
    assert fold(log("10%\r")).log_lines == ["10%"]


def test_windows_line_ends() -> None:
    assert fold(log("a\r\nb\r\n")).log_lines == ["a", "b"]


def test_ansi_codes_are_kept_in_the_lines() -> None:
    state = fold(log("\x1b[31mred\x1b[0m plain\n"))
    assert state.log_lines == ["\x1b[31mred\x1b[0m plain"]


def test_lines_are_bounded() -> None:
    state = fold(*(log(f"line {i}\n") for i in range(50)), max_lines=10)
    assert state.log_lines == [f"line {i}" for i in range(40, 50)]
    state = fold(log("".join(f"{i}\n" for i in range(25))), max_lines=5)
    assert state.log_lines == ["20", "21", "22", "23", "24"]


def test_status_events_are_no_log_lines() -> None:
    state = fold(log("Execution queued in local\n", "status"), log("hello\n"))
    assert state.log_lines == ["hello"]
    assert state.status_message == "Execution queued in local"


def metadata(obj: object) -> Event:
    return Event("metadata", None, {"stream": "metadata", "message": json.dumps(obj), "data": obj})


def test_metrics_collect_numeric_fields_in_order() -> None:
    state = fold(
        metadata({"epoch": 1, "loss": 0.5, "note": "x", "ok": True}),
        metadata({"epoch": 2, "loss": 0.25, "acc": 0.9}),
        metadata(["not", "an", "object"]),
        metadata({"loss": float("nan")}),
    )
    assert state.metrics == {"epoch": (1.0, 2.0), "loss": (0.5, 0.25), "acc": (0.9,)}


def test_metadata_without_parsed_data_is_parsed_from_its_message() -> None:
    event = Event("metadata", None, {"stream": "metadata", "message": '{"loss": 1}'})
    assert fold(event).metrics == {"loss": (1.0,)}


def cell(state: str, index: int, **extra: object) -> Event:
    data = {"type": "cell", "state": state, "index": index, "total": 2, "position": index, **extra}
    return Event(
        "progress", None, {"stream": "progress", "message": json.dumps(data), "data": data}
    )


def test_cell_progress() -> None:
    state = fold(cell("start", 1, source="x = 1", time="2026-01-01T00:00:00"))
    assert state.current_cell == 1
    assert state.cells[0]["state"] == "running"
    state = reduce(state, cell("end", 1, status="ok", duration=0.5))
    state = reduce(state, cell("start", 2, source="fail()"))
    assert state.current_cell == 2
    state = reduce(state, cell("end", 2, status="error", duration=1.25))
    assert state.current_cell is None
    assert [(c["index"], c["state"], c["duration"], c["source"]) for c in state.cells] == [
        (1, "ok", 0.5, "x = 1"),
        (2, "error", 1.25, "fail()"),
    ]


def test_execution_snapshots_end_and_outputs() -> None:
    execution = {
        "id": "e-1",
        "status": "started",
        "duration": 2.0,
        "started_at": "2026-01-01T00:00:00.000000",
        "cells": [{"index": 0, "position": 1, "source": "a", "state": "running"}],
        "current_cell": 0,
    }
    state = fold(Event("execution", None, execution))
    assert (state.status, state.duration, state.current_cell, state.ended) == (
        "started",
        2.0,
        0,
        False,
    )
    state = reduce(state, log("tick\n", time="2026-01-01T00:00:05.000000"))
    assert state.duration == 5.0  # the duration follows the events' times while running
    state = reduce(state, Event("end", "9", {"status": "complete"}))
    assert (state.status, state.ended, state.current_cell) == ("complete", True, None)
    assert state.last_event_id == "9"
    datum = {"name": "model.pkl", "size": 3, "id": "d-1", "sha256": "x"}
    state = reduce(state, Event("outputs", None, {"results": [datum]}))
    assert [(o["name"], o["size"], o["id"]) for o in state.outputs] == [("model.pkl", 3, "d-1")]


def test_replaying_the_same_events_gives_the_same_state() -> None:
    events = [log("a\n"), cell("start", 0), metadata({"m": 1}), cell("end", 0, status="ok")]
    assert fold(*events) == fold(*events)


def test_the_log_pane_escapes_html_and_renders_colours() -> None:
    pane = render.log_pane([("stdout", "\x1b[32m<b>ok</b>\x1b[0m"), ("stderr", "<script>x")])
    assert "<b>ok</b>" not in pane and "&lt;b&gt;ok&lt;/b&gt;" in pane
    assert "ansi-green-fg" in pane
    assert "<script>" not in pane and "&lt;script&gt;x" in pane
    assert "\x1b" not in pane


def test_cells_and_header_escape_their_text() -> None:
    table = render.cells_table([{"index": 0, "position": 1, "source": "<img>", "state": "ok"}], 0)
    assert "<img>" not in table
    head = render.header({"counter": 3, "title": "<i>t</i>", "project": {"name": "p"}}, "x", 1, "")
    assert "<i>t</i>" not in head


def test_output_folders_never_escape() -> None:
    folder = execution_dir({"counter": 7, "project": {"name": "my project/../x"}})
    assert folder.startswith("valohai-outputs")
    assert ".." not in folder.split("/")
    assert safe_destination(folder, "model/weights.bin").endswith("7/model/weights.bin")
    for bad in ("../evil", "/etc/passwd", "a/../../b", "a//b", "C:\\x"):
        with pytest.raises(UnsafeArchive):
            safe_destination(folder, bad)
