"""The ``kubernetes`` target (acceptance 3): its manifests pass ``kubernetes-validate --strict``
(offline schemas), and its client calls run against ``kmock``, a Kubernetes API emulator that
keeps objects but runs no controllers and no pods. Here the test plays the Deployment
controller's one visible part (``status.readyReplicas``) so the readiness wait is exercised; no
real cluster, scheduler, kubelet, image pull or Ingress controller is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import kubernetes_validate
import pytest

from master.deploy.models import EndpointDef, EndpointFile
from master.deploy.targets import DeployFailed, make_targets
from master.deploy.targets import k8s_manifests as km
from master.deploy.targets.base import EndpointSpec
from master.deploy.targets.kubernetes import KubernetesTarget

K8S_VERSION = "1.30"
NS = "models"
SECRET = "pull-s3cret-pw"


def spec(version: str = "20261129.0", **definition) -> EndpointSpec:
    fields = {
        "name": "predict",
        "image": "python:3.11",
        "port": 8000,
        "wsgi": "predict:application",
        "files": (EndpointFile("model", "model.pkl"),),
        "resources": {"cpu": {"min": 0.25, "max": 1}, "memory": {"min": 256, "max": 512}},
        "node_selector": {"pool": "inference"},
        "tolerations": (
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
        ),
    }
    fields.update(definition)
    return EndpointSpec(
        endpoint_id="depe-1",
        project="Iris Project",
        deployment="iris",
        version=version,
        definition=EndpointDef(**fields),
        image=f"registry.example.com:5000/iris/iris-predict:{version}",
        replicas=2,
        environment={"MODEL_TAG": "one"},
        registry_auth={"username": "pusher", "password": SECRET},
    )


def target(**options) -> KubernetesTarget:
    opts = {
        "kind": "kubernetes",
        "namespace": NS,
        "ingress_host": "models.example.com",
        "ingress_class": "nginx",
        **options,
    }
    made = make_targets({"k8s": opts})["k8s"]
    assert isinstance(made, KubernetesTarget)
    return made


def all_manifests() -> list[dict]:
    t = target()
    plain = target(ingress_host="")
    bare = spec(resources={}, node_selector={}, tolerations=(), files=())
    bare.registry_auth = None
    return [
        *t.manifests(spec()),
        *t.alias_manifests(spec(), "production"),
        *plain.manifests(bare),
        *plain.alias_manifests(bare, "staging"),
    ]


def test_manifests_pass_kubernetes_validate_strict(tmp_path) -> None:
    objs = all_manifests()
    assert {o["kind"] for o in objs} == {"Secret", "Deployment", "Service", "Ingress"}
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # and the command line, as an operator would run it
    path = tmp_path / "manifests.yaml"
    path.write_text("\n---\n".join(json.dumps(o) for o in objs))
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION, str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deployment_shape() -> None:
    secret, deployment, service, ingress = target().manifests(spec())
    d = deployment["spec"]
    assert d["replicas"] == 2
    assert d["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = d["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["tcpSocket"] == {"port": 8000}
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1000m", "memory": "512Mi"},
    }
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["nodeSelector"] == {"pool": "inference"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["imagePullSecrets"] == [{"name": secret["metadata"]["name"]}]
    assert {"name": "MODEL_TAG", "value": "one"} in container["env"]
    # the registry password only in the pull secret, never in the workload
    assert SECRET not in json.dumps(deployment)
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example.com:5000"]["password"] == SECRET
    assert service["spec"]["selector"]["valohai.com/version"] == "20261129.0"
    assert service["spec"]["ports"][0]["targetPort"] == 8000
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == "/Iris-Project/iris/20261129.0/predict/"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert all(len(o["metadata"]["name"]) <= 63 for o in (secret, deployment, service, ingress))


def test_long_names_stay_valid() -> None:
    long = spec(version="v" + "9" * 60)
    for obj in target().manifests(long):
        assert len(obj["metadata"]["name"]) <= 63
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


async def _play_controller(kmock, name: str, replicas: int, stop: asyncio.Event) -> None:
    """Set ``status.readyReplicas`` once the Deployment exists (kmock has no controllers)."""
    key = ("apps/v1/deployments", NS, name)
    while not stop.is_set():
        try:
            kmock.objects[key]["status"] = {"replicas": replicas, "readyReplicas": replicas}
            return
        except KeyError:
            await asyncio.sleep(0.05)


def _has(kmock, key: tuple) -> bool:
    try:
        return bool(dict(kmock.objects[key]))
    except KeyError:
        return False


def _lines() -> tuple[list, object]:
    seen: list[tuple[str, str]] = []
    return seen, lambda stream, message: seen.append((stream, message))


async def test_deploy_switch_alias_and_stop_against_kmock(kmock) -> None:
    t = target(host=str(kmock.url).rstrip("/"), ready_timeout=30)
    one, two = spec("20261129.0"), spec("20261129.1")
    seen, emit = _lines()
    stop = asyncio.Event()

    name_one = km.names(one)["deployment"]
    controller = asyncio.create_task(_play_controller(kmock, name_one, 2, stop))
    state_one = await asyncio.to_thread(t.deploy, one, emit)
    await controller
    assert state_one["url"] == "https://models.example.com/Iris-Project/iris/20261129.0/predict/"
    assert ("status", "Endpoint ready: 2/2 replicas ready") in seen
    stored = dict(kmock.objects[("apps/v1/deployments", NS, name_one)])
    assert stored["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert _has(kmock, ("v1/services", NS, state_one["service"]))
    assert _has(kmock, ("networking.k8s.io/v1/ingresses", NS, state_one["ingress"]))
    assert _has(kmock, ("v1/secrets", NS, km.names(one)["pull_secret"]))
    assert (await asyncio.to_thread(t.health, state_one)).state == "ready"

    alias = await asyncio.to_thread(t.switch_alias, "iris", "production", "predict", state_one)
    svc_key = ("v1/services", NS, alias["service"])
    assert dict(kmock.objects[svc_key])["spec"]["selector"]["valohai.com/version"] == "20261129.0"
    assert alias["url"].endswith("/iris/production/predict/")

    # The second version: applied, waited for, then the alias's selector is switched.
    name_two = km.names(two)["deployment"]
    controller = asyncio.create_task(_play_controller(kmock, name_two, 2, stop))
    state_two = await asyncio.to_thread(t.deploy, two, emit)
    await controller
    await asyncio.to_thread(t.switch_alias, "iris", "production", "predict", state_two)
    assert dict(kmock.objects[svc_key])["spec"]["selector"]["valohai.com/version"] == "20261129.1"

    # Redeploying the same version patches (no conflict); stopping the old one deletes it.
    controller = asyncio.create_task(_play_controller(kmock, name_two, 2, stop))
    await asyncio.to_thread(t.deploy, two, emit)
    await controller
    await asyncio.to_thread(t.stop, state_one)
    await asyncio.to_thread(t.stop, state_one)  # idempotent
    assert (await asyncio.to_thread(t.health, state_one)).state == "stopped"
    assert (await asyncio.to_thread(t.health, state_two)).state == "ready"
    # kmock has no pods: the logs say so instead of failing
    logs = await asyncio.to_thread(t.logs, state_two)
    assert logs and logs[0].startswith("(no pod logs"), logs

    verbs = {(r.method, r.url.path) for r in kmock if "/namespaces/" in r.url.path}
    base = f"/apis/apps/v1/namespaces/{NS}/deployments"
    assert ("POST", base) in verbs
    assert ("PATCH", f"{base}/{name_two}") in verbs
    assert ("DELETE", f"{base}/{name_one}") in verbs
    assert ("PATCH", f"/api/v1/namespaces/{NS}/services/{alias['service']}") in verbs
    stop.set()


async def test_pods_never_ready_is_a_clear_failure(kmock) -> None:
    t = target(host=str(kmock.url).rstrip("/"), ready_timeout=2)
    _, emit = _lines()
    with pytest.raises(DeployFailed) as err:
        await asyncio.to_thread(t.deploy, spec(), emit)
    assert "not ready within 2 s (0/2 replicas ready)" in err.value.message
    assert "previous version keeps serving" in err.value.message
