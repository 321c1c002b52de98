"""The baseline: a hand-written LPUSH/BRPOP loop (``python loop_app.py``, the worker; the producer imports it).

A job is ``LPUSH bench:loop:queue <json>``; the worker ``BRPOP``s it, decodes it and runs the body. A delayed
job waits in the zset ``bench:loop:scheduled`` (score: due time); the worker moves due ones to the list
(one Lua call) at most every 100 ms and whenever its 100 ms ``BRPOP`` times out.
"""

from __future__ import annotations

import json
import time

from body import client, record

QUEUE, SCHEDULED = "bench:loop:queue", "bench:loop:scheduled"
PROMOTE_S = 0.1
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, msg in ipairs(due) do redis.call('LPUSH', KEYS[2], msg) end
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return #due
"""
TASKS = {"record": record}


def message(i: int) -> str:
    """The job's payload."""
    return json.dumps({"task": "record", "args": [i]})


async def enqueue(i: int) -> None:
    """Queue job ``i`` (one LPUSH)."""
    client().lpush(QUEUE, message(i))


async def enqueue_at(i: int, due: float) -> None:
    """Queue job ``i`` to run at ``due`` (epoch seconds; one ZADD)."""
    client().zadd(SCHEDULED, {message(i): due})


def main() -> None:
    """Run jobs until killed."""
    redis = client()
    promote = redis.register_script(PROMOTE)
    last = 0.0
    while True:
        item = redis.brpop([QUEUE], timeout=PROMOTE_S)
        if item is not None:
            msg = json.loads(item[1])
            TASKS[msg["task"]](*msg["args"])
        now = time.time()
        if item is None or now - last >= PROMOTE_S:
            promote(keys=[SCHEDULED, QUEUE], args=[now])
            last = now


if __name__ == "__main__":
    main()
