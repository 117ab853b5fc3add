"""The fault suite: agents SIGKILLed at every point of an execution, the master killed and
restarted during a burst of submissions, Redis restarted empty during a burst.

Afterwards, from MongoDB (the source of truth): every acknowledged submission exists, every
execution reached exactly one terminal state (its status history says so), no output was
registered twice or by a stale attempt, and an execution whose live log was lost says so with a
gap event. The test prints the counts.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from typing import Any

import pytest
import requests
from pymongo import MongoClient

from jupyter_valohai.models import COMPLETE, TERMINAL_STATUSES

from .conftest import Faults

pytestmark = pytest.mark.slow

YAML = """\
- step:
    name: work
    image: python:3.11
    command: python work.py
"""

WORK = """\
import os, time
for i in range(12):
    print("step", i, flush=True)
    time.sleep(0.03)
with open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "result.txt"), "w") as f:
    f.write(os.environ["VH_JOB_ID"])
"""

GAP = "the log has a gap here"
AGENTS = 3
KILLS = 50


class Submitter:
    """Submits executions from a thread; remembers those the master acknowledged (201)."""

    def __init__(self, faults: Faults, project: str, commit: str) -> None:
        self.faults, self.project, self.commit = faults, project, commit
        self.acked: list[str] = []
        self.refused: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit_one(self) -> None:
        stack = self.faults.stack
        body = {"project": self.project, "commit": self.commit, "step": "work"}
        try:
            resp = requests.post(
                stack.url + "/api/v0/executions/",
                json=body,
                headers={"Authorization": f"Token {stack.admin_token}"},
                timeout=10,
            )
        except requests.RequestException as exc:
            self.refused[type(exc).__name__] += 1
            return
        if resp.status_code == 201:
            self.acked.append(resp.json()["id"])
        else:
            self.refused[str(resp.status_code)] += 1
            if resp.status_code >= 500:
                self.errors.append(resp.text[:300])

    def start(self, interval: float = 0.15) -> None:
        def run() -> None:
            while not self._stop.is_set():
                self.submit_one()
                self._stop.wait(interval)

        self._stop.clear()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)


def phase_of(log_path: str, work_dir: str) -> str:
    """Where the agent was when it died: from its last log lines and its execution directory
    (code.tgz and repository/ while downloading, outputs/ when the run wrote its output)."""
    with open(log_path, errors="replace") as fp:
        lines = [line for line in fp.read().splitlines() if "xecution" in line]
    last = lines[-1] if lines else ""
    if "outputs registered" in last:
        return "final status"
    if "Claimed execution" not in last:
        return "claim"  # between executions: claiming the next one
    eid = last.split("Claimed execution", 1)[1].split()[0]
    root = os.path.join(work_dir, eid)
    if not os.path.isdir(root):
        return "claim"
    if not os.path.exists(os.path.join(root, "repository", "work.py")):
        return "download"
    if not os.path.exists(os.path.join(root, "outputs", "result.txt")):
        return "run"
    return "upload"


def wait_for_line(log: str, text: str, count: int, timeout: float) -> None:
    """Wait until ``text`` is in the log ``count`` times (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, errors="replace") as fp:
            if fp.read().count(text) >= count:
                return
        time.sleep(0.005)


