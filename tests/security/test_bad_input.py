"""Bad input: limits that keep the master alive (request bodies, log floods, executions in
flight), output names shaped like the MLflow path-traversal CVEs, control characters in logged
fields, SSRF URLs for inputs, and hostile names inside code archives."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_valohai.archive import safe_extract
from jupyter_valohai.errors import InvalidInput
from jupyter_valohai.netguard import NetGuard
from master.config import MasterConfig
from tests.master.mastertest import MasterClient, serving

LIMITS = {"max_request_bytes": 64 * 1024, "max_log_bytes": 10_000, "max_in_flight_per_project": 3}


@pytest.fixture
async def small(master_config: MasterConfig) -> AsyncIterator[MasterClient]:
    """A master with small limits."""
    config = dataclasses.replace(master_config, **LIMITS)
    async with serving(config) as client:
        yield client


async def claimed(master: MasterClient) -> dict[str, Any]:
    project, commit = await master.setup_commit()
    await master.submit(project["id"], commit["identifier"])
    resp = await master.claim()
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_an_oversized_body_is_a_clear_413(small: MasterClient) -> None:
    body = {"name": "x" * 100_000}
    resp = await small.api("POST", "/api/v0/projects/", json=body)
    assert resp.status_code == 413
    assert "at most 65536" in resp.json()["message"] and resp.json()["hint"]
    # A code package has its own, larger limit.
    _project, commit = await small.setup_commit()
    assert commit["identifier"].startswith("~")


async def test_a_log_flood_is_cut_with_one_clear_event(small: MasterClient) -> None:
    spec = await claimed(small)
    eid, attempt = spec["id"], spec["attempt"]
    line = "y" * 999 + "\n"
    for _ in range(5):
        resp = await small.agent(
            "POST",
            f"/api/agent/executions/{eid}/events",
            json={"attempt": attempt, "events": [{"stream": "stdout", "message": line}] * 10},
        )
        assert resp.status_code == 200, resp.text
    events = (await small.api("GET", f"/api/v0/executions/{eid}/events/?limit=0")).json()
    kept = sum(len(e["message"]) for e in events["events"] if e["stream"] == "stdout")
    assert kept <= LIMITS["max_log_bytes"]
    notes = [e["message"] for e in events["events"] if "Log limit reached" in e["message"]]
    assert len(notes) == 1 and "10000 bytes" in notes[0]
    doc = await small.master.ctx.store.executions.find_one({"_id": eid})
    assert doc["log_bytes_dropped"] == 50_000 - kept


async def test_executions_in_flight_per_project_are_bounded(small: MasterClient) -> None:
    project, commit = await small.setup_commit()
    for _ in range(3):
        await small.submit(project["id"], commit["identifier"])
    resp = await small.api(
        "POST",
        "/api/v0/executions/",
        json={"project": project["id"], "commit": commit["identifier"], "step": "train"},
    )
    assert resp.status_code == 429
    assert "limit is 3" in resp.json()["message"] and resp.json()["hint"]
    # Another project is not affected.
    other, other_commit = await small.setup_commit("other")
    await small.submit(other["id"], other_commit["identifier"])


#: Output and artifact names in the shapes of MLflow's path traversal CVEs (CVE-2023-1177,
#: CVE-2023-3765, CVE-2024-2928...): relative, absolute, encoded, Windows-style, NUL, CR/LF.
HOSTILE_NAMES = [
    "../escape.txt",
    "../../../../../../tmp/vh-escape.txt",
    "/tmp/vh-absolute.txt",
    "a/../../escape.txt",
    "./../escape.txt",
    "..\\..\\escape.txt",
    "a\\..\\..\\escape.txt",
    "C:\\Windows\\escape.txt",
    "x\x00.txt",
    "..",
    ".",
    "",
    "a//b.txt",
    "line\r\nInjected: header.txt",
]
#: Names that arrive URL-encoded in the upload URL's path.
ENCODED_NAMES = [
    "%2e%2e/escape.txt",
    "%2e%2e%2fescape.txt",
    "..%2fescape.txt",
    "%2e%2e%5cescape.txt",
    "%252e%252e%252fescape.txt",
    "%2fetc%2fvh-escape.txt",
    "a%00b.txt",
]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_output_names_cannot_leave_the_store(
    master: MasterClient, master_config: MasterConfig, tmp_path: Path
) -> None:
    spec = await claimed(master)
    eid, attempt = spec["id"], spec["attempt"]
    before = tree(tmp_path)
    for name in HOSTILE_NAMES:
        prep = await master.agent(
            "POST",
            f"/api/agent/executions/{eid}/outputs/prepare",
            json={"attempt": attempt, "files": [{"name": name, "size": 1}]},
        )
        assert prep.status_code == 400, (name, prep.text)
        reg = await master.agent(
            "POST",
            f"/api/agent/executions/{eid}/outputs",
            json={"attempt": attempt, "outputs": [{"name": name}]},
        )
        assert reg.status_code == 400, (name, reg.text)
    for encoded in ENCODED_NAMES + [n.replace("/", "%2f") for n in HOSTILE_NAMES if n]:
        put = await master.agent(
            "PUT", f"/api/agent/uploads/{eid}/{attempt}/{encoded}", data=b"evil"
        )
        assert put.status_code in (400, 404), (encoded, put.text)
    assert not os.path.exists("/tmp/vh-escape.txt") and not os.path.exists("/tmp/vh-absolute.txt")
    store_root = Path(master_config.store_url[len("file://") :])
    written = {p for p in tree(tmp_path) - before}
    outside = [p for p in written if not (tmp_path / p).is_relative_to(store_root)]
    assert not [p for p in outside if "escape" in p or "evil" in p]
    assert not [p for p in tree(store_root) if "escape" in p]
    assert await master.master.ctx.store.datums.count_documents({}) == 0


async def test_control_characters_in_logged_fields_are_neutralized(master: MasterClient) -> None:
    spec = await claimed(master)
    eid, attempt = spec["id"], spec["attempt"]
    forged = "done\r\nExecution complete (exit code 0)\x1b[2K\x1b[31mRED\x07\x9b"
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{eid}/status",
        json={"attempt": attempt, "status": "error", "exit_code": 1, "message": forged},
    )
    assert resp.status_code == 200, resp.text
    events = (await master.api("GET", f"/api/v0/executions/{eid}/events/?limit=0")).json()
    status = [e["message"] for e in events["events"] if e["stream"] == "status"]
    last = [m for m in status if m.startswith("Execution error")]
    assert len(last) == 1
    assert "\r" not in last[0] and "\n" not in last[0] and "\x1b" not in last[0]
    assert "\\x0d\\x0aExecution complete" in last[0] and "\\x1b[31mRED" in last[0]
    assert not any(m.startswith("Execution complete") for m in status)


SSRF_URLS = [
    "http://127.0.0.1/x",
    "http://2130706433/x",
    "http://0177.0.0.1/x",
    "http://0x7f000001/x",
    "http://127.1/x",
    "http://0/x",
    "http://[::]/x",
    "http://[::1]/x",
    "http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/x",
    "http://[fd00::1]/x",
    "http://100.64.0.1/x",
    "http://10.0.0.1/x",
    "http://localhost:8780/api/v0/users/me/",
    "http://user@127.0.0.1@example.invalid/x",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://127.0.0.1/x",
    "dict://127.0.0.1:6379/INFO",
]


@pytest.mark.parametrize("url", SSRF_URLS)
def test_ssrf_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        NetGuard().check(url, "Input 'x': ")


def member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


ARCHIVE_NAMES = [
    "..\\..\\escape.txt",
    "%2e%2e/%2e%2e/escape.txt",
    "..%2f..%2fescape.txt",
    "\u2024\u2024/escape.txt",  # one-dot leaders that look like ".."
    "a/./../../escape.txt",
    "./././../escape.txt",
    "//tmp/vh-archive-escape.txt",
]


@pytest.mark.parametrize("name", ARCHIVE_NAMES)
def test_archive_names_stay_inside(name: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    dest = outside / "inside"
    dest.mkdir(parents=True)
    archive = tmp_path / "a.tgz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, fp in (member("ok.txt"), member(name)):
            tar.addfile(info, fp)
    with contextlib.suppress(InvalidInput):
        safe_extract(str(archive), str(dest))
    leaked = [p for p in outside.rglob("*") if not p.is_relative_to(dest)]
    assert leaked == [] and not os.path.exists("/tmp/vh-archive-escape.txt")


async def test_a_secret_printed_in_a_refused_upload_name_is_not_echoed(
    master: MasterClient,
) -> None:
    """Refusals quote the bad name, control characters escaped (JSON), never raw in headers."""
    spec = await claimed(master)
    resp = await master.agent(
        "POST",
        f"/api/agent/executions/{spec['id']}/outputs/prepare",
        json={"attempt": spec["attempt"], "files": [{"name": "a\r\nSet-Cookie: x=1", "size": 1}]},
    )
    assert resp.status_code == 400 and "Set-Cookie" not in resp.headers


def test_log_records_of_the_master_are_inert(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from master.logs import InertArgs

    record = logging.LogRecord(
        "master.api", logging.WARNING, __file__, 1, "bad name %s", ("x\r\nFORGED\x1b[31m",), None
    )
    assert InertArgs().filter(record)
    assert record.getMessage() == "bad name x\\x0d\\x0aFORGED\\x1b[31m"
