"""The Compute Engine REST API (v1) for managed instance groups, as documented, for the recording
server.

Shapes from cloud.google.com/compute/docs/reference/rest/v1 (instanceTemplates,
instanceGroupManagers, zoneOperations, globalOperations): every mutation answers an ``Operation``
(``compute#operation``) with ``status`` ``RUNNING``; ``operations/{name}/wait`` (and ``GET``)
answers it ``DONE``. A missing resource answers 404 with the documented error body.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from .recording_server import FakeApi, Recorded, Reply

PROJECT = r"/compute/v1/projects/(?P<project>[^/]+)"
TEMPLATES = PROJECT + r"/global/instanceTemplates"
ZONE = PROJECT + r"/zones/(?P<zone>[^/]+)"
MIGS = ZONE + r"/instanceGroupManagers"
MIG = MIGS + r"/(?P<mig>[^/]+)"


class FakeComputeEngine(FakeApi):
    def __init__(self) -> None:
        self.templates: dict[str, dict[str, Any]] = {}
        self.migs: dict[str, dict[str, Any]] = {}
        self.instances: dict[str, dict[str, dict[str, Any]]] = {}  # mig -> name -> managed
        self.operations: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1000)

    def routes(self):
        return [
            ("POST", TEMPLATES, self.insert_template),
            ("GET", TEMPLATES + r"/(?P<name>[^/]+)", self.get_template),
            ("DELETE", TEMPLATES + r"/(?P<name>[^/]+)", self.delete_template),
            ("POST", MIGS, self.insert_mig),
            ("GET", MIG, self.get_mig),
            ("DELETE", MIG, self.delete_mig),
            ("POST", MIG + "/resize", self.resize),
            ("POST", MIG + "/listManagedInstances", self.list_managed_instances),
            ("POST", MIG + "/deleteInstances", self.delete_instances),
            ("POST", MIG + "/setInstanceTemplate", self.set_instance_template),
            ("POST", PROJECT + r"/global/operations/(?P<op>[^/]+)/wait", self.wait),
            ("GET", PROJECT + r"/global/operations/(?P<op>[^/]+)", self.wait),
            ("POST", ZONE + r"/operations/(?P<op>[^/]+)/wait", self.wait),
            ("GET", ZONE + r"/operations/(?P<op>[^/]+)", self.wait),
        ]

    def not_found(self, request: Recorded) -> Reply:
        message = f"The resource '{request.path.removeprefix('/compute/v1/')}' was not found"
        return Reply(
            404,
            {
                "error": {
                    "code": 404,
                    "message": message,
                    "errors": [{"message": message, "domain": "global", "reason": "notFound"}],
                }
            },
        )

    # --- helpers ---------------------------------------------------------------------------

    def _link(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _operation(self, m: re.Match[str], kind: str, target: str) -> Reply:
        op_id = next(self._ids)
        name = f"operation-{op_id}"
        scope = f"/compute/v1/projects/{m['project']}/" + (
            f"zones/{m['zone']}" if "zone" in m.groupdict() else "global"
        )
        op = {
            "kind": "compute#operation",
            "id": str(op_id),
            "name": name,
            "operationType": kind,
            "targetLink": self._link(target),
            "status": "RUNNING",
            "progress": 0,
            "insertTime": "2026-11-29T07:00:00.000-00:00",
            "selfLink": self._link(f"{scope}/operations/{name}"),
        }
        if "zone" in m.groupdict():
            op["zone"] = self._link(f"/compute/v1/projects/{m['project']}/zones/{m['zone']}")
        self.operations[name] = op
        return Reply(200, op)

    def _sync(self, mig: str) -> None:
        """Create or delete managed instances until the group has targetSize of them."""
        group, instances = self.migs[mig], self.instances.setdefault(mig, {})
        zone_path = group["zone"].removeprefix(self.base_url)
        while len(instances) < group["targetSize"]:
            instance_id = next(self._ids)
            name = f"{group['baseInstanceName']}-{instance_id:04x}"
            instances[name] = {
                "instance": self._link(f"{zone_path}/instances/{name}"),
                "id": str(instance_id),
                "instanceStatus": "RUNNING",
                "currentAction": "NONE",
                "version": {"instanceTemplate": group["instanceTemplate"]},
            }
        for name in sorted(instances, reverse=True):
            if len(instances) <= group["targetSize"]:
                break
            del instances[name]

    # --- instance templates ----------------------------------------------------------------

    def insert_template(self, request: Recorded, m: re.Match[str]) -> Reply:
        name = request.body["name"]
        path = f"{m.group(0)}/{name}"
        if name in self.templates:
            return Reply(409, {"error": {"code": 409, "message": f"'{path}' already exists"}})
        template = copy.deepcopy(request.body)
        template.update(kind="compute#instanceTemplate", id=str(next(self._ids)))
        template["selfLink"] = self._link(path)
        self.templates[name] = template
        return self._operation(m, "insert", path)

    def get_template(self, request: Recorded, m: re.Match[str]) -> Reply:
        template = self.templates.get(m["name"])
        return Reply(200, template) if template else self.not_found(request)

    def delete_template(self, request: Recorded, m: re.Match[str]) -> Reply:
        if self.templates.pop(m["name"], None) is None:
            return self.not_found(request)
        return self._operation(m, "delete", m.group(0))

    # --- managed instance groups -----------------------------------------------------------

    def insert_mig(self, request: Recorded, m: re.Match[str]) -> Reply:
        name = request.body["name"]
        path = f"{m.group(0)}/{name}"
        group = copy.deepcopy(request.body)
        group.update(
            kind="compute#instanceGroupManager",
            id=str(next(self._ids)),
            zone=self._link(f"/compute/v1/projects/{m['project']}/zones/{m['zone']}"),
            selfLink=self._link(path),
            instanceGroup=self._link(path.replace("instanceGroupManagers", "instanceGroups")),
        )
        group.setdefault("targetSize", 0)
        self.migs[name] = group
        self._sync(name)
        return self._operation(m, "insert", path)

    def get_mig(self, request: Recorded, m: re.Match[str]) -> Reply:
        group = self.migs.get(m["mig"])
        return Reply(200, group) if group else self.not_found(request)

    def delete_mig(self, request: Recorded, m: re.Match[str]) -> Reply:
        if self.migs.pop(m["mig"], None) is None:
            return self.not_found(request)
        self.instances.pop(m["mig"], None)
        return self._operation(m, "delete", m.group(0))

    def resize(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["mig"] not in self.migs:
            return self.not_found(request)
        self.migs[m["mig"]]["targetSize"] = int(request.query["size"])
        self._sync(m["mig"])
        return self._operation(m, "compute.instanceGroupManagers.resize", m.group(0))

    def list_managed_instances(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["mig"] not in self.migs:
            return self.not_found(request)
        return Reply(200, {"managedInstances": list(self.instances[m["mig"]].values())})

    def delete_instances(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["mig"] not in self.migs:
            return self.not_found(request)
        instances = self.instances[m["mig"]]
        for url in request.body["instances"]:
            instances.pop(url.rsplit("/", 1)[-1], None)
        # deleteInstances lowers the group's targetSize by the number deleted
        self.migs[m["mig"]]["targetSize"] = len(instances)
        return self._operation(m, "compute.instanceGroupManagers.deleteInstances", m.group(0))

    def set_instance_template(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["mig"] not in self.migs:
            return self.not_found(request)
        self.migs[m["mig"]]["instanceTemplate"] = request.body["instanceTemplate"]
        return self._operation(m, "compute.instanceGroupManagers.setInstanceTemplate", m.group(0))

    # --- operations ------------------------------------------------------------------------

    def wait(self, request: Recorded, m: re.Match[str]) -> Reply:
        op = self.operations.get(m["op"])
        if op is None:
            return self.not_found(request)
        op.update(status="DONE", progress=100, endTime="2026-11-29T07:00:01.000-00:00")
        return Reply(200, op)
