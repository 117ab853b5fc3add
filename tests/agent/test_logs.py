"""The log shipper against a real HTTP peer: flush rule, batch size, JSON metadata, stop and 409."""

from __future__ import annotations

import os
import threading
import time

from agent.client import AgentClient
from agent.logs import LINE_CAP, LogShipper, parse_metadata

EVENTS = "/api/agent/executions/e-1/events"


def _shipper(peer, **kw) -> LogShipper:
    client = AgentClient(peer.url, "tok")
    return LogShipper(lambda ev, md: client.events("e-1", 3, ev, md), **kw).start()


def _events(peer) -> list[dict]:
    return [e for r in peer.posts(EVENTS) for e in r.json()["events"]]


def test_single_line_is_sent_soon_with_attempt_and_token(peer) -> None:
    shipper = _shipper(peer, flush_interval=0.05, batch_bytes=64 * 1024)
    shipper.write("stdout", "warm-up\n")  # the first request also opens the connection
    peer.wait_for(lambda reqs: len(reqs) >= 1, timeout=5)
    written = time.monotonic()
    shipper.write("stdout", "hello\n")
    peer.wait_for(lambda reqs: len(reqs) >= 2, timeout=5)
    # A bound for the flush rule (not a benchmark): the line did not wait for a 1 s tick.
    assert peer.requests[1].at - written < 0.2
    assert peer.requests[0].json()["events"][0]["message"] == "warm-up\n"
    body = peer.requests[1].json()
    assert body["attempt"] == 3
    assert body["events"][0]["stream"] == "stdout"
    assert body["events"][0]["message"] == "hello\n"
    assert body["events"][0]["time"]
    assert body["metadata"] == []
    assert peer.requests[1].headers["Authorization"] == "Token tok"
    shipper.close()


def test_full_batch_is_sent_without_waiting_for_the_interval(peer) -> None:
    shipper = _shipper(peer, flush_interval=5.0, batch_bytes=1000)
    started = time.monotonic()
    for i in range(30):
        shipper.write("stdout", f"{i:03d} " + "x" * 95 + "\n")
    peer.wait_for(lambda reqs: len(reqs) >= 2, timeout=4)
    assert time.monotonic() - started < 4  # well before the 5 s interval
    sizes = [len(r.json()["events"]) for r in peer.requests[:2]]
    assert all(n == 10 for n in sizes), sizes
    shipper.close()
    messages = [e["message"] for e in _events(peer)]
    assert [m[:3] for m in messages] == [f"{i:03d}" for i in range(30)]  # order kept, none lost


def test_a_cell_event_is_no_company_for_the_line_after_it(peer) -> None:
    # A cell's first output follows its start event closely; it goes at once, not with the
    # lines after it (which do wait: they follow a line).
    shipper = _shipper(peer, flush_interval=5.0, batch_bytes=64 * 1024)
    shipper.write("progress", '{"type": "cell", "state": "start"}')
    peer.wait_for(lambda reqs: len(reqs) >= 1, timeout=4)
    shipper.write("stdout", "first output\n")
    peer.wait_for(lambda reqs: len(reqs) >= 2, timeout=4)  # not after the 5 s interval
    shipper.write("stdout", "second\n")
    shipper.write("stdout", "third\n")
    shipper.close()
    batches = [[e["message"] for e in r.json()["events"]] for r in peer.posts(EVENTS)]
    assert batches[1] == ["first output\n"]
    assert batches[2:] == [["second\n", "third\n"]]


