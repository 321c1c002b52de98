"""Tasks for the worker runtime tests (run by `resq worker` subprocesses; RESQ_REDIS_URL picks the db)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from resq import Resq, SoftTimeout, current_job

app = Resq()


def _redis():  # type: ignore[no-untyped-def]
    return app.broker.connection.client


@app.task(retries=0)
def work(i: int, seconds: float = 0.0) -> int:
    """Record the start and the end of each run, so tests count runs and re-runs."""
    _redis().rpush("runtime:started", i)
    time.sleep(seconds)
    _redis().rpush("runtime:done", i)
    return i


@app.task(timeout=1, retries=1, backoff=0.1)
def too_slow() -> None:
    _redis().incr("runtime:too_slow_runs")
    time.sleep(30)


@app.task(timeout=5, soft_timeout=0.5)
def cleans_up() -> str:
    try:
        time.sleep(30)
    except SoftTimeout:
        _redis().set("runtime:soft", "caught")
        return "cleaned"
    return "not interrupted"


@app.task
def crash() -> None:
    """Kill the child process that runs it (a poison job)."""
    _redis().incr("runtime:crash_runs")
    os._exit(3)


@app.task
def pid() -> int:
    return os.getpid()


@app.task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.05)
    return a + b


@app.task
def overlap(i: int, seconds: float) -> list[float]:
    began = time.time()
    time.sleep(seconds)
    return [began, time.time()]


@app.task
def attempt() -> int:
    job = current_job()
    assert job is not None
    return job.attempt


@app.task
def exits() -> None:
    raise SystemExit(0)


@app.task(timeout=1)
def uninterruptible() -> None:
    """Blocks SIGALRM, as C code stuck in a call would ignore it: only killing the child stops it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(30)


@app.task(timeout=1)
def spins() -> None:
    """Pure Python busy work: interruptible on any thread (signal on the main one, async exception else)."""
    while True:
        sum(range(100))


@app.task(retries=0)
def naps(seconds: float) -> float:
    """Sleeps without touching Redis (for tests that cut the worker off from it)."""
    time.sleep(seconds)
    return seconds


@app.task(retries=0)
def holds_gil(n: int) -> int:
    """One C call that keeps the GIL the whole time (``sum`` over a range of ``n``: about a second per
    50 million here)."""
    return sum(range(n))
