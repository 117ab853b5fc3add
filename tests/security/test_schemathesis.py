"""schemathesis against the master's own OpenAPI description: whatever it generates, the master
answers without a 5xx, with a documented status code and a JSON content type.

Each operation is fuzzed as the administrator (who sees everything, so requests reach the
deepest code) and, for the agent API, with a worker-group token. A project, a commit and an
execution exist, so some generated ids hit real objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.failures import FailureGroup

from jupyter_valohai.models import new_token
from jupyter_valohai.services import ManagedProcess
from tests.e2e.stack import Stack

#: No 5xx, documented status codes, JSON where JSON is declared, headers as described, and the
#: authentication the description states (no answer without credentials).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,
]
ADMIN = new_token()
AGENT = new_token()


@pytest.fixture(scope="module")
def fuzzed_master(
    tmp_path_factory: pytest.TempPathFactory,
    mongo_server: ManagedProcess,
    redis_server: ManagedProcess,
) -> Iterator[Stack]:
    root = str(tmp_path_factory.mktemp("schemathesis"))
    stack = Stack(
        root,
        mongo_server.url,
        f"vh_fuzz_{uuid.uuid4().hex[:8]}",
        redis_server.url.replace("/0", "/3"),  # a database of its own on the shared Redis
        master_args=["--MasterApp.max_claim_wait=0.2"],
        admin_token=ADMIN,
        agent_token=AGENT,
    )
    try:
        stack.start_master()
        pid = stack.create_project("fuzz")["id"]
        commit = stack.import_package(pid, {"valohai.yaml": YAML, "train.py": "print(1)\n"})
        stack.submit(pid, commit["identifier"], "train")
        yield stack
    finally:
        stack.stop()


YAML = """\
- step:
    name: train
    image: python:3.11
    command: python train.py
"""


def test_no_server_errors(fuzzed_master: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_master.url}/api/v0/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: Any) -> None:
            token = AGENT if case.path.startswith("/api/agent/") else ADMIN
            response = case.call(headers={"Authorization": f"Token {token}"}, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, FailureGroup) as exc:  # collected: one report of all
                failures.append(f"{case.method} {case.formatted_path}: {exc}"[:600])

        fuzz()
    print(f"\nschemathesis: {operations} operations, {len(failures)} failures")
    assert operations >= 40
    assert not failures, "\n\n".join(failures[:20])
