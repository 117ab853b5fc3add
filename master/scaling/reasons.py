"""Why a queued execution is still waiting, in one sentence a user can act on.

Read from the environment's group settings, the scaler's last report on it (``scaling``) and the
workers registry; shown as ``waiting_reason`` when an execution is described (API, ``vh exec
info``, the Jupyter side).
"""

from __future__ import annotations

import time
from typing import Any

from ..context import Context
from ..queue import queue_key
from ..store import Doc
from .workers import SEEN_SECONDS, WorkerRegistry


def fits(env: Doc, worker: dict[str, Any] | None) -> bool:
    """Whether a worker reporting its GPUs has as many as its group asks for."""
    need = int(env.get("gpus") or 0)
    if not need or not worker or "gpus" not in worker:
        return True  # agents that do not report GPUs are trusted to have them
    try:
        return int(worker["gpus"]) >= need
    except (TypeError, ValueError):
        return False


async def queue_position(ctx: Context, env_id: str, execution_id: str) -> int | None:
    rank = await ctx.redis.zrank(queue_key(env_id), execution_id)
    return None if rank is None else int(rank) + 1


async def queue_positions(ctx: Context, pairs: list[tuple[str, str]]) -> dict[str, int | None]:
    """:func:`queue_position` of many (environment id, execution id) pairs, in one round trip."""
    if not pairs:
        return {}
    pipe = ctx.redis.pipeline(transaction=False)
    for env_id, execution_id in pairs:
        pipe.zrank(queue_key(env_id), execution_id)
    ranks = await pipe.execute()
    return {
        execution_id: None if rank is None else int(rank) + 1
        for (_, execution_id), rank in zip(pairs, ranks, strict=True)
    }


async def waiting_reason(
    ctx: Context,
    env: Doc,
    execution: Doc,
    workers: list[Doc] | None = None,
    positions: dict[str, int | None] | None = None,
) -> str:
    """The reason ``execution`` (queued in ``env``) has not started yet (``workers``: the
    group's live workers, ``positions``: :func:`queue_positions`, when the caller has them)."""
    group = f"'{env.get('slug') or env['_id']}'"
    provider = env.get("provider") or ""
    managed = bool(provider) and provider != "static"
    if workers is None:
        workers = await WorkerRegistry(ctx).list(env["_id"])
    accepting = [w for w in workers if not w.get("drain")]
    if positions is not None and execution["_id"] in positions:
        position = positions[execution["_id"]]
    else:
        position = await queue_position(ctx, env["_id"], execution["_id"])
    where = f" It is number {position} in the queue." if position else ""
    seen = f"in the last {SEEN_SECONDS:.0f} s"

    if not provider and not accepting:
        return (
            f"No worker group serves environment {group}: it has no provider to start workers "
            f"and no agent of it has checked in {seen}. Start an agent with the environment's "
            "token, or give the environment a provider."
        )
    need = int(env.get("gpus") or 0)
    if need and accepting and not any(fits(env, w) for w in accepting):
        best = max(int(w.get("gpus") or 0) for w in accepting)
        return (
            f"No worker of group {group} has the requested GPU: its executions need {need} "
            f"GPU(s) and its workers report at most {best}."
        )
    if provider == "static" and not accepting:
        return (
            f"Waiting for a machine of the static group {group}: no agent of it has checked in "
            f"{seen}, or all of them are draining."
        )
    max_size = int(env.get("max_size") or 0)
    if managed and max_size == 0 and not accepting:
        return (
            f"Group {group} is at its maximum size of 0 workers, so no worker will start for it. "
            "An administrator can raise its max_size, or run the execution in another environment."
        )
    scaling = env.get("scaling") or {}
    if managed and scaling.get("error"):
        return f"Group {group} cannot scale: {scaling['error']}"
    starting = int(scaling.get("starting") or 0) if managed else 0
    if starting:
        eta = scaling.get("expected_ready_at")
        left = max(float(eta) - time.time(), 0.0) if eta else 0.0
        when = f"in about {left:.0f} s" if left >= 1 else "any moment now"
        return (
            f"Scaling up group {group} ({provider} provider): {starting} worker(s) starting, "
            f"expected {when}.{where}"
        )
    idle = [w for w in accepting if not w.get("execution") and fits(env, w)]
    if idle:
        return f"{len(idle)} idle worker(s) of group {group} will claim it in a moment.{where}"
    if managed and len(accepting) >= max_size:
        return (
            f"Group {group} is at its maximum size ({max_size} worker(s), all busy); it starts "
            f"when one finishes.{where}"
        )
    if managed and not scaling:
        return f"Waiting for the scaler's first pass over group {group}.{where}"
    return f"Waiting for a free worker of group {group} ({len(accepting)} busy).{where}"
