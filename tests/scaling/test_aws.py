"""Acceptance 2: the `aws` provider against a moto server creates the Auto Scaling group and its
launch template, sets the desired capacity and protects busy instances; its user data, run in a
fresh venv on this machine, installs a working agent from the master alone (its wheel from the
master's worker binary storage, dependencies from the package index) that claims and completes an
execution."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from jupyter_valohai import __version__
from jupyter_valohai.services import free_port, wait_for_port
from tests.e2e.stack import Stack

from .conftest import SCALER_INTERVAL, create_group, environment, wait_for

pytestmark = pytest.mark.slow

REGION = "us-east-1"
HOLD_YAML = """\
- step:
    name: hold
    image: python:3.11
    command:
      - python hold.py
"""
HOLD_PY = """\
import os, time
while not os.path.exists({marker!r}):
    time.sleep(0.2)
print("released")
"""


@pytest.fixture
def moto_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server (EC2, Auto Scaling) on a free port; the AWS SDK's credentials point at it."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    exe = shutil.which("moto_server") or os.path.join(
        os.path.dirname(sys.executable), "moto_server"
    )
    port = free_port()
    with open(tmp_path / "moto.log", "wb") as log:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port("127.0.0.1", port, 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def aws_stack(
    tmp_path, moto_url, agent_wheel, mongo_url, mongo_db_name, redis_url
) -> Iterator[Stack]:
    s = Stack(
        root=str(tmp_path / "stack"),
        mongo_url=mongo_url,
        mongo_db=mongo_db_name,
        redis_url=redis_url,
        master_args=[f"--scaler-interval={SCALER_INTERVAL}", f"--agent-wheel={agent_wheel}"],
    )
    s.start_master()
    try:
        yield s
    finally:
        s.stop()


def asg(moto_url: str, name: str) -> dict:
    client = boto3.client("autoscaling", endpoint_url=moto_url, region_name=REGION)
    found = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return found[0] if found else {}


def in_service(moto_url: str, name: str) -> list[dict]:
    return [
        i for i in asg(moto_url, name).get("Instances", []) if i["LifecycleState"] == "InService"
    ]


@pytest.mark.timeout(900)
def test_aws_group_and_bootstrapped_agent(aws_stack: Stack, moto_url: str, tmp_path: Path) -> None:
    stack = aws_stack
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name=REGION)
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    group = create_group(
        stack,
        slug="aws-pool",
        provider="aws",
        instance_type="t3.micro",
        region=REGION,
        max_size=2,
        idle_timeout=2,
        settings={"endpoint_url": moto_url, "image_id": ami, "availability_zones": [f"{REGION}a"]},
    )
    name = "vh-agent-aws-pool"

    # The scaler made the launch template and the group (empty: nothing is queued).
    made = wait_for("the Auto Scaling group", lambda: asg(moto_url, name), stack)
    assert made["MaxSize"] == 2 and made["DesiredCapacity"] == 0, made
    assert made["LaunchTemplate"]["LaunchTemplateName"] == name
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateName=name, Versions=["$Default"]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == ami and data["InstanceType"] == "t3.micro"
    user_data = base64.b64decode(data["UserData"]).decode()
    assert f"{stack.url}/api/agent/bootstrap.sh?group=aws-pool" in user_data
    assert group["token"] in user_data  # the group's own token, nothing broader

    # Worker binary storage: the bootstrap script needs the group's token, and only its group.
    url = "/api/agent/bootstrap.sh?group=aws-pool"
    assert stack.api("GET", url, token="wrong").status_code == 401
    assert (
        stack.api("GET", "/api/agent/bootstrap.sh?group=local", token=group["token"]).status_code
        == 403
    )
    script = stack.api("GET", url, token=group["token"])
    assert script.status_code == 200 and f"VERSION={__version__}" in script.text, script.text
    (wheel,) = Path(stack.root, "artifacts", "agent", __version__).glob("*.whl")

    # An execution: the scaler asks for one instance and says so.
    marker = tmp_path / "release-the-execution"
    project_id = stack.create_project()["id"]
    files = {"valohai.yaml": HOLD_YAML, "hold.py": HOLD_PY.format(marker=str(marker))}
    identifier = stack.import_package(project_id, files)["identifier"]
    execution = stack.submit(project_id, identifier, "hold", environment="aws-pool")
    (instance,) = wait_for("an instance", lambda: in_service(moto_url, name), stack)
    assert asg(moto_url, name)["DesiredCapacity"] == 1
    reason = stack.api("GET", f"/api/v0/executions/{execution['id']}/").json()["waiting_reason"]
    assert "Scaling up group 'aws-pool' (aws provider)" in reason, reason

    # The instance's user data, run here: a fresh venv, the agent from the master, then it works.
    (tmp_path / "user-data.sh").write_text(user_data)
    home = tmp_path / "agent-home"
    env = {
        "PATH": f"{os.path.dirname(shutil.which('python3') or sys.executable)}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "VH_AGENT_HOME": str(home),
        "VH_AGENT_INSTANCE_ID": instance["InstanceId"],  # what EC2's metadata service would say
        "VH_AGENT_RUNTIME": "local",
    }
    with open(tmp_path / "user-data.log", "wb") as log:
        agent = subprocess.Popen(
            ["sh", str(tmp_path / "user-data.sh")],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def claimed() -> bool:
            if agent.poll() is not None:
                log = (tmp_path / "user-data.log").read_text()[-5000:]
                raise AssertionError(f"the user data script exited:\n{log}")
            answer = stack.api("GET", f"/api/v0/executions/{execution['id']}/").json()
            return bool(answer["status"] == "started")

        wait_for("the bootstrapped agent to claim", claimed, stack, timeout=720)
        # Busy: protected from the group's own scale-in.
        wait_for(
            "the busy instance to be protected",
            lambda: any(i["ProtectedFromScaleIn"] for i in in_service(moto_url, name)),
            stack,
        )
        (worker,) = stack.api("GET", "/api/v0/workers/", params={"environment": "aws-pool"}).json()[
            "results"
        ]
        assert worker["instance_id"] == instance["InstanceId"] and worker["state"] == "busy"
        assert worker["version"] == __version__

        marker.write_text("go")
        assert stack.wait_status(execution["id"], timeout=60)["status"] == "complete"
        # Idle past the timeout: unprotected, drained, terminated; the group is back to 0.
        wait_for(
            "the group to return to 0",
            lambda: asg(moto_url, name)["DesiredCapacity"] == 0 and not in_service(moto_url, name),
            stack,
        )
        wait_for(
            "the scaler to see it",
            lambda: environment(stack, "aws-pool")["scaling"]["size"] == 0,
            stack,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(30)

    decisions = stack.api("GET", "/api/v0/environments/aws-pool/decisions/").json()["results"]
    actions = [d["action"] for d in reversed(decisions)]
    assert actions == ["scale_up", "protect", "unprotect", "drain", "terminate"], decisions

    # The agent ran from its own venv, installed from the wheel the master stored.
    installed = home / "releases" / __version__ / wheel.name
    assert installed.read_bytes() == wheel.read_bytes()
    where = subprocess.run(
        [str(home / "venv" / "bin" / "python"), "-c", "import agent; print(agent.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=env,  # no PYTHONPATH, and not run from the source tree: the venv's own packages
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(home / "venv")), where
