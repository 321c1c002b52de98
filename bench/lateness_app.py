"""The app of ``scheduler_lateness.py`` (``-A lateness_app:app`` with ``bench/`` on the path).

``record(due)`` appends ``[started_at, due]`` (msgpack) to ``bench:lateness``; the connection is made
once per process, after the worker forked.
"""

from __future__ import annotations

import os
import time

import redis

from resq import Resq
from resq.codec import pack

app = Resq()
KEY = "bench:lateness"
_client: redis.Redis | None = None
_pid = 0


def _redis() -> redis.Redis:
    global _client, _pid
    if _client is None or _pid != os.getpid():
        _client, _pid = redis.Redis.from_url(app.settings.url), os.getpid()
    return _client


@app.task(name="bench.record")
def record(due: float) -> None:
    """Record when this job started next to when it was due."""
    started = time.time()
    _redis().rpush(KEY, pack([started, due]))
