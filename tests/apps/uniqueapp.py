"""Unique and debounced tasks, run by worker subprocesses in ``tests/integration/test_unique.py``
(``resq worker -A tests.apps.uniqueapp:app``). Each records its runs in Redis under ``uqtest:*``, from its
own process: the tests judge deduplication from these records, not from resq's."""

from __future__ import annotations

import os
import time
from typing import Any

from resq import Resq
from tests.topology import RedisClient, client_for

app = Resq()


def _redis() -> RedisClient:
    return client_for(os.environ["RESQ_REDIS_URL"])


def _record(key: str, value: Any) -> None:
    _redis().rpush(key, f"{value}|{time.time()}")


def _hold(label: str) -> None:
    """Say the job began (``uqtest:began``), then wait for the test's word on ``uqtest:go`` (30 s at most)."""
    client = _redis()
    client.rpush("uqtest:began", label)
    client.blpop(["uqtest:go"], timeout=30)


@app.task(name="uq.plain")
def plain(n: int) -> None:
    _record("uqtest:plain", n)


@app.task(name="uq.once", unique=True)
def once(n: int) -> None:
    _record("uqtest:once", n)


@app.task(name="uq.started", unique=True, unique_until="started")
def until_started(label: str) -> None:
    _hold(label)
    _record("uqtest:started", label)


@app.task(name="uq.finished", unique=True, unique_until="finished")
def until_finished(label: str) -> None:
    _hold(label)
    _record("uqtest:finished", label)


@app.task(name="uq.window", unique=True, unique_until="window", unique_for=1.0)
def window(n: int) -> None:
    _record("uqtest:window", n)


@app.task(name="uq.per_user", unique=True, unique_key=lambda user, **_: user)
def per_user(user: str, n: int) -> None:
    _record("uqtest:per_user", f"{user}:{n}")


@app.task(name="uq.debounced", debounce=0.3)
def debounced(n: int) -> None:
    _record("uqtest:debounced", n)


@app.task(name="uq.capped", debounce=0.3, debounce_max=0.8)
def capped(n: int) -> None:
    _record("uqtest:capped", n)


def _broken_key(user: str, **_: Any) -> str:
    raise LookupError(f"no tenant for {user}")


@app.task(name="uq.bad_key", unique=True, unique_key=_broken_key)
def bad_key(user: str) -> None:
    _record("uqtest:bad_key", user)


@app.task(name="uq.sealed_debounced", debounce=0.2, encrypt=True)
def sealed_debounced(secret: str) -> None:
    _record("uqtest:sealed", secret)