def kill_agents(faults: Faults, rng: random.Random, until: int) -> None:
    """Each slot: wait for its agent to claim, SIGKILL it a random moment later, start another."""
    lock = threading.Lock()

    def slot(name: str) -> None:
        seen = 0
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            with lock:
                if len(faults.kills) >= until:
                    return
            log = faults.agent_logs[name]
            with open(log, errors="replace") as fp:
                claims = fp.read().count("Claimed execution")
            if claims <= seen:
                time.sleep(0.02)
                continue
            seen = claims
            if rng.random() < 0.25:  # let some attempts finish
                continue
            if rng.random() < 0.15:  # the narrow end: right after the outputs were registered
                wait_for_line(log, "outputs registered", claims, 3.0)
            else:
                time.sleep(rng.choice([0.0, 0.0, rng.uniform(0.0, 0.9)]))
            phase = phase_of(log, os.path.join(faults.stack.root, name))
            with lock:
                faults.kill_agent(name, phase)
                name = faults.start_agent()
                seen = 0

    names = [faults.start_agent() for _ in range(AGENTS)]
    threads = [threading.Thread(target=slot, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)


def wait_all_terminal(faults: Faults, db: Any, ids: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    query = {"_id": {"$in": ids}, "status": {"$nin": sorted(TERMINAL_STATUSES)}}
    while db.executions.count_documents(query):
        if time.monotonic() > deadline:
            left = collections.Counter(d["status"] for d in db.executions.find(query))
            raise AssertionError(f"executions never finished: {dict(left)}\n{faults.stack.logs()}")
        time.sleep(0.5)


@pytest.mark.timeout(420)
def test_faults(faults: Faults, mongo_url: str, mongo_db_name: str) -> None:
    rng = random.Random(20261129)
    stack = faults.stack
    pid = stack.create_project("faults")["id"]
    commit = stack.import_package(pid, {"valohai.yaml": YAML, "work.py": WORK})["identifier"]
    submitter = Submitter(faults, pid, commit)
    for _ in range(40):
        submitter.submit_one()
    assert len(submitter.acked) == 40

    # 1. SIGKILL agents at random points of their executions.
    kill_agents(faults, rng, KILLS)
    assert len(faults.kills) >= KILLS
    for _ in range(AGENTS - len(faults.agents)):
        faults.start_agent()

    # 2. Kill and restart the master during a burst of submissions.
    submitter.start()
    for _ in range(3):
        time.sleep(rng.uniform(0.5, 1.5))
        faults.restart_master()
    time.sleep(1)
    submitter.stop()

    # 3. Restart Redis, empty, during a burst of submissions.
    submitter.start()
    for _ in range(3):
        time.sleep(rng.uniform(0.5, 1.5))
        faults.restart_redis()
    time.sleep(1)
    submitter.stop()

    client: MongoClient = MongoClient(mongo_url, tz_aware=True)
    try:
        db = client[mongo_db_name]
        all_ids = [d["_id"] for d in db.executions.find({}, {"_id": 1})]
        wait_all_terminal(faults, db, all_ids)
        report = check_invariants(faults, db, submitter, all_ids)
    finally:
        client.close()
    phases = dict(collections.Counter(faults.kills))
    print(
        f"\nfault suite: {len(faults.kills)} agent kills {phases}, "
        f"{faults.master_restarts} master restarts, {faults.redis_restarts} Redis restarts; "
        f"{len(all_ids)} executions {report['statuses']}, {len(submitter.acked)} acknowledged, "
        f"refused: {dict(submitter.refused)}; lost submissions: {report['lost']}, "
        f"double terminal states: {report['double_terminal']}, "
        f"double-registered outputs: {report['double_outputs']}, "
        f"outputs of stale attempts: {report['stale_outputs']}, "
        f"executions with a log gap: {report['gaps']}, silent log losses: {report['silent']}"
    )
    if submitter.errors:
        print("5xx answers to submissions:", submitter.errors[:3])
        with open(os.path.join(stack.root, "logs", "master.log"), errors="replace") as fp:
            log = fp.read()
        at = log.find("500 POST /api/v0/executions/")
        print(log[max(at - 4000, 0) : at + 200] if at >= 0 else log[-4000:])
    assert faults.master_restarts >= 3 and faults.redis_restarts >= 3
    assert report["lost"] == 0
    assert report["double_terminal"] == 0
    assert report["double_outputs"] == 0 and report["stale_outputs"] == 0
    assert report["silent"] == 0
    assert not submitter.errors  # while Redis restarts, submissions are still acknowledged
    assert report["statuses"].get(COMPLETE, 0) >= len(all_ids) // 2


def check_invariants(
    faults: Faults, db: Any, submitter: Submitter, all_ids: list[str]
) -> dict[str, Any]:
    lost = len(set(submitter.acked) - set(all_ids))
    statuses: collections.Counter[str] = collections.Counter()
    double_terminal = double_outputs = stale_outputs = gaps = silent = 0
    for doc in db.executions.find({"_id": {"$in": all_ids}}):
        statuses[doc["status"]] += 1
        history = [h.split()[0] for h in doc.get("history") or []]
        terminal = [s for s in history if s in TERMINAL_STATUSES]
        if len(terminal) != 1 or history[-1] != doc["status"]:
            double_terminal += 1
        names = collections.Counter(
            d["name"] for d in db.datums.find({"output_execution": doc["_id"]})
        )
        double_outputs += sum(n - 1 for n in names.values() if n > 1)
        if doc["status"] == COMPLETE:
            if names.get("result.txt") != 1:
                double_outputs += 1  # a complete execution without its one output
            stale_outputs += db.datums.count_documents(
                {"output_execution": doc["_id"], "attempt": {"$ne": doc["attempt"]}}
            )
        events = faults.stack.events(doc["_id"])
        text = "\n".join(e["message"] for e in events if e["stream"] == "status")
        if GAP in text:
            gaps += 1
        elif "Execution created" not in text:
            silent += 1  # its first events are gone and nothing says so
            print("silent log loss:", doc["_id"], doc.get("history"), text[:500])
    return {
        "lost": lost,
        "statuses": dict(statuses),
        "double_terminal": double_terminal,
        "double_outputs": double_outputs,
        "stale_outputs": stale_outputs,
        "gaps": gaps,
        "silent": silent,
    }
