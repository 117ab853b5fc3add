"""The scaler: sizes every worker group to its queue, within its min and max.

One pass per ``scaler_interval`` seconds, by one master at a time (a Redis lease):

- **demand** = queued + running executions of the group (one execution per worker), less those
  running on draining workers; **target** = demand clamped to ``[min_size, max_size]``.
- **up** at once: fewer active instances than the target -> ``set_desired`` (draining ones still
  count towards the provider's size until they are gone).
- **down** slowly (the hysteresis): only workers idle for the group's ``idle_timeout`` are
  drained, the longest idle first, never more than the surplus. A drained worker claims nothing
  more; a later pass terminates it once no execution runs on it. A busy worker is never chosen,
  and providers that can protect instances from their own scale-in (AWS) get busy ones protected.

Each action is recorded in ``scaling_decisions`` (the last :data:`KEEP_DECISIONS` per group), and
the group's state after each pass in the environment's ``scaling`` field, which the waiting
reasons of queued executions read (:mod:`.reasons`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from typing import Any

from jupyter_valohai.models import QUEUED, STARTED, STOPPING

from ..context import Context
from ..services.environments import EnvironmentService
from ..store import Doc
from .groups import group_spec
from .providers.base import PENDING, RUNNING, GroupSpec, Instance, WorkerGroupProvider
from .providers.base import STOPPING as INSTANCE_STOPPING
from .registry import ProviderRegistry
from .workers import GONE as WORKER_GONE
from .workers import WorkerRegistry, state_of

log = logging.getLogger(__name__)

DECISIONS = "scaling_decisions"
KEEP_DECISIONS = 200
LEASE_KEY = "vh:scaler:leader"


class Scaler:
    def __init__(
        self, ctx: Context, environments: EnvironmentService, registry: ProviderRegistry
    ) -> None:
        self.ctx = ctx
        self.environments = environments
        self.registry = registry
        self.workers = WorkerRegistry(ctx)
        self.decisions = ctx.store.db[DECISIONS]
        self.master_url = ctx.config.public_url
        self._ensured: dict[str, str] = {}
        self._expected: dict[str, float] = {}  # slug -> when the workers asked for should be up
        self._errors: dict[str, str] = {}
        self._me = uuid.uuid4().hex

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        interval = self.ctx.config.scaler_interval
        while True:
            try:
                if await self._lead(interval):
                    await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scaler pass failed")
            await asyncio.sleep(interval)

    async def _lead(self, interval: float) -> bool:
        """Hold the scaler lease (one scaling master among replicas)."""
        ttl = max(int(interval * 3000), 3000)
        redis = self.ctx.redis
        if await redis.set(LEASE_KEY, self._me, nx=True, px=ttl):
            return True
        holder = await redis.get(LEASE_KEY)
        if holder is not None and holder.decode() == self._me:
            await redis.pexpire(LEASE_KEY, ttl)
            return True
        return False

    async def pass_once(self) -> None:
        async for env in self.ctx.store.environments.find({}):
            if not env.get("provider"):
                continue  # agents started by hand; nothing to size
            try:
                await self.scale(env)
                if self._errors.pop(env["slug"], None):
                    await self._set_status(env, {"error": None})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                log.warning("scaling %s failed: %s", env["slug"], message)
                if self._errors.get(env["slug"]) != message:
                    self._errors[env["slug"]] = message
                    await self.record(env, "error", f"Scaling failed: {message}")
                await self._set_status(env, {"error": message})

    async def close(self) -> None:
        await self.registry.close()

    # --- one group ------------------------------------------------------------------------------

    async def spec(self, env: Doc) -> GroupSpec:
        token = await self.environments.group_token(env)
        return group_spec(env, self.master_url, token)

    async def scale(self, env: Doc) -> dict[str, Any]:
        provider = self.registry.get(env["provider"])
        spec = await self.spec(env)
        key = json.dumps(dataclasses.asdict(dataclasses.replace(spec, token="")), sort_keys=True)
        if self._ensured.get(spec.slug) != key:
            await provider.ensure_group(spec)
            self._ensured[spec.slug] = key
        store, executions = self.ctx.store, self.ctx.store.executions
        # Store.count: answered by the (environment, status) index, not a collection scan.
        queued = await store.count(executions, {"environment": env["_id"], "status": QUEUED})
        running = await store.count(
            executions, {"environment": env["_id"], "status": {"$in": [STARTED, STOPPING]}}
        )
        workers = await self.workers.list(env["_id"], include_gone=True)
        if not getattr(provider, "scalable", True):
            return await self._report_only(env, workers, queued, running)

        now = time.time()
        instances = await provider.list_instances(spec)
        seen = [w for w in workers if state_of(w, now) != WORKER_GONE]
        by_instance = {w["instance_id"]: w for w in seen if w.get("instance_id")}
        live = [i for i in instances if i.state in (PENDING, RUNNING)]
        draining = [i for i in live if (by_instance.get(i.id) or {}).get("drain")]
        active = [i for i in live if i not in draining]
        busy = [i for i in active if (by_instance.get(i.id) or {}).get("execution")]
        idle = [i for i in active if i.id in by_instance and i not in busy]
        starting = [i for i in active if i.id not in by_instance]
        on_draining = sum(1 for i in draining if by_instance[i.id].get("execution"))
        demand = max(queued + running - on_draining, 0)
        target = max(spec.min_size, min(spec.max_size, demand))

        await self._protect(env, provider, spec, live, by_instance)
        # Instances whose worker was drained on an earlier pass and runs nothing: stop them.
        for inst in draining:
            worker = by_instance[inst.id]
            if worker.get("execution") or await self.workers.running_execution(worker):
                continue
            await provider.terminate(spec, inst.id)
            await self.workers.mark_stopped(worker["_id"])
            await self.record(env, "terminate", f"Stopped idle drained worker {inst.id}.")

        if target > len(active):
            await provider.set_desired(spec, target + len(draining))
            self._expected[spec.slug] = now + provider.expected_start_seconds
            await self.record(
                env,
                "scale_up",
                f"Scaling up from {len(active)} to {target} worker(s): {queued} queued, "
                f"{running} running (max {spec.max_size}).",
                size=len(active),
                target=target,
            )
            starting = starting + [Instance("?", PENDING)] * (target - len(active))
        elif len(active) > target:
            await self._scale_in(env, spec, idle, by_instance, len(active) - target, now)
        if not starting:
            self._expected.pop(spec.slug, None)
        status = {
            "provider": spec.provider,
            "size": len(live),
            "active": len(active),
            "starting": len(starting),
            "busy": len(busy),
            "idle": len(idle),
            "draining": len(draining),
            "stopping": sum(1 for i in instances if i.state == INSTANCE_STOPPING),
            "target": target,
            "queued": queued,
            "running": running,
            "min_size": spec.min_size,
            "max_size": spec.max_size,
            "expected_ready_at": self._expected.get(spec.slug),
            "expected_start_seconds": provider.expected_start_seconds,
            "updated_at": now,
        }
        await self._set_status(env, status)
        return status

    async def _scale_in(
        self,
        env: Doc,
        spec: GroupSpec,
        idle: list[Instance],
        by_instance: dict[str, Doc],
        surplus: int,
        now: float,
    ) -> None:
        timeout = float(env.get("idle_timeout", 300.0))
        candidates = sorted(
            (i for i in idle if now - float(by_instance[i.id].get("idle_since") or now) >= timeout),
            key=lambda i: float(by_instance[i.id].get("idle_since") or now),
        )
        drained = []
        for inst in candidates[:surplus]:
            if await self.workers.drain_if_idle(by_instance[inst.id]["_id"], "scale-in"):
                drained.append(inst.id)
        if drained:
            await self.record(
                env,
                "drain",
                f"Draining {len(drained)} worker(s) idle for over {timeout:g} s: "
                f"{', '.join(drained)}.",
                instances=drained,
            )

    async def _protect(
        self,
        env: Doc,
        provider: WorkerGroupProvider,
        spec: GroupSpec,
        live: list[Instance],
        by_instance: dict[str, Doc],
    ) -> None:
        if type(provider).set_protected is WorkerGroupProvider.set_protected:
            return  # nothing of its own scales in
        for inst in live:
            worker = by_instance.get(inst.id)
            want = bool(worker and worker.get("execution"))
            if want != inst.protected:
                await provider.set_protected(spec, inst.id, want)
                if want:
                    text = f"Protected busy instance {inst.id} from scale-in."
                else:
                    text = f"Instance {inst.id} is idle: no longer protected from scale-in."
                await self.record(env, "protect" if want else "unprotect", text, instance=inst.id)

    async def _report_only(
        self, env: Doc, workers: list[Doc], queued: int, running: int
    ) -> dict[str, Any]:
        now = time.time()
        live = [w for w in workers if state_of(w, now) != WORKER_GONE]
        status = {
            "provider": env.get("provider"),
            "size": len(live),
            "active": sum(1 for w in live if not w.get("drain")),
            "starting": 0,
            "busy": sum(1 for w in live if w.get("execution")),
            "idle": sum(1 for w in live if not w.get("execution") and not w.get("drain")),
            "draining": sum(1 for w in live if w.get("drain")),
            "target": None,
            "queued": queued,
            "running": running,
            "min_size": env.get("min_size", 0),
            "max_size": env.get("max_size", 0),
            "expected_ready_at": None,
            "updated_at": now,
        }
        await self._set_status(env, status)
        return status

    # --- records --------------------------------------------------------------------------------

    async def _set_status(self, env: Doc, status: dict[str, Any]) -> None:
        sets = {f"scaling.{k}": v for k, v in status.items()}
        await self.ctx.store.environments.update_one({"_id": env["_id"]}, {"$set": sets})

    async def record(self, env: Doc, action: str, message: str, **details: Any) -> None:
        """Keep one scaling decision (and only the last KEEP_DECISIONS of the group)."""
        log.info("scaler %s: %s", env["slug"], message)
        await self.decisions.insert_one(
            {
                "environment": env["_id"],
                "time": time.time(),
                "action": action,
                "message": message,
                "details": details,
            }
        )
        old = self.decisions.find({"environment": env["_id"]}, {"_id": 1}).sort("time", -1)
        stale = [d["_id"] async for d in old.skip(KEEP_DECISIONS)]
        if stale:
            await self.decisions.delete_many({"_id": {"$in": stale}})


async def list_decisions(ctx: Context, env_id: str, limit: int = 50) -> list[dict[str, Any]]:
    from jupyter_valohai.models import isoformat

    from ..store import as_dt

    cursor = ctx.store.db[DECISIONS].find({"environment": env_id}).sort("time", -1).limit(limit)
    return [
        {
            "time": isoformat(as_dt(d["time"])),
            "action": d["action"],
            "message": d["message"],
            "details": d.get("details") or {},
        }
        async for d in cursor
    ]
