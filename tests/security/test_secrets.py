"""Project secrets: encrypted at rest, injected only into the running execution, never answered,
masked by value in every log line, event, metadata entry, status and the archived log file, also
when one arrives split across two chunks of output."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import string
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from master.api.routes import ROUTES
from master.services.secrets import Masker
from tests.e2e.stack import Stack
from tests.master.mastertest import MasterClient

from .test_authorization import PARAM

ALPHABET = string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>?@[]^_{|}~\"\\' é€"


def make_secrets(n: int, seed: int = 9) -> dict[str, str]:
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        length = rng.randint(8, 48)
        out[f"SECRET_{i:03d}"] = "".join(rng.choice(ALPHABET) for _ in range(length))
    return out


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = [name for name, value in secrets.items() if value in text]
    # JSON answers escape quotes, backslashes and non-ASCII: look for those spellings too.
    found += [n for n, v in secrets.items() if json.dumps(v)[1:-1] in text and n not in found]
    return found


def test_masker_holds_what_could_begin_a_secret() -> None:
    masker = Masker(["hunter22", "abc"])  # "abc" is too short to mask
    events = [
        {"stream": "stdout", "message": "pw=hun"},
        {"stream": "stderr", "message": "other"},
        {"stream": "stdout", "message": "ter22 ok\n"},
    ]
    out, carry = masker.stream(events, {})
    assert carry == {}
    assert "".join(e["message"] for e in out if e["stream"] == "stdout") == "pw=*** ok\n"
    out, carry = masker.stream([{"stream": "stdout", "message": "end hunte"}], {})
    assert out[0]["message"] == "end " and carry == {"stdout": "hunte"}
    assert Masker.flush(carry) == [{"stream": "stdout", "message": "***"}]
    assert masker.mask_data({"k": ["x hunter22 y"], "hunter22": 1}) == {"k": ["x *** y"], "***": 1}


async def set_secrets(master: MasterClient, pid: str, secrets: dict[str, str]) -> None:
    async def one(name: str, value: str) -> None:
        body = {"name": name, "value": value, "secret": True}
        resp = await master.api("POST", f"/api/v0/projects/{pid}/environment-variables/", json=body)
        assert resp.status_code == 201, resp.text
        assert value not in resp.text and resp.json()["value"] is None

    await asyncio.gather(*(one(n, v) for n, v in secrets.items()))
    plain = {"name": "PLAIN", "value": "visible", "secret": False}
    resp = await master.api("POST", f"/api/v0/projects/{pid}/environment-variables/", json=plain)
    assert resp.status_code == 201


def agent_events(secrets: dict[str, str], rng: random.Random) -> list[list[dict[str, Any]]]:
    """Batches of events mentioning every secret: whole, split inside a batch, split across
    batches, on stdout and stderr, in metadata lines."""
    batches: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    for i, value in enumerate(secrets.values()):
        stream = "stderr" if i % 3 == 0 else "stdout"
        cut = rng.randint(1, len(value) - 1)
        if i % 4 == 0:
            batch.append({"stream": stream, "message": f"whole {value} line\n"})
        elif i % 4 == 1:  # split inside one batch
            batch.append({"stream": stream, "message": f"{'x' * 30}{value[:cut]}"})
            batch.append({"stream": stream, "message": f"{value[cut:]} rest\n"})
        elif i % 4 == 2:  # split across two batches
            batch.append({"stream": stream, "message": f"begin {value[:cut]}"})
            batches.append(batch)
            batch = [{"stream": stream, "message": f"{value[cut:]} end\n"}]
        else:  # a metrics line
            batch.append({"stream": "stdout", "message": json.dumps({"token": value, "i": i})})
        if len(batch) > 10:
            batches.append(batch)
            batch = []
    batches.append(batch)
    return batches


async def test_hundred_secrets_never_leak(master: MasterClient, master_config: Any) -> None:
    secrets = make_secrets(100)
    project, commit = await master.setup_commit("secretive")
    pid = project["id"]
    await set_secrets(master, pid, secrets)
    execution = await master.submit(pid, commit["identifier"], title="uses secrets")
    eid = execution["id"]
    assert not leaks(json.dumps(execution), secrets)
    assert "SECRET_000" not in execution["environment_variables"]
    assert execution["environment_variables"]["PLAIN"] == "visible"

    spec = (await master.claim()).json()  # the agent, and only the agent, gets the values
    assert spec["id"] == eid
    assert {k: spec["environment_variables"][k] for k in secrets} == secrets
    attempt = spec["attempt"]
    rng = random.Random(5)
    for batch in agent_events(secrets, rng):
        meta = [
            {"time": "2026-01-01T00:00:00", "data": json.loads(e["message"])}
            for e in batch
            if e["message"].startswith("{")
        ]
        resp = await master.agent(
            "POST",
            f"/api/agent/executions/{eid}/events",
            json={"attempt": attempt, "events": batch, "metadata": meta},
        )
        assert resp.status_code == 200, resp.text
    # While it runs: the live events, the stream and the execution hold no secret.
    live = await master.api("GET", f"/api/v0/executions/{eid}/events/", params={"limit": 0})
    assert live.status_code == 200 and live.json()["total"] > 100
    assert not leaks(live.text, secrets)
    last = list(secrets.values())[-1]
    final = {"attempt": attempt, "status": "error", "exit_code": 3, "message": f"bad {last}"}
    resp = await master.agent("POST", f"/api/agent/executions/{eid}/status", json=final)
    assert resp.status_code == 200, resp.text

    answers = await walk_gets(master, [pid, eid, f"{pid}:{execution['counter']}"])
    assert len(answers) >= 8
    for path, text in answers.items():
        assert not leaks(text, secrets), path
    events = (await master.api("GET", f"/api/v0/executions/{eid}/events/?limit=0")).json()
    text = "".join(e["message"] for e in events["events"] if e["stream"] != "status")
    assert text.count("***") >= 100  # each secret shows up, masked
    # At rest: the archive, every Mongo document and every Redis value.
    path = os.path.join(master_config.store_url[len("file://") :], "logs", f"{eid}.jsonl.gz")
    with gzip.open(path, "rt") as fp:
        archived = fp.read()
    assert "***" in archived and not leaks(archived, secrets)
    store = master.master.ctx.store
    for name in await store.db.list_collection_names():
        async for doc in store.db[name].find({}):
            assert not leaks(str(doc), secrets), name
    client = redis.Redis.from_url(master_config.redis_url)
    try:
        for key in client.keys("*"):
            kind = client.type(key)
            dumped = repr(client.xrange(key) if kind == b"stream" else client.dump(key))
            assert not leaks(dumped, secrets), key
    finally:
        client.close()


async def walk_gets(master: MasterClient, ids: list[str]) -> dict[str, str]:
    """Every GET route of the API with each of ``ids`` as path parameter: the 2xx answers."""
    answers: dict[str, str] = {}
    for route in ROUTES:
        if "get" not in route.ops or getattr(route.handler, "auth", "user") != "user":
            continue
        names = PARAM.findall(route.path)
        for value in ids if names else [""]:
            path = PARAM.sub(value, route.path)
            resp = await asyncio.to_thread(
                requests.get,
                master.url + path,
                headers={"Authorization": f"Token {master.admin_token}"},
                params={"limit": 0} if "events" in path else {"project": ids[0]},
                timeout=30,
                stream=True,
            )
            try:
                if resp.status_code < 300:
                    if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                        # An ended execution's stream ends; a project's stream: read a while.
                        text = await asyncio.to_thread(read_some, resp)
                    else:
                        text = resp.text
                    answers[path] = text
            finally:
                resp.close()
    return answers


def read_some(resp: requests.Response, limit: int = 1 << 20) -> str:
    text = ""
    for chunk in resp.iter_content(65536, decode_unicode=True):
        text += chunk
        if "event: end" in text or len(text) > limit or text.count("event: execution") >= 1:
            break
    return text


async def test_secret_values_are_checked(master: MasterClient) -> None:
    project = await master.create_project("checks")
    url = f"/api/v0/projects/{project['id']}/environment-variables/"
    for body in (
        {"name": "1BAD", "value": "xxxxxx", "secret": True},
        {"name": "SHORT", "value": "abc", "secret": True},
        {"name": "OK", "value": 3},
        {"name": "OK", "value": "v", "secret": "yes"},
    ):
        resp = await master.api("POST", url, json=body)
        assert resp.status_code == 400, (body, resp.text)
    resp = await master.api("DELETE", f"{url}NOPE/")
    assert resp.status_code == 404


# --- end to end: a real agent and process print the secrets -------------------------------------

E2E_YAML = """\
- step:
    name: leak
    image: python:3.11
    command: python leak.py
