"""The ``kubernetes`` target: each version endpoint a Deployment + Service (+ Ingress), aliases
as Services whose selector is switched once the new version's pods are ready.

Options (the master's ``deploy_targets``): ``namespace`` (default ``default``), how to reach the
API server: ``host`` (+ ``api_token``, ``verify_ssl``, ``ca_cert``), else ``kubeconfig``
(+ ``context``), else the in-cluster service account; ``ingress_host`` (+ ``ingress_class``,
``ingress_annotations``, ``ingress_scheme``) to publish endpoints; ``ready_timeout`` seconds to
wait for ready replicas; ``image_pull_policy``. The images come from the deployment's registry
(the builder pushed them); its stored credentials become an image pull secret.
"""

from __future__ import annotations

import time
from typing import Any

from ..models import EndpointDef
from . import k8s_manifests as km
from .base import DeployFailed, DeploymentTarget, Emit, EndpointSpec, Health


class KubernetesTarget(DeploymentTarget):
    kind = "kubernetes"
    needs_registry = True

    def __init__(self, name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(name, options)
        self._api: Any = None

    @property
    def namespace(self) -> str:
        return str(self.options.get("namespace") or "default")

    def client(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            host = self.options.get("host")
            if host:
                configuration = client.Configuration()
                configuration.host = str(host).rstrip("/")
                configuration.verify_ssl = bool(self.options.get("verify_ssl", True))
                if self.options.get("ca_cert"):
                    configuration.ssl_ca_cert = self.options["ca_cert"]
                if self.options.get("api_token"):
                    configuration.api_key = {"authorization": self.options["api_token"]}
                    configuration.api_key_prefix = {"authorization": "Bearer"}
                self._api = client.ApiClient(configuration)
            elif self.options.get("kubeconfig"):
                self._api = config.new_client_from_config(
                    config_file=self.options["kubeconfig"], context=self.options.get("context")
                )
            else:
                config.load_incluster_config()
                self._api = client.ApiClient()
        return self._api

    def _apis(self) -> tuple[Any, Any, Any]:
        from kubernetes import client

        api = self.client()
        return client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)

    @staticmethod
    def _apply(create: Any, patch: Any, name: str, namespace: str, body: dict[str, Any]) -> None:
        """Create, or patch what exists (idempotent)."""
        from kubernetes.client.exceptions import ApiException

        try:
            create(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            patch(name, namespace, body)

    @staticmethod
    def _delete(fn: Any, name: str, namespace: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            fn(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def manifests(self, spec: EndpointSpec) -> list[dict[str, Any]]:
        """Every object of one version endpoint, in apply order."""
        n = km.names(spec)
        objs = [km.pull_secret(spec, self.namespace)] if spec.registry_auth else []
        objs += [
            km.deployment(spec, self.namespace, self.options),
            km.service(spec, self.namespace),
        ]
        if self.options.get("ingress_host"):
            objs.append(km.ingress(spec, self.namespace, self.options, spec.version, n["service"]))
        return [o for o in objs if o]

    def _url(self, spec: EndpointSpec, ref: str, service: str) -> str:
        if self.options.get("ingress_host"):
            scheme = self.options.get("ingress_scheme", "https")
            return f"{scheme}://{self.options['ingress_host']}{km.ingress_path(spec, ref)}"
        return f"http://{service}.{self.namespace}.svc.cluster.local/"

    # --- the interface --------------------------------------------------------------------------

    def deploy(self, spec: EndpointSpec, emit: Emit) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        core, apps, net = self._apis()
        n = km.names(spec)
        try:
            for obj in self.manifests(spec):
                kind, name = obj["kind"], obj["metadata"]["name"]
                emit("status", f"Applying {kind} {self.namespace}/{name}")
                if kind == "Secret":
                    self._apply(
                        core.create_namespaced_secret,
                        core.patch_namespaced_secret,
                        name,
                        self.namespace,
                        obj,
                    )
                elif kind == "Deployment":
                    self._apply(
                        apps.create_namespaced_deployment,
                        apps.patch_namespaced_deployment,
                        name,
                        self.namespace,
                        obj,
                    )
                elif kind == "Service":
                    self._apply(
                        core.create_namespaced_service,
                        core.patch_namespaced_service,
                        name,
                        self.namespace,
                        obj,
                    )
                elif kind == "Ingress":
                    self._apply(
                        net.create_namespaced_ingress,
                        net.patch_namespaced_ingress,
                        name,
                        self.namespace,
                        obj,
                    )
        except ApiException as exc:
            raise DeployFailed(
                f"The Kubernetes API refused the endpoint's objects: {exc.status} {exc.reason}",
                hint="Check the target's namespace and the master's RBAC permissions.",
            ) from exc
        state = {
            "mode": "kubernetes",
            "namespace": self.namespace,
            "deployment": n["deployment"],
            "service": n["service"],
            "ingress": n["ingress"] if self.options.get("ingress_host") else None,
            "replicas": int(spec.replicas),
            "spec": {
                "project": spec.project,
                "deployment": spec.deployment,
                "version": spec.version,
                "endpoint": spec.definition.name,
                "port": int(spec.definition.port),
            },
            "url": self._url(spec, spec.version, n["service"]),
        }
        self._wait_ready(state, emit)
        return state

    def _wait_ready(self, state: dict[str, Any], emit: Emit) -> None:
        timeout = float(self.options.get("ready_timeout", 300))
        deadline = time.monotonic() + timeout
        emit("status", f"Waiting for {state['replicas']} ready replica(s)")
        while True:
            health = self.health(state)
            if health.state == "ready":
                emit("status", f"Endpoint ready: {health.detail}")
                return
            if time.monotonic() > deadline:
                raise DeployFailed(
                    f"The endpoint's pods were not ready within {timeout:.0f} s ({health.detail})."
                    " The previous version keeps serving.",
                    hint="GET .../deployment-endpoints/<id>/logs/ and kubectl describe pods.",
                )
            time.sleep(1.0)

    def stop(self, state: dict[str, Any]) -> None:
        core, apps, net = self._apis()
        ns = state.get("namespace") or self.namespace
        if state.get("ingress"):
            self._delete(net.delete_namespaced_ingress, state["ingress"], ns)
        self._delete(core.delete_namespaced_service, state["service"], ns)
        self._delete(apps.delete_namespaced_deployment, state["deployment"], ns)

    def health(self, state: dict[str, Any]) -> Health:
        from kubernetes.client.exceptions import ApiException

        _, apps, _ = self._apis()
        try:
            obj = apps.read_namespaced_deployment(
                state["deployment"], state.get("namespace") or self.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return Health("stopped", "The Deployment is gone.")
            return Health("unknown", f"The Kubernetes API answered {exc.status}.")
        want = int(state.get("replicas") or 1)
        ready = int((obj.status and obj.status.ready_replicas) or 0)
        detail = f"{ready}/{want} replicas ready"
        return Health("ready" if ready >= want else "starting", detail)

    def logs(self, state: dict[str, Any], tail: int = 200) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        ns = state.get("namespace") or self.namespace
        spec = state.get("spec") or {}
        labels = ",".join(
            f"{k}={km.label_value(v)}"
            for k, v in (
                ("valohai.com/deployment", spec.get("deployment", "")),
                ("valohai.com/version", spec.get("version", "")),
                ("valohai.com/endpoint", spec.get("endpoint", "")),
            )
        )
        try:
            pods = core.list_namespaced_pod(ns, label_selector=labels).items or []
            lines: list[str] = []
            for pod in pods:
                text = core.read_namespaced_pod_log(pod.metadata.name, ns, tail_lines=tail)
                lines += [f"[{pod.metadata.name}] {line}" for line in str(text).splitlines()]
            return lines[-tail:]
        except ApiException as exc:
            return [f"(no pod logs: the Kubernetes API answered {exc.status})"]

    def url(self, state: dict[str, Any]) -> str | None:
        return state.get("url")

    def switch_alias(
        self, deployment: str, alias: str, endpoint: str, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Create or re-point the alias Service (and Ingress) at the version of ``state``."""
        core, _, net = self._apis()
        s = state["spec"]
        spec = EndpointSpec(
            endpoint_id="",
            project=s["project"],
            deployment=s["deployment"],
            version=s["version"],
            definition=EndpointDef(name=s["endpoint"], image="", port=int(s["port"])),
            image="",
        )
        name = km.dns_name(deployment, alias, endpoint)
        ns = state.get("namespace") or self.namespace
        svc = km.service(spec, ns, name=name)
        self._apply(core.create_namespaced_service, core.patch_namespaced_service, name, ns, svc)
        if self.options.get("ingress_host"):
            ing = km.ingress(spec, ns, self.options, alias, name)
            self._apply(net.create_namespaced_ingress, net.patch_namespaced_ingress, name, ns, ing)
        return {"service": name, "url": self._url(spec, alias, name)}

    def alias_manifests(self, spec: EndpointSpec, alias: str) -> list[dict[str, Any]]:
        """The alias objects (for validation): a Service and, with an ingress host, an Ingress."""
        name = km.dns_name(spec.deployment, alias, spec.definition.name)
        objs = [km.service(spec, self.namespace, name=name)]
        if self.options.get("ingress_host"):
            objs.append(km.ingress(spec, self.namespace, self.options, alias, name))
        return objs
