"""The app worker subprocesses run in the core tests (``resq worker -A tests.apps.core:app``).

``app = Resq()`` reads ``RESQ_REDIS_URL``, which the ``run_worker`` fixture sets. The test process
points the same apps at its own database with :func:`bind` before it enqueues anything.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import resq
from resq import Resq, Retry, current_job, default_app, task
from tests.topology import RedisClient, client_for

app = Resq()

#: A second app whose dead set keeps 3 jobs (``-A tests.apps.core:capped``).
capped = Resq(dead_max_jobs=3)

#: The default app behind module-level ``@resq.task`` (``-A tests.apps.core:default``).
default = default_app()


def bind(url: str) -> None:
    """Point every app of this module at ``url`` (the test process's database)."""
    for each in (app, capped, default):
        each.reconfigure(url=url)


def _redis() -> RedisClient:
    return client_for(os.environ["RESQ_REDIS_URL"])


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(redact=("password",))
def login(user: str, password: str, *, token: str = "") -> str:
    """Its password is never shown (``redact``)."""
    return user


@app.task(redact=("password",), retries=0)
def login_fails(user: str, password: str) -> None:
    """Fails; its password must appear in no log line or traceback."""
    raise PermissionError(f"no access for {user}")


@app.task
def echo(*args: Any, **kwargs: Any) -> list[Any]:
    """Returns what it was given: arguments and results both cross the codec."""
    return [list(args), kwargs]


@app.task
def rich_values() -> dict[str, Any]:
    return {
        "dt": datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "day": date(2024, 2, 29),
        "dec": Decimal("12.3400"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "tuple": (1, 2),
    }


@app.task
def unencodable_result() -> object:
    return object()


@app.task(retries=3, backoff=0.05)
def unencodable_result_with_retries() -> object:
    return {1, 2, 3}


@app.task(retries=2, backoff=0.1)
def flaky() -> str:
    """Fails on its first attempt, succeeds on the second."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        raise ConnectionError("first attempt fails")
    return f"ok on attempt {job.attempt}"


@app.task(retries=2, backoff=0.05)
def always_fails(message: str = "always") -> None:
    raise ValueError(message)


@app.task
def fail_with(message: str) -> None:
    raise ValueError(message)


@app.task(retries=3, backoff=0.05, retry_on=(ValueError,))
def picky(kind: str) -> None:
    """Retried on ValueError only."""
    raise {"value": ValueError, "key": KeyError}[kind](kind)


@app.task(retries=1, backoff=60)
def retry_later(delay_s: float) -> float:
    """Asks for a retry ``delay_s`` seconds later (its own backoff is a minute); returns the second start."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        raise Retry(delay=delay_s)
    return time.time()


@app.task
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task
def started_at() -> float:
    """The wall-clock time the attempt began."""
    return time.time()


@app.task
def whoami() -> dict[str, Any]:
    """What ``current_job()`` says inside a task."""
    job = current_job()
    assert job is not None
    return {"id": job.id, "attempt": job.attempt, "task": job.task, "queue": job.queue, "pid": os.getpid()}


@app.task(retries=2, backoff=0.05)
def whoami_flaky() -> dict[str, Any]:
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        raise RuntimeError("again")
    return {"id": job.id, "attempt": job.attempt}


@app.task
def rendezvous(key: str, parties: int, timeout_s: float = 10.0) -> int:
    """Adds this process's pid to set ``key``, waits until ``parties`` distinct pids are there."""
    client = _redis()
    try:
        client.sadd(key, os.getpid())
        deadline = time.monotonic() + timeout_s
        while client.scard(key) < parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {client.scard(key)} of {parties} processes arrived")
            time.sleep(0.02)
    finally:
        client.close()
    return os.getpid()


@app.task(result_ttl=0.5)
def short_lived() -> str:
    return "soon gone"


@capped.task(name="capped.fail")
def capped_fail(n: int) -> None:
    raise RuntimeError(f"capped {n}")


@task
def default_add(a: int, b: int) -> int:
    """Registered with the module-level decorator, on the default app."""
    return a + b


assert default_add.app is resq.default_app()
