"""The app of the chaos suite (``resq worker|scheduler -A tests.apps.chaos:app``, ``tests/chaos``).

Every task writes what it did to a **ledger**: a second ``redis-server``, never faulted, named by
``RESQ_CHAOS_LEDGER_URL``. The ledger is a witness outside the Redis under test, so that restarting that
Redis from an older snapshot, or from an AOF, cannot roll back the record of which jobs ran (and the load
scenario measures resq's memory alone). Per job id, the ledger holds:

- ``chaos:runs``: id -> how many runs reached the end of the task's body;
- ``chaos:last``: id -> ``"<time.time()> <pid>"`` of the latest of those runs;
- ``chaos:starts``: a list of ``"<id> <attempt> <time.time()> <pid>"``, one per run begun (``long`` only).

``app = Resq()`` reads ``RESQ_REDIS_URL`` (set by the harness); ``RESQ_CHAOS_RESULT_TTL`` shortens how long
results are kept (the load scenario). ``timed`` also fires the ``chaos.tick`` periodic entry every second,
with ``misfire="all"``, so that every tick must fire exactly once (the scheduler scenario).
"""

from __future__ import annotations

import os
import threading
import time

import redis

from resq import Resq, current_job

__all__ = ["LAST", "LEDGER_ENV", "RUNS", "STARTS", "TICK_ENTRY", "app", "gil", "long", "record", "timed"]

#: The environment variable naming the ledger's url.
LEDGER_ENV = "RESQ_CHAOS_LEDGER_URL"
RUNS = "chaos:runs"
LAST = "chaos:last"
STARTS = "chaos:starts"
#: The name of the periodic entry (and task) of ``timed``.
TICK_ENTRY = "chaos.tick"

_TTL = float(os.environ.get("RESQ_CHAOS_RESULT_TTL", "86400"))
app = Resq(result_ttl=_TTL)
timed = Resq(result_ttl=_TTL)

_lock = threading.Lock()
_client: tuple[int, redis.Redis] | None = None


def ledger() -> redis.Redis:
    """This process's client of the ledger (a new one after a fork)."""
    global _client
    with _lock:
        if _client is None or _client[0] != os.getpid():
            _client = (os.getpid(), redis.Redis.from_url(os.environ[LEDGER_ENV]))
        return _client[1]


def note_run() -> None:
    """Count one completed run of the current job in the ledger."""
    job = current_job()
    assert job is not None
    pipe = ledger().pipeline(transaction=False)
    pipe.hincrby(RUNS, job.id, 1)
    pipe.hset(LAST, job.id, f"{time.time():.6f} {os.getpid()}")
    pipe.execute()


@app.task(name="chaos.record", retries=3, backoff=0.1)
def record(i: int, ms: float = 0.0) -> int:
    """Works ``ms`` milliseconds, then counts its run."""
    if ms:
        time.sleep(ms / 1000)
    note_run()
    return i


@app.task(name="chaos.long", retries=0)
def long(seconds: float) -> float:
    """Notes its start, works ``seconds`` on its first attempt only (a re-run ends at once), counts its run."""
    job = current_job()
    assert job is not None
    ledger().rpush(STARTS, f"{job.id} {job.attempt} {time.time():.6f} {os.getpid()}")
    if job.attempt == 1:
        time.sleep(seconds)
    note_run()
    return seconds


@app.task(name="chaos.gil", retries=0)
def gil(n: int) -> int:
    """One C call that holds the GIL throughout (``sum`` over a range of ``n``), then counts its run."""
    total = sum(range(n))
    note_run()
    return total


@timed.task(name="chaos.delayed", queue="timed", retries=3, backoff=0.1)
def delayed(i: int) -> int:
    """A delayed job of the scheduler scenario: counts its run."""
    note_run()
    return i


@timed.periodic(every=1, name=TICK_ENTRY, queue="timed", misfire="all")
def tick() -> None:
    """Fired every second by the schedulers (job id ``cron:chaos.tick:<tick ms>``): counts its run."""
    note_run()
