"""The cloud VMs' first-boot script, run for real by ``sh``: it fetches the master's bootstrap
script with the group's token and runs it with the token and the machine's instance id in its
environment.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest

from jupyter_valohai.errors import InvalidInput
from master.scaling.providers._cloud import bootstrap_script

from .conftest import TOKEN, cloud_group
from .recording_server import FakeApi, RecordingServer, Reply

SERVED = b"""#!/bin/sh
printf '%s\\n' "token=$VH_AGENT_TOKEN" "instance=$VH_AGENT_INSTANCE_ID" "master=$VH_MASTER_URL" \\
    > "$OUT"
"""


class FakeMaster(FakeApi):
    def routes(self):
        return [("GET", "/api/agent/bootstrap.sh", lambda r, m: Reply(200, SERVED))]


@pytest.mark.parametrize(
    "kwargs, instance",
    [
        ({"instance_id": "vh-agent-gpu-t4-0a1b"}, "vh-agent-gpu-t4-0a1b"),
        ({"instance_id_python": "print('vm from metadata')"}, "vm from metadata"),
    ],
    ids=["known-id", "id-from-metadata"],
)
def test_user_data_fetches_and_runs_the_bootstrap(tmp_path, kwargs, instance):
    with RecordingServer(FakeMaster()) as master:
        group = replace(
            cloud_group("openstack"),
            master_url=master.url,
            bootstrap_url=f"{master.url}/api/agent/bootstrap.sh?group=gpu-t4",
        )
        script = tmp_path / "user-data"
        script.write_text(bootstrap_script(group, **kwargs))
        out = tmp_path / "env"
        run = subprocess.run(
            ["sh", str(script)],
            env={"PATH": "/usr/bin:/bin", "OUT": str(out)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        (fetch,) = master.calls("GET", "/api/agent/bootstrap.sh")
    assert fetch.query == {"group": "gpu-t4"}
    assert fetch.headers["authorization"] == f"Token {TOKEN}"
    assert out.read_text().splitlines() == [
        f"token={TOKEN}",
        f"instance={instance}",
        f"master={master.url}",
    ]


def test_quoting_survives_hostile_values(tmp_path):
    group = replace(
        cloud_group("gcp"),
        slug="x\nrm -rf /",
        token="t'; rm -rf / #",
        master_url="https://m/$(id)",
    )
    script = bootstrap_script(group, instance_id="x`id`")
    assert "export VH_AGENT_TOKEN='t'\"'\"'; rm -rf / #'" in script
    assert re.search(r"export VH_MASTER_URL='https://m/\$\(id\)'", script)
    assert "\nrm -rf /" not in script  # the slug's newline stays inside the comment
    check = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_no_bootstrap_url_is_a_clear_error():
    with pytest.raises(InvalidInput) as err:
        bootstrap_script(replace(cloud_group("azure"), bootstrap_url=""))
    assert "bootstrap URL" in str(err.value) and err.value.hint