def test_json_object_lines_are_also_metadata(peer) -> None:
    shipper = _shipper(peer, flush_interval=0.02)
    for stream, line in [
        ("stdout", '{"epoch": 1, "loss": 0.5}\n'),
        ("stdout", '  {"acc": 0.9}\n'),
        ("stdout", "[1, 2]\n"),
        ("stdout", "{not json\n"),
        ("stderr", '{"err": 1}\n'),
    ]:
        shipper.write(stream, line)
    shipper.close()
    metadata = [m for r in peer.posts(EVENTS) for m in r.json()["metadata"]]
    assert [m["data"] for m in metadata] == [{"epoch": 1, "loss": 0.5}, {"acc": 0.9}]
    assert all(m["time"] for m in metadata)
    assert len(_events(peer)) == 5  # every line is also a log event
    assert parse_metadata('"str"') is None


def test_stop_answer_and_stale_attempt(peer) -> None:
    stopped, stale = threading.Event(), threading.Event()
    peer.json_route("POST", EVENTS, {"stop": True})
    shipper = _shipper(peer, on_stop=stopped.set, on_stale=stale.set)
    shipper.write("stdout", "x\n")
    assert stopped.wait(5)
    peer.json_route("POST", EVENTS, {"code": "stale_attempt", "message": "gone"}, status=409)
    shipper.write("stdout", "y\n")
    assert stale.wait(5)
    assert shipper.stale
    shipper.write("stdout", "z\n")
    shipper.close()
    assert "z\n" not in [e["message"] for e in _events(peer)]  # nothing more after a 409


def test_long_lines_are_split_and_pumped_intact(peer) -> None:
    shipper = _shipper(peer, flush_interval=0.02)
    read_fd, write_fd = os.pipe()
    pump = threading.Thread(target=shipper.pump, args=("stdout", os.fdopen(read_fd, "rb")))
    pump.start()
    long_line = "é" * (LINE_CAP + 10) + "\n"  # multibyte, split across the byte cap
    with os.fdopen(write_fd, "wb") as w:
        w.write(b"short\r\n" + long_line.encode() + b"tail")
    pump.join(5)
    shipper.close()
    messages = [e["message"] for e in _events(peer)]
    assert messages[0] == "short\r\n"
    assert "".join(messages[1:]) == long_line + "tail"
    assert all(len(m.encode()) <= LINE_CAP + 4 for m in messages)
    assert len(messages) >= 4


def _failing_first(n: int):
    """An events route that answers 503 to the first ``n`` posts, then 200."""
    count = {"n": 0}

    def answer(req):
        count["n"] += 1
        if count["n"] <= n:
            return 503, b'{"code": "unavailable", "message": "restarting"}', "application/json"
        return 200, b"{}", "application/json"

    return answer


def test_a_batch_waits_out_a_master_restart(peer) -> None:
    peer.route("POST", EVENTS, _failing_first(4))
    client = AgentClient(peer.url, "tok", retries=0)
    shipper = LogShipper(lambda ev, md: client.events("e-1", 3, ev, md), retry_for=30).start()
    for i in range(5):
        shipper.write("stdout", f"line {i}\n")
    shipper.close()
    delivered = [e["message"] for r in peer.posts(EVENTS)[4:] for e in r.json()["events"]]
    assert delivered == [f"line {i}\n" for i in range(5)]  # none lost, order kept


def test_lines_given_up_on_show_as_a_gap(peer) -> None:
    peer.route("POST", EVENTS, _failing_first(1000))
    client = AgentClient(peer.url, "tok", retries=0)
    shipper = LogShipper(lambda ev, md: client.events("e-1", 3, ev, md), retry_for=0.3).start()
    shipper.write("stdout", "a\n")
    shipper.write("stderr", "b\n")
    deadline = time.monotonic() + 10
    while not shipper.lost and time.monotonic() < deadline:  # until it gives up on the batch
        time.sleep(0.05)
    peer.json_route("POST", EVENTS, {})
    shipper.write("stdout", "c\n")
    shipper.close()
    last = peer.posts(EVENTS)[-1].json()["events"]
    assert last[0]["stream"] == "status"
    assert last[0]["message"].startswith("2 log lines were lost")
    assert last[-1]["message"] == "c\n"
    assert shipper.lost == 0
