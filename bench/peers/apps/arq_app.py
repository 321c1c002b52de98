"""arq: ``arq arq_app.WorkerSettings`` (its defaults: up to 10 jobs at once, polling every 0.5 s).

The body goes through arq's own client (``ctx["redis"]``, redis.asyncio), pipelined without a transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import body
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

SETTINGS = RedisSettings.from_dsn(body.URL)
_pool: ArqRedis | None = None


async def record(ctx: dict[str, Any], i: int) -> None:
    """The job body."""
    started = time.time()
    async with ctx["redis"].pipeline(transaction=False) as pipe:
        pipe.hset(body.START, str(i), repr(started))
        pipe.incr(body.DONE)
        await pipe.execute()


class WorkerSettings:
    """arq's worker settings: only the function and the server."""

    functions = [record]  # noqa: RUF012
    redis_settings = SETTINGS


async def pool() -> ArqRedis:
    """The producer's pool."""
    global _pool
    if _pool is None:
        _pool = await create_pool(SETTINGS)
    return _pool


async def enqueue(i: int) -> None:
    """Queue job ``i``."""
    await (await pool()).enqueue_job("record", i)


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds)."""
    await (await pool()).enqueue_job("record", i, _defer_by=dt.timedelta(seconds=max(0.0, due - time.time())))
