"""Tasks under flow control, run by worker subprocesses in ``tests/integration/test_flow_control.py``
(``resq worker -A tests.apps.flowapp:app``). Each records what it did in Redis, under ``flowtest:*``, from
its own process: the tests judge the limits from these records, not from resq's."""

from __future__ import annotations

import os
import time

from resq import RateLimited, Resq, Snooze, current_job
from tests.topology import RedisClient, client_for

app = Resq()


def _redis() -> RedisClient:
    return client_for(os.environ["RESQ_REDIS_URL"])


def _run(key: str, label: str, hold_s: float) -> None:
    """Record ``label``'s start and end times (s) in the list ``key``, holding ``hold_s`` between them."""
    began = time.time()
    time.sleep(hold_s)
    _redis().rpush(key, f"{label}|{began}|{time.time()}")


@app.task(name="flow.record")
def record(label: str) -> None:
    _redis().rpush("flowtest:order", label)


@app.task(name="flow.per_user", concurrency=1, concurrency_key=lambda user, **_: user)
def per_user(user: str, n: int) -> None:
    _run("flowtest:per_user", user, 0.05)


@app.task(name="flow.two_at_once", concurrency=2)
def two_at_once(n: int) -> None:
    _run("flowtest:two", str(n), 0.05)


@app.task(name="flow.rated", rate_limit="4/s")
def rated(n: int) -> None:
    _run("flowtest:rated", str(n), 0.0)


@app.task(name="flow.snoozer", retries=0)
def snoozer() -> int:
    if _redis().incr("flowtest:snoozes") < 3:
        raise Snooze(0.05)
    job = current_job()
    return job.attempt if job else -1


@app.task(name="flow.waits_for_word", concurrency=1, concurrency_key=lambda user, **_: user)
def waits_for_word(user: str, n: int) -> int:
    """Holds its user's slot until the test pushes a word to ``flowtest:go`` (or 30 s pass)."""
    client = _redis()
    client.rpush("flowtest:began", f"{n}")
    began = time.time()
    deadline = time.time() + 30
    while time.time() < deadline and not client.blpop(["flowtest:go"], timeout=2):
        pass
    client.rpush("flowtest:per_user", f"{user}|{began}|{time.time()}")
    return n


@app.task(name="flow.tenant_job")
def tenant_job(tenant: str, n: int) -> None:
    _run("flowtest:tenants", tenant, 0.05)


@app.task(name="flow.limited_by_api", retries=0)
def limited_by_api() -> int:
    if _redis().incr("flowtest:429") < 2:
        raise RateLimited(retry_in=0.05)
    job = current_job()
    return job.attempt if job else -1
