"""The inference builder: take an endpoint off the build queue, build its image offline, push it
to the deployment's registry with the stored credentials, then hand it to :mod:`.rollout`.

It runs inside the master process (the embedded default: it reads code archives and datums from
the artifact store directly) with the Docker SDK in worker threads. Build output is a log like an
execution's: the endpoint id is its key in :class:`master.logs.LogService`, pushed to viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import tempfile
from typing import Any

from jupyter_valohai.errors import ValohaiError
from jupyter_valohai.stores.registry import StoreSet

from ..context import Context
from ..logs import event_topic
from ..services.registries import RegistryCredentialService
from ..store import Doc
from .context import ContextError, write_context
from .models import EndpointDef
from .rollout import Rollout
from .service import DeploymentService
from .targets.local import LABEL_OWNER, engine

log = logging.getLogger(__name__)


class BuildFailed(ValohaiError):
    code = "build_failed"


class ThreadLog:
    """Collects log events from a worker thread; :meth:`flush` appends them to the build log."""

    def __init__(self, ctx: Context, key: str, loop: asyncio.AbstractEventLoop) -> None:
        self.ctx, self.key, self.loop = ctx, key, loop
        self.pending: list[dict[str, str]] = []
        self.lines: list[str] = []  # the whole log, for the failure reason

    def __call__(self, stream: str, message: str) -> None:
        self.lines.append(message)
        fut = asyncio.run_coroutine_threadsafe(
            self.ctx.logs.append(self.key, [{"stream": stream, "message": message}]), self.loop
        )
        with contextlib.suppress(Exception):
            fut.result(10)


def image_name(registry: str, project: str, deployment: str, endpoint: str, version: str) -> str:
    """``<registry>/<project>/<deployment>-<endpoint>:<version>`` (lowercase, Docker-safe)."""
    repo_part = re.sub(r"[^a-z0-9._-]+", "-", project.lower()).strip("-._") or "project"
    name = f"{repo_part}/{deployment}-{endpoint}"
    prefix = f"{registry}/" if registry else "vh-deploy/"
    return f"{prefix}{name}:{version}"


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _build_reason(step: str, detail: str, lines: list[str]) -> str:
    """One clear sentence: which step failed and what the tool said (pip's ERROR lines)."""
    said = [ln.strip() for ln in lines if ln.strip().startswith("ERROR")]
    if "requirements-deployment.txt" in step:
        where = "installing requirements-deployment.txt failed"
    elif step:
        where = f"{step.split(' : ', 1)[-1][:120]!r} failed"
    else:
        where = "the build failed"
    because = "; ".join(said[-3:]) or detail.strip()[-300:]
    return f"The image build failed: {where}: {because}"


class Builder:
    """One build at a time; ``run`` loops until cancelled."""

    def __init__(self, ctx: Context, service: DeploymentService, rollout: Rollout) -> None:
        self.ctx = ctx
        self.service = service
        self.rollout = rollout
        self.stores = StoreSet(ctx.artifacts, ctx.config.named_stores)
        self.registries = RegistryCredentialService(ctx)
        self.work_root = os.path.join(ctx.config.data_dir, "builds")
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Build queued endpoints until :meth:`stop` (a build in progress finishes first)."""
        await self.service.queue.reconcile(await self.service.queued_endpoints())
        while not self.stopping.is_set():
            try:
                endpoint_id = await self.service.queue.pop(5, self.stopping)
                if endpoint_id:
                    await self.build(endpoint_id)
            except Exception:
                log.exception("build loop")
                await asyncio.sleep(1)

    async def build(self, endpoint_id: str) -> None:
        doc = await self.service.move(endpoint_id, "queued", status="building")
        if doc is None:
            return  # taken by another builder, or no longer queued
        loop = asyncio.get_running_loop()
        emit = ThreadLog(self.ctx, endpoint_id, loop)
        deployment = await self.service.get_deployment(doc["deployment"])
        project = await self.ctx.store.projects.find_one({"_id": doc["project"]}) or {}
        definition = EndpointDef.from_doc(doc["definition"])
        image = image_name(
            deployment["registry"],
            str(project.get("name") or doc["project"]),
            deployment["name"],
            definition.name,
            doc["version_name"],
        )
        workdir = os.path.join(self.work_root, endpoint_id)
        phase = "build"
        try:
            await self.ctx.logs.status(endpoint_id, f"Building {image}")
            await self._write_context(doc, definition, workdir)
            client = await asyncio.to_thread(engine)
            if client is None:
                await self.ctx.logs.status(
                    endpoint_id,
                    "No Docker engine answers: no image is built, the endpoint "
                    "runs as a local process",
                )
                image = ""
            else:
                try:
                    await self._docker_build(client, workdir, image, definition, emit)
                    if deployment["registry"]:
                        phase = "push"
                        auth = await self.registries.auth_for(image)
                        await asyncio.to_thread(self._push, client, image, auth, emit)
                finally:
                    client.close()
            moved = await self.service.move(endpoint_id, "building", status="starting", image=image)
            if moved is None:  # stopped while it was building
                await self.ctx.logs.status(endpoint_id, "Stopped before it started")
                return
            phase = "start"
            await self.rollout.start(endpoint_id, workdir)
        except (BuildFailed, ContextError, ValohaiError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            await self.ctx.logs.status(endpoint_id, f"{phase.capitalize()} failed: {reason}")
            await self.service.move(
                endpoint_id, ("building", "starting"), status="failed", phase=phase, reason=reason
            )
        except Exception as exc:  # any failure must end the build visibly
            log.exception("build of %s", endpoint_id)
            reason = f"{type(exc).__name__}: {exc}"
            await self.ctx.logs.status(endpoint_id, f"{phase.capitalize()} failed: {reason}")
            await self.service.move(
                endpoint_id, ("building", "starting"), status="failed", phase=phase, reason=reason
            )
        finally:
            final = await self.service.get_endpoint(endpoint_id)
            if image or final["status"] != "running":  # a process runs from the context
                await asyncio.to_thread(shutil.rmtree, workdir, True)
            await self.ctx.logs.archive(endpoint_id)
            await self.service.endpoints.update_one(
                {"_id": endpoint_id}, {"$set": {"logs_archived": True}}
            )
            await self.ctx.notifier.publish(event_topic(endpoint_id))  # wakes build-log streams

    async def _write_context(self, doc: Doc, definition: EndpointDef, workdir: str) -> None:
        commit = await self.ctx.store.commits.find_one(
            {"project": doc["project"], "identifier": (await self._version(doc))["commit"]}
        )
        if not commit:
            raise BuildFailed("The version's commit is gone.")
        openers: dict[str, Any] = {}
        for file_name, datum_id in doc.get("files", {}).items():
            datum = await self.ctx.store.datums.find_one({"_id": datum_id})
            if not datum:
                raise BuildFailed(f"File {file_name!r}: datum {datum_id} is gone.")
            store = self.stores.get(datum.get("store"))
            openers[file_name] = lambda store=store, key=datum["key"]: store.open(key)

        def write() -> None:
            shutil.rmtree(workdir, ignore_errors=True)
            os.makedirs(workdir)
            archive = None
            if commit.get("code_key"):
                fd, archive = tempfile.mkstemp(suffix=".tgz", dir=os.path.dirname(workdir))
                with os.fdopen(fd, "wb") as out, self.ctx.artifacts.open(commit["code_key"]) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            try:
                write_context(workdir, definition, archive, openers, offline=True)
            finally:
                if archive:
                    os.unlink(archive)

        await asyncio.to_thread(write)

    async def _version(self, doc: Doc) -> Doc:
        return await self.service.get_version(doc["version"])

    async def _docker_build(
        self, client: Any, workdir: str, image: str, definition: EndpointDef, emit: ThreadLog
    ) -> None:
        auth = await self.registries.auth_for(definition.image)
        await asyncio.to_thread(self._ensure_base, client, definition.image, auth, emit)
        owner = self.ctx.config.data_dir
        await asyncio.to_thread(self._build, client, workdir, image, emit, owner)

    @staticmethod
    def _ensure_base(client: Any, base: str, auth: dict[str, str] | None, emit: ThreadLog) -> None:
        import docker.errors

        try:
            client.images.get(base)
            return
        except docker.errors.ImageNotFound:
            pass
        emit("status", f"Pulling base image {base}")
        try:
            client.images.pull(base, auth_config=auth)
        except docker.errors.DockerException as exc:
            raise BuildFailed(
                f"The endpoint's image {base!r} is not on the builder and cannot be pulled: "
                f"{getattr(exc, 'explanation', None) or exc}",
                hint="Load the image on the builder's engine, or store the registry's "
                "credentials (POST /api/v0/registry-credentials/).",
            ) from exc

    @staticmethod
    def _build(client: Any, workdir: str, image: str, emit: ThreadLog, owner: str) -> None:
        import docker.errors

        try:
            stream = client.api.build(
                path=workdir,
                tag=image,
                network_mode="none",
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                labels={"org.jupyter-valohai.deployment-image": "1", LABEL_OWNER: owner},
            )
            step = ""
            for chunk in stream:
                if "stream" in chunk:
                    for line in ANSI.sub("", str(chunk["stream"])).splitlines():
                        if line.strip():
                            emit("stdout", line)
                            if line.startswith("Step "):
                                step = line
                if "error" in chunk:
                    detail = ANSI.sub("", chunk.get("errorDetail", {}).get("message") or "")
                    emit("stderr", detail or str(chunk["error"]))
                    raise BuildFailed(_build_reason(step, detail, emit.lines))
        except docker.errors.DockerException as exc:
            raise BuildFailed(f"The image build failed: {exc}") from exc
        emit("status", f"Built {image}")

    @staticmethod
    def _push(client: Any, image: str, auth: dict[str, str] | None, emit: ThreadLog) -> None:
        import docker.errors

        repository, _, tag = image.rpartition(":")
        emit("status", f"Pushing {image}")
        try:
            for line in client.api.push(
                repository, tag, auth_config=auth, stream=True, decode=True
            ):
                if "error" in line:
                    detail = line.get("errorDetail", {}).get("message") or line["error"]
                    hint = "" if auth else " (no credentials are stored for this registry)"
                    raise BuildFailed(f"The push to the registry failed: {detail}{hint}")
        except docker.errors.DockerException as exc:
            raise BuildFailed(f"The push to the registry failed: {exc}") from exc
        emit("status", f"Pushed {image}")
