"""Acceptance 5: an execution for an environment with no workers and max 0 says why it waits,
through the API and through `vh exec info`."""

from __future__ import annotations

import json

from tests.e2e.stack import Stack

from .conftest import create_group, environment, wait_for


def test_max_zero_group_says_why_through_api_and_cli(stack: Stack, vh) -> None:
    create_group(stack, slug="nowhere", name="Nowhere", provider="local", max_size=0)
    out = vh("exec", "run", "--adhoc", "--environment", "nowhere", "train")
    assert "Execution #1 created" in out.stdout + out.stderr, out.stdout + out.stderr

    execution = stack.api("GET", "/api/v0/executions/").json()["results"][0]
    # the scaler has looked at the group (and left it at 0)
    wait_for("a scaler pass", lambda: environment(stack, "nowhere")["scaling"], stack)
    described = stack.api("GET", f"/api/v0/executions/{execution['id']}/").json()
    assert described["status"] == "queued"
    reason = described["waiting_reason"]
    assert "maximum size of 0 workers" in reason and "'nowhere'" in reason, reason
    assert "max_size" in reason  # what to do about it

    info = vh("exec", "info", "1")
    assert "waiting reason" in info.stdout.lower(), info.stdout
    assert "maximum size of 0 workers" in info.stdout, info.stdout
    as_json = json.loads(vh("--output-format", "json", "exec", "info", "1").stdout)
    assert as_json["waiting_reason"] == reason

    assert environment(stack, "nowhere")["scaling"]["size"] == 0
    listed = stack.api("GET", "/api/v0/workers/", params={"environment": "nowhere"}).json()
    assert listed["count"] == 0


def test_environment_without_provider_or_agents(stack: Stack) -> None:
    from .conftest import commit

    project_id, identifier = commit(stack)
    execution = stack.submit(project_id, identifier, "train")  # the default environment
    reason = stack.api("GET", f"/api/v0/executions/{execution['id']}/").json()["waiting_reason"]
    assert reason.startswith("No worker group serves environment 'local'"), reason

    stack.start_agent()  # an agent with the environment's token: the execution runs
    done = stack.wait_status(execution["id"])
    assert done["status"] == "complete", done
    assert "waiting_reason" not in done
