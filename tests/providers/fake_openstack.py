"""Keystone v3 and Nova (compute v2.1), as documented, for the recording server.

Shapes from docs.openstack.org/api-ref/identity/v3 (``POST /v3/auth/tokens`` answers 201 with the
token in ``X-Subject-Token`` and a body whose service catalog points compute back at this server)
and docs.openstack.org/api-ref/compute (version documents, ``POST /servers`` answers 202, ``GET
/servers/detail`` filtered by ``tags``, ``POST /servers/{id}/metadata``, ``DELETE /servers/{id}``
answers 204, flavors).
"""

from __future__ import annotations

import copy
import itertools
import re
import uuid
from typing import Any

from .recording_server import FakeApi, Recorded, Reply

IDENTITY = "/identity"
COMPUTE = "/compute/v2.1"
PROJECT_ID = "6e6b9b1b3c0e4c7d9f2a5b4c3d2e1f00"
FLAVORS = [
    {"id": "g1", "name": "gpu.t4.large", "ram": 28672, "vcpus": 4, "disk": 50},
    {"id": "m1", "name": "m1.medium", "ram": 4096, "vcpus": 2, "disk": 40},
]


class FakeOpenStack(FakeApi):
    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self._n = itertools.count(1)

    def routes(self):
        return [
            ("GET", IDENTITY + "/?", self.identity_versions),
            ("GET", IDENTITY + "/v3/?", self.identity_version),
            ("POST", IDENTITY + "/v3/auth/tokens", self.issue_token),
            ("GET", "/compute/?", self.compute_versions),
            ("GET", COMPUTE + "/?", self.compute_version),
            ("GET", COMPUTE + "/flavors/(?P<id>[^/]+)", self.get_flavor),
            ("POST", COMPUTE + "/servers", self.create_server),
            ("GET", COMPUTE + "/servers/detail", self.list_servers),
            ("GET", COMPUTE + "/servers/(?P<id>[^/]+)", self.get_server),
            ("DELETE", COMPUTE + "/servers/(?P<id>[^/]+)", self.delete_server),
            ("POST", COMPUTE + "/servers/(?P<id>[^/]+)/metadata", self.set_metadata),
        ]

    def not_found(self, request: Recorded) -> Reply:
        return _fault(404, f"{request.path} could not be found.")

    def _authorized(self, request: Recorded) -> bool:
        return request.headers.get("x-auth-token") in self.tokens

    # --- identity ----------------------------------------------------------------------------

    def _identity_doc(self) -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self.base_url}{IDENTITY}/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    def identity_versions(self, request: Recorded, m: re.Match[str]) -> Reply:
        return Reply(300, {"versions": {"values": [self._identity_doc()]}})

    def identity_version(self, request: Recorded, m: re.Match[str]) -> Reply:
        return Reply(200, {"version": self._identity_doc()})

    def issue_token(self, request: Recorded, m: re.Match[str]) -> Reply:
        auth = request.body["auth"]
        user = auth["identity"]["password"]["user"]
        if user.get("password") != "s3cret-os-password":
            return Reply(401, {"error": {"code": 401, "title": "Unauthorized", "message": "?"}})
        token = uuid.uuid4().hex
        self.tokens.add(token)
        project = auth["scope"]["project"]
        endpoint = {"interface": "public", "region": "RegionOne", "region_id": "RegionOne"}
        body = {
            "token": {
                "methods": ["password"],
                "expires_at": "2099-01-01T00:00:00.000000Z",
                "issued_at": "2026-11-29T07:00:00.000000Z",
                "user": {
                    "id": "u-1",
                    "name": user["name"],
                    "domain": {"id": "default", "name": "Default"},
                    "password_expires_at": None,
                },
                "project": {
                    "id": PROJECT_ID,
                    "name": project["name"],
                    "domain": {"id": "default", "name": "Default"},
                },
                "roles": [{"id": "r-1", "name": "member"}],
                "catalog": [
                    {
                        "type": "identity",
                        "name": "keystone",
                        "id": "s-identity",
                        "endpoints": [
                            {**endpoint, "id": "e-1", "url": f"{self.base_url}{IDENTITY}"}
                        ],
                    },
                    {
                        "type": "compute",
                        "name": "nova",
                        "id": "s-compute",
                        "endpoints": [
                            {**endpoint, "id": "e-2", "url": f"{self.base_url}{COMPUTE}"}
                        ],
                    },
                ],
            }
        }
        return Reply(201, body, {"X-Subject-Token": token})

    # --- compute -----------------------------------------------------------------------------

    def _compute_doc(self) -> dict[str, Any]:
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": "2.96",
            "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{self.base_url}{COMPUTE}/"}],
        }

    def compute_versions(self, request: Recorded, m: re.Match[str]) -> Reply:
        return Reply(200, {"versions": [self._compute_doc()]})

    def compute_version(self, request: Recorded, m: re.Match[str]) -> Reply:
        return Reply(200, {"version": self._compute_doc()})

    def get_flavor(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["id"] == "detail":
            return Reply(200, {"flavors": [self._flavor(f) for f in FLAVORS]})
        for flavor in FLAVORS:
            if flavor["id"] == m["id"]:
                return Reply(200, {"flavor": self._flavor(flavor)})
        return _fault(404, f"Flavor {m['id']} could not be found.")

    def _flavor(self, flavor: dict[str, Any]) -> dict[str, Any]:
        link = f"{self.base_url}{COMPUTE}/flavors/{flavor['id']}"
        return {
            **flavor,
            "swap": 0,
            "rxtx_factor": 1.0,
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "OS-FLV-DISABLED:disabled": False,
            "os-flavor-access:is_public": True,
            "description": None,
            "extra_specs": {},
            "links": [{"rel": "self", "href": link}],
        }

    def create_server(self, request: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorized(request):
            return _fault(401, "The request you have made requires authentication.")
        spec = request.body["server"]
        server_id = str(uuid.UUID(int=next(self._n)))
        link = f"{self.base_url}{COMPUTE}/servers/{server_id}"
        self.servers[server_id] = {
            "id": server_id,
            "name": spec["name"],
            "status": "ACTIVE",
            "tenant_id": PROJECT_ID,
            "metadata": dict(spec.get("metadata", {})),
            "tags": list(spec.get("tags", [])),
            "flavor": {"original_name": spec["flavorRef"]},
            "image": {"id": spec.get("imageRef", "")},
            "addresses": {},
            "created": "2026-11-29T07:00:00Z",
            "updated": "2026-11-29T07:00:00Z",
            "links": [{"rel": "self", "href": link}],
        }
        return Reply(
            202,
            {
                "server": {
                    "id": server_id,
                    "links": [{"rel": "self", "href": link}],
                    "OS-DCF:diskConfig": "MANUAL",
                    "security_groups": [{"name": "default"}],
                    "adminPass": "not-used",
                }
            },
            {"Location": link},
        )

    def list_servers(self, request: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorized(request):
            return _fault(401, "The request you have made requires authentication.")
        wanted = [t for t in request.query.get("tags", "").split(",") if t]
        servers = [
            copy.deepcopy(s) for s in self.servers.values() if all(t in s["tags"] for t in wanted)
        ]
        return Reply(200, {"servers": servers})

    def get_server(self, request: Recorded, m: re.Match[str]) -> Reply:
        server = self.servers.get(m["id"])
        return Reply(200, {"server": server}) if server else self.not_found(request)

    def delete_server(self, request: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorized(request):
            return _fault(401, "The request you have made requires authentication.")
        if self.servers.pop(m["id"], None) is None:
            return _fault(404, f"Instance {m['id']} could not be found.")
        return Reply(204)

    def set_metadata(self, request: Recorded, m: re.Match[str]) -> Reply:
        server = self.servers.get(m["id"])
        if server is None:
            return _fault(404, f"Instance {m['id']} could not be found.")
        server["metadata"].update(request.body["metadata"])
        return Reply(200, {"metadata": server["metadata"]})


def _fault(status: int, message: str) -> Reply:
    key = {401: "unauthorized", 404: "itemNotFound"}.get(status, "badRequest")
    return Reply(status, {key: {"code": status, "message": message}})
