"""The job body every Python system runs, and the producers' Redis probe.

``record(i)``: one pipelined round trip, ``HSET bench:start <i> <time>`` + ``INCR bench:done``, through a
redis-py client of the worker process's own (made after any fork). Redis is ``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
import time

import redis

URL = os.environ.get("BENCH_REDIS_URL", "")
START, DONE = "bench:start", "bench:done"
_client: redis.Redis | None = None
_pid = 0


def client() -> redis.Redis:
    """This process's own client (a new one after a fork)."""
    global _client, _pid
    if _client is None or _pid != os.getpid():
        _client, _pid = redis.Redis.from_url(URL), os.getpid()
    return _client


def record(i: int) -> None:
    """The job body: note when job ``i`` started and count it done, in one round trip."""
    started = time.time()
    pipe = client().pipeline(transaction=False)
    pipe.hset(START, str(i), repr(started))
    pipe.incr(DONE)
    pipe.execute()


def started(i: int) -> bool:
    """Whether job ``i``'s body has started."""
    return bool(client().hexists(START, str(i)))
