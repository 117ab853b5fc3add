"""The kubernetes provider: its manifests pass ``kubernetes-validate --strict`` (offline schemas),
and its client creates, scales and deletes a group against ``kmock`` (a Kubernetes API emulator
without controllers: it keeps objects but runs no pods). No real cluster is exercised here.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import kubernetes_validate
import pytest

from jupyter_valohai.errors import InvalidInput
from master.scaling.providers import k8s_manifests as km
from master.scaling.providers.base import PENDING, RUNNING, GroupSpec
from master.scaling.providers.kubernetes import KubernetesProvider

TOKEN = "s3cret-group-token"
K8S_VERSION = "1.30"


def group(**settings) -> GroupSpec:
    base = {
        "image": "registry.example.com/jupyter-valohai-agent:0.1",
        "namespace": "workers",
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "image_pull_secrets": ["regcred"],
    }
    base.update(settings)
    return GroupSpec(
        slug="gpu-t4",
        provider="kubernetes",
        cpus=3.5,
        memory_mb=15000,
        gpus=1,
        max_size=4,
        settings=base,
        master_url="https://master.example.com",
        token=TOKEN,
        bootstrap_url="https://master.example.com/api/agent/bootstrap.sh?group=gpu-t4",
    )


def manifests(g: GroupSpec) -> list[dict]:
    s = KubernetesProvider().kube_settings(g)
    objs = km.build_manifests(g, s, replicas=2, job_name="vh-agent-gpu-t4-0001")
    return [objs["secret"], objs["deployment"], objs["job"]]


SETTINGS = [{}, {"node_selector": {}, "tolerations": []}, {"service_account": "agents"}]


@pytest.mark.parametrize("settings", SETTINGS, ids=["gpu-tolerations", "plain", "service-account"])
def test_manifests_pass_kubernetes_validate_strict(settings):
    for obj in manifests(group(**settings)):
        # raises on any schema error; strict also refuses fields the schema does not know
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_kubernetes_validate_cli_strict_on_every_manifest(tmp_path):
    """The CLI, as an operator would run it, over one multi-document file of every manifest."""
    docs = [obj for settings in SETTINGS for obj in manifests(group(**settings))]
    path = tmp_path / "manifests.yaml"
    path.write_text("\n---\n".join(json.dumps(obj) for obj in docs))
    run = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION, str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passed") == len(docs) == 9


def test_strict_validation_catches_a_bad_manifest():
    bad = manifests(group())[1]
    bad["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_resources_gpu_and_token_only_by_reference():
    secret, deployment, job = manifests(group())
    for workload in (deployment, job):
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["resources"] == {
            "requests": {"cpu": "3500m", "memory": "15000Mi", "nvidia.com/gpu": "1"},
            "limits": {"cpu": "3500m", "memory": "15000Mi", "nvidia.com/gpu": "1"},
        }
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert pod["automountServiceAccountToken"] is False
        assert container["securityContext"]["privileged"] is False
        token_env = next(e for e in container["env"] if e["name"] == "VH_AGENT_TOKEN")
        assert token_env == {
            "name": "VH_AGENT_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "vh-agent-gpu-t4-token", "key": "token"}},
        }
        assert TOKEN not in json.dumps(workload)
        instance_env = next(e for e in container["env"] if e["name"] == "VH_AGENT_INSTANCE_ID")
        field = instance_env["valueFrom"]["fieldRef"]["fieldPath"]
        assert field == (
            "metadata.name" if workload is deployment else "metadata.labels['job-name']"
        )
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--once"
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    assert deployment["spec"]["replicas"] == 2


def test_missing_image_is_a_clear_error():
    g = group(image="")
    with pytest.raises(InvalidInput) as err:
        KubernetesProvider().kube_settings(g)
    assert "image" in str(err.value)


def deployment_in(kmock, g: GroupSpec) -> dict:
    key = ("apps/v1/deployments", "workers", "vh-agent-gpu-t4")
    return dict(kmock.objects[key])


async def test_create_scale_delete_against_kmock(kmock):
    g = group()
    provider = KubernetesProvider({"host": str(kmock.url)})
    try:
        assert await provider.list_instances(g) == []  # no Deployment yet
        await provider.ensure_group(g)
        await provider.ensure_group(g)  # idempotent: the second call patches, no conflict
        assert deployment_in(kmock, g)["spec"]["replicas"] == 0
        secret = dict(kmock.objects[("v1/secrets", "workers", "vh-agent-gpu-t4-token")])
        assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN

        await provider.set_desired(g, 3)
        assert deployment_in(kmock, g)["spec"]["replicas"] == 3
        # kmock runs no controllers (no pods): the provider reports the replicas as pending
        instances = await provider.list_instances(g)
        assert [i.state for i in instances] == [PENDING] * 3

        await provider.terminate(g, instances[0].id)  # scale-in of one chosen worker
        assert deployment_in(kmock, g)["spec"]["replicas"] == 2
        await provider.set_desired(g, 0)
        assert deployment_in(kmock, g)["spec"]["replicas"] == 0
        assert await provider.list_instances(g) == []

        await provider.delete_group(g)
        await provider.delete_group(g)  # idempotent
        assert await provider.list_instances(g) == []
    finally:
        await provider.close()

    verbs = [(r.method, r.url.path) for r in kmock if "/namespaces/" in r.url.path]
    base = "/apis/apps/v1/namespaces/workers/deployments"
    assert ("POST", "/api/v1/namespaces/workers/secrets") in verbs
    assert ("POST", base) in verbs
    assert ("PATCH", f"{base}/vh-agent-gpu-t4") in verbs
    assert ("DELETE", f"{base}/vh-agent-gpu-t4") in verbs
    assert ("DELETE", "/api/v1/namespaces/workers/secrets/vh-agent-gpu-t4-token") in verbs
    patches = [r.data for r in kmock if r.method == "PATCH"]
    assert {"spec": {"replicas": 3}} in patches
    assert {"spec": {"replicas": 0}} in patches


async def test_job_mode_against_kmock(kmock):
    g = group(mode="job")
    kmock.resources["batch/v1/jobs"] = {}  # a real API server knows Jobs before any exists
    provider = KubernetesProvider({"host": str(kmock.url)})
    try:
        await provider.ensure_group(g)
        await provider.set_desired(g, 2)
        jobs = await provider.list_instances(g)
        assert len(jobs) == 2 and all(j.state == PENDING for j in jobs)
        await provider.set_desired(g, 2)  # already two active Jobs: none added
        assert len(await provider.list_instances(g)) == 2
        await provider.terminate(g, jobs[0].id)
        assert [j.id for j in await provider.list_instances(g)] == [jobs[1].id]
        await provider.delete_group(g)
        assert await provider.list_instances(g) == []
    finally:
        await provider.close()


def pod(name: str, phase: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "workers", "labels": {km.GROUP_LABEL: "gpu-t4"}},
        "spec": {"containers": [{"name": "agent", "image": "agent:0.1"}]},
        "status": {"phase": phase},
    }


async def test_pods_protection_and_chosen_scale_in_against_kmock(kmock):
    """kmock runs no controllers, so the test plays the ReplicaSet: it puts two pods in place."""
    g = group()
    provider = KubernetesProvider({"host": str(kmock.url)})
    try:
        await provider.ensure_group(g)
        await provider.set_desired(g, 2)
        kmock.objects["v1/pods", "workers", "vh-agent-gpu-t4-aaaaa"] = pod(
            "vh-agent-gpu-t4-aaaaa", "Running"
        )
        kmock.objects["v1/pods", "workers", "vh-agent-gpu-t4-bbbbb"] = pod(
            "vh-agent-gpu-t4-bbbbb", "Pending"
        )
        instances = {i.id: i for i in await provider.list_instances(g)}
        assert {k: v.state for k, v in instances.items()} == {
            "vh-agent-gpu-t4-aaaaa": RUNNING,
            "vh-agent-gpu-t4-bbbbb": PENDING,
        }  # both replicas have pods: no placeholders

        await provider.set_protected(g, "vh-agent-gpu-t4-aaaaa", True)
        busy = dict(kmock.objects["v1/pods", "workers", "vh-agent-gpu-t4-aaaaa"])
        assert busy["metadata"]["annotations"] == {km.DELETION_COST: str(km.PROTECTED_COST)}
        assert {i.id: i.protected for i in await provider.list_instances(g)} == {
            "vh-agent-gpu-t4-aaaaa": True,
            "vh-agent-gpu-t4-bbbbb": False,
        }

        # scale-in of the chosen pod: lowest deletion cost, then one replica fewer
        await provider.terminate(g, "vh-agent-gpu-t4-bbbbb")
        chosen = dict(kmock.objects["v1/pods", "workers", "vh-agent-gpu-t4-bbbbb"])
        assert chosen["metadata"]["annotations"] == {km.DELETION_COST: str(km.CHOSEN_COST)}
        assert deployment_in(kmock, g)["spec"]["replicas"] == 1
    finally:
        await provider.close()
    pod_patches = [r for r in kmock if r.method == "PATCH" and "/pods/" in r.url.path]
    assert [r.headers["Content-Type"] for r in pod_patches] == ["application/merge-patch+json"] * 2
