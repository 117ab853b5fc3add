"""What a short execution costs the agent in round trips: the code archive comes from the worker's
cache when the same commit runs again, and a busy agent does not check in before every claim."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading

import pytest
from test_io import tarball

from agent import io
from agent.cache import InputCache, InputFetcher
from agent.client import AgentClient
from agent.loop import AgentLoop
from jupyter_valohai.errors import InvalidInput

CODE = tarball({"train.py": "print('hi')\n"})
CODE_SHA = hashlib.sha256(CODE).hexdigest()


def fetcher(tmp_path) -> InputFetcher:
    return InputFetcher(cache=InputCache(str(tmp_path / "cache"), 10**8))


def test_the_same_code_archive_is_downloaded_once(peer, tmp_path) -> None:
    peer.route("GET", "/code", lambda r: (200, CODE, "application/gzip"))
    client, cache = AgentClient(peer.url, "t"), fetcher(tmp_path)
    for n in range(3):
        layout = io.Layout.create(str(tmp_path / "w"), f"e-{n}")
        io.fetch_code(client, {"code_url": "/code", "code_sha256": CODE_SHA}, layout, cache)
        with open(os.path.join(layout.repository, "train.py")) as f:
            assert f.read() == "print('hi')\n"
        assert not os.path.exists(os.path.join(layout.root, "code.tgz"))
    assert [r.path for r in peer.requests] == ["/code"]
    # Another archive (another commit) is downloaded; one without a SHA-256 always is.
    other = tarball({"train.py": "print('other')\n"})
    peer.route("GET", "/other", lambda r: (200, other, "application/gzip"))
    layout = io.Layout.create(str(tmp_path / "w"), "e-other")
    spec = {"code_url": "/other", "code_sha256": hashlib.sha256(other).hexdigest()}
    io.fetch_code(client, spec, layout, cache)
    io.fetch_code(
        client, {"code_url": "/code"}, io.Layout.create(str(tmp_path / "w"), "e-x"), cache
    )
    assert [r.path for r in peer.requests] == ["/code", "/other", "/code"]


def test_a_code_archive_that_is_not_what_the_spec_names_is_refused(peer, tmp_path) -> None:
    peer.route("GET", "/code", lambda r: (200, CODE, "application/gzip"))
    layout = io.Layout.create(str(tmp_path / "w"), "e-1")
    with pytest.raises(InvalidInput, match="SHA-256"):
        io.fetch_code(
            AgentClient(peer.url, "t"),
            {"code_url": "/code", "code_sha256": "0" * 64},
            layout,
            fetcher(tmp_path),
        )
    assert os.listdir(layout.repository) == []


def test_a_busy_agent_claims_without_checking_in_each_time(peer, tmp_path, runtime) -> None:
    claims: list[int] = []

    def claim(_req):
        claims.append(1)
        n = len(claims)
        if n > 3:  # then idle
            return 204, b"", "application/json"
        spec = {
            "id": f"e-{n}",
            "attempt": 1,
            "kind": "command",
            "commands": [f"{sys.executable} -c pass"],
            "code_url": "/api/agent/executions/code",
            "code_sha256": CODE_SHA,
            "heartbeat_seconds": 30,
        }
        return 200, json.dumps(spec).encode(), "application/json"

    peer.json_route("POST", "/api/agent/worker", {"id": "w", "drain": False, "upgrade": None})
    peer.route("POST", "/api/agent/claim", claim)
    peer.route("GET", "/api/agent/executions/code", lambda r: (200, CODE, "application/gzip"))
    peer.json_route("POST", "/api/agent/executions/", {"status": "complete", "stop": False})
    loop = AgentLoop(
        client=AgentClient(peer.url, "t"),
        runtime=runtime,
        work_dir=str(tmp_path / "work"),
        name="a",
        claim_wait=0.1,
        check_in_interval=3600,  # within it, only a claim that brought nothing makes one due
        input_fetcher=fetcher(tmp_path),
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        peer.wait_for(lambda reqs: sum(r.path == "/api/agent/claim" for r in reqs) >= 5, 60)
    finally:
        loop.shutdown.set()
        thread.join(30)
    calls = [
        "check-in" if r.path == "/api/agent/worker" else "claim"
        for r in peer.requests
        if r.path in ("/api/agent/worker", "/api/agent/claim")
    ]
    # Checked in first; no check-in between the three executions; after a claim that brought
    # nothing, before every claim again.
    assert calls[:6] == ["check-in", "claim", "claim", "claim", "claim", "check-in"], calls
    # The three executions ran the same commit: its code came over once.
    code = [r for r in peer.requests if r.path == "/api/agent/executions/code"]
    assert len(code) == 1
    statuses = [r for r in peer.requests if r.path.endswith("/status")]
    assert [r.json()["status"] for r in statuses] == ["complete"] * 3
