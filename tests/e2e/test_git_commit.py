"""Executions on Git commits end to end: a real repository, master and agent, valohai-cli."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from git import Actor, Repo

from .stack import Stack

pytestmark = pytest.mark.slow

ME = Actor("Test Person", "test@example.com")

VALOHAI_YAML = """\
- step:
    name: train
    image: python:3.11
    command:
      - python train.py
"""

TRAIN_PY = """\
import os
print("this is the code of commit {n}")
with open(os.path.join(os.environ["VH_OUTPUTS_DIR"], "which.txt"), "w") as f:
    f.write("{n}")
"""


def commit_files(repo: Repo, files: dict[str, str], message: str) -> str:
    root = Path(str(repo.working_tree_dir))
    for name, text in files.items():
        (root / name).write_text(text)
    repo.index.add(list(files))
    return str(repo.index.commit(message, author=ME, committer=ME).hexsha)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Repo, str, str]:
    """A repository with two commits whose train.py say "one" and "two"."""
    repo = Repo.init(tmp_path / "repo", initial_branch="main")
    first = commit_files(
        repo, {"valohai.yaml": VALOHAI_YAML, "train.py": TRAIN_PY.format(n="one")}, "one"
    )
    second = commit_files(repo, {"train.py": TRAIN_PY.format(n="two")}, "two")
    return repo, first, second


def code_archives(stack: Stack) -> list[str]:
    code = Path(stack.root) / "artifacts" / "code"
    return sorted(p.name for p in code.glob("*.tgz")) if code.exists() else []


def output_text(stack: Stack, execution_id: str, name: str) -> str:
    data = stack.api("GET", "/api/v0/data/", params={"output_execution": execution_id}).json()
    datum = next(d for d in data["results"] if d["name"] == name)
    resp = stack.api("GET", f"/api/v0/data/{datum['id']}/download/")
    assert resp.status_code == 200, resp.text
    return resp.text


def run_and_wait(stack: Stack, project_id: str, commit: str) -> dict[str, Any]:
    execution = stack.submit(project_id, commit, "train")
    final = stack.wait_status(execution["id"], timeout=120)
    assert final["status"] == "complete", stack.explain(execution["id"])
    return final


def test_runs_the_code_of_the_commit_it_names(master: Stack, repo: tuple[Repo, str, str]) -> None:
    git_repo, first, second = repo
    project = master.create_project("git-e2e")
    linked = master.api(
        "PATCH",
        f"/api/v0/projects/{project['id']}/",
        json={"repository": {"url": str(git_repo.working_tree_dir), "ref": "main"}},
    )
    assert linked.status_code == 200, linked.text
    fetched = master.api("POST", f"/api/v0/projects/{project['id']}/fetch/").json()
    assert [c["identifier"] for c in fetched["commits"]] == [second, first]
    listed = master.api("GET", "/api/v0/commits/", params={"project": project["id"]}).json()
    assert {c["identifier"] for c in listed["results"]} == {first, second}

    one = run_and_wait(master, project["id"], first)
    logs = "\n".join(e["message"] for e in master.events(one["id"]))
    assert "this is the code of commit one" in logs, master.explain(one["id"])
    assert output_text(master, one["id"], "which.txt") == "one"
    assert len(code_archives(master)) == 1

    again = run_and_wait(master, project["id"], first)
    assert output_text(master, again["id"], "which.txt") == "one"
    assert len(code_archives(master)) == 1  # the same commit twice stores one archive

    two = run_and_wait(master, project["id"], second)
    assert output_text(master, two["id"], "which.txt") == "two"
    assert len(code_archives(master)) == 2

    missing = master.api(
        "POST",
        "/api/v0/executions/",
        json={"project": project["id"], "commit": "f" * 40, "step": "train"},
    )
    assert missing.status_code == 400 and "fetch" in missing.json()["hint"]


def test_valohai_cli_fetch_and_run_on_a_commit(
    master: Stack, repo: tuple[Repo, str, str], tmp_path: Path
) -> None:
    git_repo, first, second = repo
    workdir = str(git_repo.working_tree_dir)
    env = dict(os.environ, VALOHAI_CONFIG_DIR=str(tmp_path / "vh-config"))
    env["VALOHAI_PROJECT_DIR"] = workdir
    (tmp_path / "vh-config").mkdir()
    exe = os.path.join(os.path.dirname(sys.executable), "vh")

    def vh(*args: str) -> str:
        proc = subprocess.run(
            [exe, *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        shown = " ".join("<token>" if a == master.admin_token else a for a in args)
        assert proc.returncode == 0, f"vh {shown}:\n{proc.stdout}\n{proc.stderr}\n{master.logs()}"
        return proc.stdout + proc.stderr

    vh("login", "--host", master.url, "--token", master.admin_token, "--yes")
    vh("project", "create", "--name", "cli-git", "--owner", "admin", "--yes")
    project = master.api("GET", "/api/v0/projects/").json()["results"][0]
    linked = master.api(
        "PATCH",
        f"/api/v0/projects/{project['id']}/",
        json={"repository": {"url": "file://" + workdir}},
    )
    assert linked.status_code == 200, linked.text

    out = vh("project", "fetch")
    assert "2 new commits were fetched!" in out and f"Fetched: main ({second})" in out
    assert "fetched" not in vh("project", "fetch")  # nothing new (the CLI logs that at info)

    created = vh("exec", "run", "train", "--commit", first)
    assert "Execution #1 created" in created, created
    execution = master.api("GET", "/api/v0/executions/").json()["results"][0]
    assert execution["commit"]["identifier"] == first
    final = master.wait_status(execution["id"], timeout=120)
    assert final["status"] == "complete", master.explain(execution["id"])
    assert output_text(master, execution["id"], "which.txt") == "one"
    # Without --commit the CLI uses the working copy's HEAD, the second commit.
    vh("exec", "run", "train")
    latest = master.api("GET", "/api/v0/executions/").json()["results"][0]
    assert latest["commit"]["identifier"] == second
