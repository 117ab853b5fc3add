from __future__ import annotations

from mastertest import MasterClient


async def test_login_and_project(master: MasterClient) -> None:
    me = await master.api("GET", "/api/v0/users/me/")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "admin"
    project, commit = await master.setup_commit()
    assert commit["identifier"].startswith("~")
    execution = await master.submit(project["id"], commit["identifier"], parameters={"epochs": 3})
    assert execution["status"] == "queued"
    claim = await master.claim()
    assert claim.status_code == 200, claim.text
    spec = claim.json()
    assert spec["commands"] == ["python train.py --epochs=3 --lr=0.1"]
