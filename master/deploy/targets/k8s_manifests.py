"""Kubernetes objects of one endpoint (pure functions: tests validate them offline).

Per version endpoint: a Deployment (rolling update with ``maxUnavailable: 0``, a TCP readiness
probe on the endpoint's port, resources from valohai.yaml, node selector, tolerations, an image
pull secret for the registry, an unprivileged pod), a ClusterIP Service and, when the target has
an ingress host, an Ingress. An alias is its own Service (and Ingress) whose selector names the
version: switching it is one patch of that selector.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from .base import EndpointSpec

MANAGED = {"app.kubernetes.io/managed-by": "jupyter-valohai"}


def dns_name(*parts: str) -> str:
    """A DNS-1035 label from ``parts`` (lowercase, '-', at most 63, starting with a letter)."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    name = "vh-" + name
    if len(name) > 63:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[:54].rstrip("-") + "-" + digest
    return name


def label_value(value: str) -> str:
    """A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63]
    return clean.strip("-._") or "x"


def selector(spec: EndpointSpec, version: str | None = None) -> dict[str, str]:
    return {
        "valohai.com/deployment": label_value(spec.deployment),
        "valohai.com/version": label_value(version or spec.version),
        "valohai.com/endpoint": label_value(spec.definition.name),
    }


def names(spec: EndpointSpec) -> dict[str, str]:
    base = dns_name(spec.deployment, spec.version, spec.definition.name)
    return {
        "deployment": base,
        "service": base,
        "ingress": base,
        "pull_secret": dns_name(spec.deployment, "pull"),
    }


def _quantity_cpu(value: Any) -> str:
    return f"{round(float(value) * 1000)}m"


def resources(res: dict[str, Any]) -> dict[str, dict[str, str]]:
    """valohai.yaml ``resources`` (cpu in vCPUs, memory in MB, min/max) -> requests/limits."""
    out: dict[str, dict[str, str]] = {}
    cpu, memory = res.get("cpu") or {}, res.get("memory") or {}
    for key, kind in (("min", "requests"), ("max", "limits")):
        if cpu.get(key):
            out.setdefault(kind, {})["cpu"] = _quantity_cpu(cpu[key])
        if memory.get(key):
            out.setdefault(kind, {})["memory"] = f"{int(memory[key])}Mi"
    devices = res.get("devices") or {}
    for device, count in devices.items() if isinstance(devices, dict) else ():
        out.setdefault("limits", {})[str(device)] = str(int(count))
    return out


def pull_secret(spec: EndpointSpec, namespace: str) -> dict[str, Any] | None:
    """A ``kubernetes.io/dockerconfigjson`` Secret for the image's registry, if credentials."""
    if not spec.registry_auth:
        return None
    registry = spec.image.split("/", 1)[0]
    user, password = spec.registry_auth["username"], spec.registry_auth["password"]
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {registry: {"username": user, "password": password, "auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": names(spec)["pull_secret"],
            "namespace": namespace,
            "labels": dict(MANAGED),
        },
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def deployment(spec: EndpointSpec, namespace: str, options: dict[str, Any]) -> dict[str, Any]:
    port = int(spec.definition.port)
    labels = {**MANAGED, **selector(spec)}
    container: dict[str, Any] = {
        "name": label_value(spec.definition.name)[:63].lower().strip("-._") or "endpoint",
        "image": spec.image,
        "imagePullPolicy": str(options.get("image_pull_policy", "IfNotPresent")),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": k, "value": v}
            for k, v in sorted({**spec.environment, "PORT": str(port)}.items())
        ],
        "readinessProbe": {
            "tcpSocket": {"port": port},
            "initialDelaySeconds": 1,
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "tcpSocket": {"port": port},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if res := resources(spec.definition.resources):
        container["resources"] = res
    pod: dict[str, Any] = {
        "containers": [container],
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    if spec.registry_auth:
        pod["imagePullSecrets"] = [{"name": names(spec)["pull_secret"]}]
    if spec.definition.node_selector:
        pod["nodeSelector"] = dict(spec.definition.node_selector)
    if spec.definition.tolerations:
        pod["tolerations"] = [dict(t) for t in spec.definition.tolerations]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names(spec)["deployment"], "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": int(spec.replicas),
            "selector": {"matchLabels": selector(spec)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def service(
    spec: EndpointSpec, namespace: str, name: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """The ClusterIP Service of a version's endpoint (or of an alias: ``name``)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name or names(spec)["service"],
            "namespace": namespace,
            "labels": {**MANAGED, "valohai.com/deployment": label_value(spec.deployment)},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector(spec, version),
            "ports": [
                {
                    "name": "http",
                    "port": 80,
                    "targetPort": int(spec.definition.port),
                    "protocol": "TCP",
                }
            ],
        },
    }


def ingress_path(spec: EndpointSpec, ref: str) -> str:
    """``/<project>/<deployment>/<ref>/<endpoint>/`` in the characters an Ingress path allows."""
    raw = f"{spec.project}/{spec.deployment}/{ref}/{spec.definition.name}"
    return "/" + re.sub(r"[^A-Za-z0-9._/-]+", "-", raw).strip("/") + "/"


def ingress(
    spec: EndpointSpec, namespace: str, options: dict[str, Any], ref: str, service_name: str
) -> dict[str, Any]:
    """An Ingress routing ``<host>/<project>/<deployment>/<ref>/<endpoint>/`` to the Service."""
    rule_path = ingress_path(spec, ref)
    out: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": service_name,
            "namespace": namespace,
            "labels": {**MANAGED, "valohai.com/deployment": label_value(spec.deployment)},
            "annotations": dict(options.get("ingress_annotations") or {}),
        },
        "spec": {
            "rules": [
                {
                    "host": str(options["ingress_host"]),
                    "http": {
                        "paths": [
                            {
                                "path": rule_path,
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": service_name, "port": {"number": 80}}
                                },
                            }
                        ]
                    },
                }
            ]
        },
    }
    if options.get("ingress_class"):
        out["spec"]["ingressClassName"] = str(options["ingress_class"])
    return out
