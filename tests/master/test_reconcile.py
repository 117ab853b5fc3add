"""The queue reconciler reads an environment's queued executions only when its Redis queue's
length differs from MongoDB's count, and then puts back exactly the missing ones."""

from __future__ import annotations

from mastertest import MasterClient

from master.queue import queue_key


async def test_reconcile_repairs_only_queues_that_differ(master: MasterClient) -> None:
    project, commit = await master.setup_commit()
    ids = [(await master.submit(project["id"], commit["identifier"]))["id"] for _ in range(3)]
    env_id = (await master.execution(ids[0]))["environment"]["id"]
    ctx, scheduler = master.master.ctx, master.master.scheduler
    key = queue_key(env_id)
    assert await scheduler.reconcile() == 0  # every queue already complete

    await ctx.redis.zrem(key, ids[1])  # a master died between the insert and the push
    assert await scheduler.reconcile() == 1
    members = {m.decode() for m in await ctx.redis.zrange(key, 0, -1)}
    assert members == set(ids)

    await ctx.redis.delete(key)  # Redis lost the queue
    assert await scheduler.reconcile() == 3
    assert await ctx.redis.zcard(key) == 3
    order = [m.decode() for m in await ctx.redis.zrange(key, 0, -1)]
    assert order == ids  # back in submission order (their queued_at)

    # A claimed execution leaves both: nothing to do.
    claim = await master.claim()
    assert claim.status_code == 200 and claim.json()["id"] == ids[0]
    assert await scheduler.reconcile() == 0 and await ctx.redis.zcard(key) == 2