"""

LEAK_PY = """\
import os, sys, json
names = sorted(k for k in os.environ if k.startswith("SECRET_"))
for name in names:
    print("value of", name, "is", os.environ[name], flush=True)
value = os.environ[names[0]]
# A line longer than the agent's 64 KiB piece: the secret straddles two events.
print("x" * (65536 - 4) + value + " tail", flush=True)
sys.stderr.write("err " + os.environ[names[1]] + "\\n")
print(json.dumps({"token": os.environ[names[2]]}), flush=True)
open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "n.txt"), "w").write(str(len(names)))
"""


@pytest.fixture
def stack(tmp_path: Any, mongo_url: str, mongo_db_name: str, redis_url: str) -> Iterator[Stack]:
    s = Stack(str(tmp_path / "stack"), mongo_url, mongo_db_name, redis_url)
    try:
        s.start_master()
        s.start_agent()
        yield s
    finally:
        s.stop()


def test_a_real_execution_gets_its_secrets_and_logs_them_masked(stack: Stack) -> None:
    secrets = make_secrets(12, seed=4)
    pid = stack.create_project("e2e-secrets")["id"]
    for name, value in secrets.items():
        resp = stack.api(
            "POST",
            f"/api/v0/projects/{pid}/environment-variables/",
            json={"name": name, "value": value, "secret": True},
        )
        assert resp.status_code == 201, resp.text
    commit = stack.import_package(pid, {"valohai.yaml": E2E_YAML, "leak.py": LEAK_PY})
    execution = stack.submit(pid, commit["identifier"], "leak")
    done = stack.wait_status(execution["id"], timeout=120)
    assert done["status"] == "complete", stack.explain(execution["id"])
    events = stack.api(
        "GET", f"/api/v0/executions/{execution['id']}/events/", params={"limit": 0}
    ).text
    assert not leaks(events, secrets)
    assert events.count("is ***") == len(secrets)  # every one reached the process, masked
    assert "*** tail" in events and "err ***" in events
    data = stack.api("GET", "/api/v0/data/", params={"output_execution": execution["id"]})
    datum = data.json()["results"][0]
    content = stack.api("GET", f"/api/v0/data/{datum['id']}/download/").text
    assert content == str(len(secrets))
    archive = os.path.join(stack.root, "artifacts", "logs", f"{execution['id']}.jsonl.gz")
    with gzip.open(archive, "rt") as fp:
        assert not leaks(fp.read(), secrets)
