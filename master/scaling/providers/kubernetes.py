"""The ``kubernetes`` provider: agents as pods of a Deployment (or one Job per agent), experimental.

The group's token lives in a Secret; the Deployment's ``replicas`` is the group's desired size. To
take a chosen idle pod out, the provider lowers its ``pod-deletion-cost`` and then ``replicas`` by
one, so the ReplicaSet removes that pod; busy pods get a high cost (:meth:`set_protected`). In
``job`` mode each agent is a Job running ``agent --once``: it exits after one execution, and scaling
down deletes chosen Jobs.

Talks to the API server through the official ``kubernetes`` client (apps/v1, core/v1, batch/v1).
Settings (environment or provider): ``namespace``, ``image`` (required), ``image_pull_policy``,
``image_pull_secrets``, ``service_account``, ``node_selector``, ``tolerations``, ``runtime``,
``mode`` (``deployment`` or ``job``), and how to reach the cluster: ``host`` (+ ``api_token``,
``verify_ssl``, ``ca_cert``), else ``kubeconfig`` (+ ``context``), else the in-cluster service
account.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from jupyter_valohai.errors import InvalidInput

from . import k8s_manifests as km
from ._cloud import required, setting
from .base import GONE, PENDING, RUNNING, STOPPING, GroupSpec, Instance, WorkerGroupProvider

MERGE_PATCH = "application/merge-patch+json"
PLACEHOLDER = "/pending-"  # ids of replicas whose pods the API does not (yet) show


class KubernetesProvider(WorkerGroupProvider):
    """Worker groups as Kubernetes Deployments (or Jobs) of agent pods."""

    name = "kubernetes"
    experimental = True
    expected_start_seconds = 45.0

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._api_client: Any = None

    # --- settings and client -----------------------------------------------------------------

    def kube_settings(self, group: GroupSpec) -> km.KubeSettings:
        """Return the group's manifest settings (environment settings win over the provider's)."""

        def get(key: str, default: Any) -> Any:
            return setting(self, group, key, default)

        node_selector = get("node_selector", {})
        tolerations = get("tolerations", [])
        if not isinstance(node_selector, dict) or not isinstance(tolerations, list):
            raise InvalidInput(
                f"Bad node_selector or tolerations for worker group {group.slug!r}.",
                hint="node_selector is a mapping of label to value; tolerations a list of "
                "Kubernetes toleration objects.",
            )
        return km.KubeSettings(
            namespace=str(get("namespace", "default")),
            image=str(required(self, group, "image")),
            image_pull_policy=str(get("image_pull_policy", "IfNotPresent")),
            image_pull_secrets=tuple(get("image_pull_secrets", ())),
            service_account=str(get("service_account", "")),
            node_selector=tuple(sorted((str(k), str(v)) for k, v in node_selector.items())),
            tolerations=tuple(dict(t) for t in tolerations),
            runtime=str(get("runtime", "local")),
            termination_grace_seconds=int(get("termination_grace_seconds", 300)),
            job_ttl_seconds=int(get("job_ttl_seconds", 600)),
        )

    def mode(self, group: GroupSpec) -> str:
        mode = str(setting(self, group, "mode", "deployment"))
        if mode not in ("deployment", "job"):
            raise InvalidInput(
                f"Unknown kubernetes mode {mode!r} for worker group {group.slug!r}.",
                hint="Use 'deployment' (long-lived agents) or 'job' (one Job per execution).",
            )
        return mode

    def client(self) -> Any:
        """Return the (lazily built) ``kubernetes.client.ApiClient``; the provider holds one."""
        if self._api_client is None:
            from kubernetes import client, config

            host = self.settings.get("host")
            if host:
                configuration = client.Configuration()
                configuration.host = str(host).rstrip("/")
                configuration.verify_ssl = bool(self.settings.get("verify_ssl", True))
                if self.settings.get("ca_cert"):
                    configuration.ssl_ca_cert = self.settings["ca_cert"]
                if self.settings.get("api_token"):
                    configuration.api_key = {"authorization": self.settings["api_token"]}
                    configuration.api_key_prefix = {"authorization": "Bearer"}
                self._api_client = client.ApiClient(configuration)
            elif self.settings.get("kubeconfig"):
                self._api_client = config.new_client_from_config(
                    config_file=self.settings["kubeconfig"], context=self.settings.get("context")
                )
            else:
                config.load_incluster_config()
                self._api_client = client.ApiClient()
        return self._api_client

    def _apis(self) -> tuple[Any, Any, Any]:
        from kubernetes import client

        api = self.client()
        return client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    @staticmethod
    def _status(exc: BaseException) -> int | None:
        from kubernetes.client.exceptions import ApiException

        return exc.status if isinstance(exc, ApiException) else None

    # --- the interface -----------------------------------------------------------------------

    async def ensure_group(self, group: GroupSpec) -> None:
        from kubernetes.client.exceptions import ApiException

        s = self.kube_settings(group)
        mode = self.mode(group)
        core, apps, _ = self._apis()
        objs = km.build_manifests(group, s)
        secret, deployment = objs["secret"], objs["deployment"]
        try:
            await self._call(core.create_namespaced_secret, s.namespace, secret)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await self._call(
                core.patch_namespaced_secret,
                secret["metadata"]["name"],
                s.namespace,
                {"metadata": {"labels": secret["metadata"]["labels"]}, "data": secret["data"]},
                _content_type=MERGE_PATCH,
            )
        if mode == "job":
            return
        try:
            await self._call(apps.create_namespaced_deployment, s.namespace, deployment)
        except ApiException as exc:
            if exc.status != 409:
                raise
            # keep the current size; refresh the pod template (image, resources, token reference)
            patch = {
                "metadata": {"labels": km.labels(group)},
                "spec": {"template": deployment["spec"]["template"]},
            }
            await self._call(
                apps.patch_namespaced_deployment,
                deployment["metadata"]["name"],
                s.namespace,
                patch,
                _content_type=MERGE_PATCH,
            )

    async def set_desired(self, group: GroupSpec, size: int) -> None:
        s = self.kube_settings(group)
        if self.mode(group) == "job":
            await self._top_up_jobs(group, s, size)
            return
        _, apps, _ = self._apis()
        await self._call(
            apps.patch_namespaced_deployment,
            km.names(group)["deployment"],
            s.namespace,
            {"spec": {"replicas": max(0, int(size))}},
            _content_type=MERGE_PATCH,
        )

    async def list_instances(self, group: GroupSpec) -> list[Instance]:
        s = self.kube_settings(group)
        if self.mode(group) == "job":
            return await self._list_jobs(group, s)
        _, apps, _ = self._apis()
        name = km.names(group)["deployment"]
        try:
            deployment = await self._call(apps.read_namespaced_deployment, name, s.namespace)
        except Exception as exc:
            if self._status(exc) == 404:
                return []
            raise
        desired = int(deployment.spec.replicas or 0)
        pods = [p for p in await self._pods(group, s) if p.state != GONE]
        live = sum(1 for p in pods if p.state != STOPPING)
        # Replicas without a pod yet (or an API that shows no pods) are reported as pending.
        placeholders = [
            Instance(id=f"{name}{PLACEHOLDER}{i}", state=PENDING, details={"placeholder": True})
            for i in range(max(0, desired - live))
        ]
        return pods + placeholders

    async def terminate(self, group: GroupSpec, instance_id: str) -> None:
        s = self.kube_settings(group)
        core, apps, batch = self._apis()
        if self.mode(group) == "job":
            await self._delete(batch.delete_namespaced_job, instance_id, s.namespace)
            return
        if PLACEHOLDER not in instance_id:
            await self._set_cost(core, s, instance_id, km.CHOSEN_COST)
        name = km.names(group)["deployment"]
        deployment = await self._call(apps.read_namespaced_deployment, name, s.namespace)
        replicas = max(0, int(deployment.spec.replicas or 0) - 1)
        await self._call(
            apps.patch_namespaced_deployment,
            name,
            s.namespace,
            {"spec": {"replicas": replicas}},
            _content_type=MERGE_PATCH,
        )

    async def set_protected(self, group: GroupSpec, instance_id: str, protected: bool) -> None:
        if PLACEHOLDER in instance_id or self.mode(group) == "job":
            return  # a Job is never scaled in by Kubernetes itself
        core, _, _ = self._apis()
        cost = km.PROTECTED_COST if protected else 0
        await self._set_cost(core, self.kube_settings(group), instance_id, cost)

    async def delete_group(self, group: GroupSpec) -> None:
        s = self.kube_settings(group)
        core, apps, batch = self._apis()
        n = km.names(group)
        if self.mode(group) == "job":
            for job in await self._list_jobs(group, s):
                await self._delete(batch.delete_namespaced_job, job.id, s.namespace)
        await self._delete(apps.delete_namespaced_deployment, n["deployment"], s.namespace)
        await self._delete(core.delete_namespaced_secret, n["secret"], s.namespace)

    async def close(self) -> None:
        if self._api_client is not None:
            await asyncio.to_thread(self._api_client.close)
            self._api_client = None

    # --- helpers -----------------------------------------------------------------------------

    async def _delete(self, fn: Any, name: str, namespace: str) -> None:
        try:
            await self._call(fn, name, namespace, propagation_policy="Background")
        except Exception as exc:
            if self._status(exc) != 404:
                raise

    async def _set_cost(self, core: Any, s: km.KubeSettings, pod: str, cost: int) -> None:
        patch = {"metadata": {"annotations": {km.DELETION_COST: str(cost)}}}
        await self._call(
            core.patch_namespaced_pod, pod, s.namespace, patch, _content_type=MERGE_PATCH
        )

    async def _pods(self, group: GroupSpec, s: km.KubeSettings) -> list[Instance]:
        core, _, _ = self._apis()
        try:
            pods = await self._call(
                core.list_namespaced_pod, s.namespace, label_selector=_selector(group)
            )
        except Exception as exc:
            if self._status(exc) == 404:  # an API without pods (kmock): report replicas only
                return []
            raise
        out = []
        for pod in pods.items:
            annotations = pod.metadata.annotations or {}
            cost = int(annotations.get(km.DELETION_COST, "0") or 0)
            phase = (pod.status.phase if pod.status else None) or "Pending"
            if pod.metadata.deletion_timestamp:
                state = STOPPING
            else:
                state = {"Pending": PENDING, "Running": RUNNING}.get(phase, GONE)
            out.append(
                Instance(
                    id=pod.metadata.name,
                    state=state,
                    protected=cost >= km.PROTECTED_COST,
                    details={"phase": phase, "node": pod.spec.node_name if pod.spec else None},
                )
            )
        return out

    async def _list_jobs(self, group: GroupSpec, s: km.KubeSettings) -> list[Instance]:
        _, _, batch = self._apis()
        jobs = await self._call(
            batch.list_namespaced_job, s.namespace, label_selector=_selector(group)
        )
        out = []
        for job in jobs.items:
            status = job.status
            if status and (status.succeeded or status.failed):
                continue
            state = RUNNING if status and status.active else PENDING
            out.append(Instance(id=job.metadata.name, state=state, details={"kind": "Job"}))
        return out

    async def _top_up_jobs(self, group: GroupSpec, s: km.KubeSettings, size: int) -> None:
        """Create Jobs until ``size`` are active; fewer only as Jobs finish or are terminated."""
        _, _, batch = self._apis()
        active = len(await self._list_jobs(group, s))
        for _ in range(max(0, int(size) - active)):
            job_name = f"{km.names(group)['job_prefix']}{secrets.token_hex(4)}"
            job = km.build_manifests(group, s, job_name=job_name)["job"]
            await self._call(batch.create_namespaced_job, s.namespace, job)


def _selector(group: GroupSpec) -> str:
    return f"{km.GROUP_LABEL}={km.labels(group)[km.GROUP_LABEL]}"
