"""The Kubernetes objects of a worker group, as plain dicts (so tests can validate them offline).

A group is a Secret holding its token and a Deployment of agent pods (``replicas`` = the group's
desired size), or, in ``job`` mode, one Job per agent that runs a single execution (``agent
--once``) and exits. The token reaches the pod only through ``secretKeyRef``; it never appears in a
pod spec.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from .base import GroupSpec

GROUP_LABEL = "jupyter-valohai/group"
# The pod-deletion-cost annotation steers which pod a ReplicaSet removes when replicas drop
# (https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#pod-deletion-cost).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
PROTECTED_COST = 1_000_000  # busy agents: removed last
CHOSEN_COST = -1_000_000  # the idle agent the scaler picked: removed first


@dataclass(frozen=True)
class KubeSettings:
    """The kubernetes provider's settings for one group (see docs/providers.md)."""

    namespace: str = "default"
    image: str = ""
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str = ""
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    runtime: str = "local"  # the agent's runtime inside the pod (no Docker engine there)
    termination_grace_seconds: int = 300
    job_ttl_seconds: int = 600


def names(group: GroupSpec) -> dict[str, str]:
    """Return the names of the group's objects."""
    from ._cloud import resource_name

    base = resource_name(group.slug, max_length=50)
    return {"deployment": base, "secret": f"{base}-token", "job_prefix": f"{base}-"}


def labels(group: GroupSpec) -> dict[str, str]:
    """Return the labels every object of the group carries (the selector of its pods)."""
    from ._cloud import resource_name

    return {
        "app.kubernetes.io/name": "jupyter-valohai-agent",
        "app.kubernetes.io/managed-by": "jupyter-valohai",
        GROUP_LABEL: resource_name(group.slug, prefix="", max_length=63),
    }


def resources(group: GroupSpec) -> dict[str, dict[str, str]]:
    """Return the container's requests and limits from the group's cpu, memory and GPUs."""
    amounts: dict[str, str] = {}
    if group.cpus > 0:
        amounts["cpu"] = f"{round(group.cpus * 1000)}m"
    if group.memory_mb > 0:
        amounts["memory"] = f"{group.memory_mb}Mi"
    if group.gpus > 0:
        amounts["nvidia.com/gpu"] = str(group.gpus)
    if not amounts:
        return {}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def pod_spec(group: GroupSpec, s: KubeSettings, *, once: bool = False) -> dict[str, Any]:
    """Return the pod spec of one agent of the group."""
    args = ["agent", "--master-url", group.master_url]
    if once:
        args.append("--once")
    container: dict[str, Any] = {
        "name": "agent",
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": ["jupyter-valohai"],
        "args": args,
        "env": [
            {"name": "VH_MASTER_URL", "value": group.master_url},
            {"name": "VH_AGENT_RUNTIME", "value": s.runtime},
            {
                # the scaler matches agents to pods (or Jobs) by this id
                "name": "VH_AGENT_INSTANCE_ID",
                "valueFrom": {"fieldRef": {"fieldPath": _instance_field(once)}},
            },
            {
                "name": "VH_AGENT_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": names(group)["secret"], "key": "token"}},
            },
        ],
        "securityContext": {"privileged": False, "allowPrivilegeEscalation": False},
    }
    if resources(group):
        container["resources"] = resources(group)
    spec: dict[str, Any] = {
        "containers": [container],
        # the agent talks only to the master, never to the Kubernetes API
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": s.termination_grace_seconds,
        "restartPolicy": "Never" if once else "Always",
    }
    if s.node_selector:
        spec["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        spec["tolerations"] = [dict(t) for t in s.tolerations]
    if s.service_account:
        spec["serviceAccountName"] = s.service_account
    if s.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in s.image_pull_secrets]
    return spec


def _instance_field(once: bool) -> str:
    # a Deployment's instances are its pods; a Job's pod carries the Job's name in this label
    return "metadata.labels['job-name']" if once else "metadata.name"


def build_manifests(
    group: GroupSpec, s: KubeSettings, *, replicas: int = 0, job_name: str = ""
) -> dict[str, dict[str, Any]]:
    """Return the group's objects: ``secret`` and ``deployment``, plus ``job`` when ``job_name``."""
    n = names(group)
    meta_labels = labels(group)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": n["secret"], "namespace": s.namespace, "labels": meta_labels},
        "type": "Opaque",
        "data": {"token": base64.b64encode(group.token.encode()).decode()},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": n["deployment"], "namespace": s.namespace, "labels": meta_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(meta_labels)},
            # new agent versions replace pods only as old ones go away: never two per slot
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": dict(meta_labels)},
                "spec": pod_spec(group, s),
            },
        },
    }
    out = {"secret": secret, "deployment": deployment}
    if job_name:
        out["job"] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_name, "namespace": s.namespace, "labels": meta_labels},
            "spec": {
                "backoffLimit": 0,
                "completions": 1,
                "parallelism": 1,
                "ttlSecondsAfterFinished": s.job_ttl_seconds,
                "template": {
                    "metadata": {"labels": dict(meta_labels)},
                    "spec": pod_spec(group, s, once=True),
                },
            },
        }
    return out
