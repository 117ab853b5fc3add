"""Azure Resource Manager's Microsoft.Compute scale-set API, as documented, for the recording
server.

Shapes from the REST reference (learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets and
.../virtual-machine-scale-set-vms) and ARM's asynchronous operations guide
(learn.microsoft.com/azure/azure-resource-manager/management/async-operations): a long-running PUT
answers 201 with the resource (provisioningState "Creating") and an ``Azure-AsyncOperation`` header;
a POST or DELETE answers 202 with ``Azure-AsyncOperation`` and ``Location``; the operation resource
says ``{"status": "Succeeded"}``. ``Retry-After: 0`` keeps the SDK's polling quick.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from .recording_server import FakeApi, Recorded, Reply

SCALE_SET = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[^/]+)"
)
OPERATION = (
    r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute"
    r"/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)"
)


class FakeAzureCompute(FakeApi):
    def __init__(self) -> None:
        self.scale_sets: dict[str, dict[str, Any]] = {}
        self.vms: dict[str, dict[str, dict[str, Any]]] = {}
        self._ids = itertools.count()
        self._ops = itertools.count(1)

    def routes(self):
        return [
            ("PUT", SCALE_SET, self.put_scale_set),
            ("GET", SCALE_SET, self.get_scale_set),
            ("PATCH", SCALE_SET, self.patch_scale_set),
            ("DELETE", SCALE_SET, self.delete_scale_set),
            ("POST", SCALE_SET + "/delete", self.delete_instances),
            ("GET", SCALE_SET + "/virtualMachines", self.list_vms),
            ("GET", SCALE_SET + r"/virtualMachines/(?P<vm>[^/]+)", self.get_vm),
            ("PUT", SCALE_SET + r"/virtualMachines/(?P<vm>[^/]+)", self.put_vm),
            ("GET", OPERATION, self.get_operation),
        ]

    def not_found(self, request: Recorded) -> Reply:
        return _error(404, "ResourceNotFound", f"The resource {request.path!r} was not found.")

    # --- helpers ---------------------------------------------------------------------------

    def _async_headers(self, m: re.Match[str], location: bool = False) -> dict[str, str]:
        loc = self.scale_sets.get(m["name"], {}).get("location", "westeurope")
        op = f"{self.base_url}/subscriptions/{m['sub']}/providers/Microsoft.Compute/locations/{loc}"
        op += f"/operations/op-{next(self._ops)}?api-version=2024-11-01"
        headers = {"Azure-AsyncOperation": op, "Retry-After": "0"}
        if location:
            headers["Location"] = op + "&monitor=true"
        return headers

    def _resize(self, m: re.Match[str], capacity: int) -> None:
        vms = self.vms.setdefault(m["name"], {})
        while len(vms) < capacity:
            instance_id = str(next(self._ids))
            vms[instance_id] = {
                "id": f"{m.group(0)}/virtualMachines/{instance_id}",
                "name": f"{m['name']}_{instance_id}",
                "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                "instanceId": instance_id,
                "location": self.scale_sets[m["name"]]["location"],
                "properties": {
                    "provisioningState": "Succeeded",
                    "latestModelApplied": True,
                    "protectionPolicy": {"protectFromScaleIn": False},
                },
            }
        # scale-in removes the newest unprotected VMs first (the default policy's tie-break)
        for instance_id in sorted(vms, key=int, reverse=True):
            if len(vms) <= capacity:
                break
            if not vms[instance_id]["properties"]["protectionPolicy"]["protectFromScaleIn"]:
                del vms[instance_id]

    # --- scale sets ------------------------------------------------------------------------

    def put_scale_set(self, request: Recorded, m: re.Match[str]) -> Reply:
        body = copy.deepcopy(request.body)
        body.update(id=m.group(0), name=m["name"], type="Microsoft.Compute/virtualMachineScaleSets")
        body.setdefault("properties", {})["provisioningState"] = "Succeeded"
        body["properties"]["uniqueId"] = "00000000-0000-0000-0000-000000000001"
        self.scale_sets[m["name"]] = body
        self._resize(m, int(body.get("sku", {}).get("capacity", 0)))
        answer = copy.deepcopy(body)
        answer["properties"]["provisioningState"] = "Creating"
        return Reply(201, answer, self._async_headers(m))

    def get_scale_set(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["name"] not in self.scale_sets:
            return self.not_found(request)
        return Reply(200, self.scale_sets[m["name"]])

    def patch_scale_set(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["name"] not in self.scale_sets:
            return self.not_found(request)
        scale_set = self.scale_sets[m["name"]]
        scale_set["sku"].update(request.body.get("sku", {}))
        self._resize(m, int(scale_set["sku"]["capacity"]))
        return Reply(200, scale_set, self._async_headers(m))

    def delete_scale_set(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["name"] not in self.scale_sets:
            return Reply(204)
        headers = self._async_headers(m, location=True)
        del self.scale_sets[m["name"]]
        self.vms.pop(m["name"], None)
        return Reply(202, None, headers)

    def delete_instances(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["name"] not in self.scale_sets:
            return self.not_found(request)
        vms = self.vms[m["name"]]
        for instance_id in request.body["instanceIds"]:
            if instance_id not in vms:
                return _error(400, "InvalidParameter", f"Instance {instance_id} not found.")
        for instance_id in request.body["instanceIds"]:
            del vms[instance_id]
        # deleting instances lowers the scale set's capacity
        self.scale_sets[m["name"]]["sku"]["capacity"] = len(vms)
        return Reply(202, None, self._async_headers(m, location=True))

    # --- scale-set VMs ---------------------------------------------------------------------

    def list_vms(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["name"] not in self.scale_sets:
            return self.not_found(request)
        return Reply(200, {"value": list(self.vms[m["name"]].values())})

    def get_vm(self, request: Recorded, m: re.Match[str]) -> Reply:
        vm = self.vms.get(m["name"], {}).get(m["vm"])
        return Reply(200, vm) if vm else self.not_found(request)

    def put_vm(self, request: Recorded, m: re.Match[str]) -> Reply:
        vm = self.vms.get(m["name"], {}).get(m["vm"])
        if not vm:
            return self.not_found(request)
        policy = request.body.get("properties", {}).get("protectionPolicy")
        if policy is not None:
            vm["properties"]["protectionPolicy"] = dict(policy)
        return Reply(200, vm, self._async_headers(m))

    def get_operation(self, request: Recorded, m: re.Match[str]) -> Reply:
        return Reply(
            200,
            {
                "name": m["op"],
                "status": "Succeeded",
                "startTime": "2026-11-29T07:00:00.0000000+00:00",
                "endTime": "2026-11-29T07:00:01.0000000+00:00",
            },
        )


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})
