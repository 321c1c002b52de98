"""An app whose hooks record every call, for ``tests/integration/test_one_path.py`` (issue 8, items 3 and 4).

Each record is a JSON object ``{"hook", "job", "task", "attempt", "error", "pid"}`` pushed onto :data:`LOG`;
``error`` is the exception's type name for the failure hooks. Workers run the app as a subprocess
(``-A tests.apps.paths:app``); the test process points it at its database with :func:`bind`.

``before_enqueue`` vetoes a job whose kwargs carry ``veto=True`` and every tick of the periodic entry
``paths.vetoed``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from resq import Job, Resq, Veto, current_job
from tests.topology import RedisClient, client_for

#: The Redis list every hook appends to.
LOG = "test:paths:hooks"
#: The Redis list the tasks that wait to be killed push ``[job id, attempt, pid]`` onto once they run.
RUNNING = "test:paths:running"
#: How long the tasks that wait to be killed sleep at most (far longer than any test waits).
LONG_S = 30.0

app = Resq()

_clients: dict[tuple[int, str], RedisClient] = {}


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's database)."""
    app.reconfigure(url=url)


def client() -> RedisClient:
    """A connection to the app's database, one per process (never shared across a fork)."""
    key = (os.getpid(), app.settings.url)
    if key not in _clients:
        _clients[key] = client_for(app.settings.url)
    return _clients[key]


def record(hook: str, job: Job[Any], exc: BaseException | None = None) -> None:
    """Append one record to :data:`LOG`."""
    entry = {
        "hook": hook,
        "job": job.id,
        "task": job.task,
        "attempt": job.attempt,
        "error": type(exc).__name__ if exc is not None else None,
        "pid": os.getpid(),
    }
    client().rpush(LOG, json.dumps(entry))


# -- hooks ------------------------------------------------------------------------------------------


@app.on("before_enqueue")
def before_enqueue(job: Job[Any]) -> None:
    record("before_enqueue", job)
    if job.options["kwargs"].get("veto") or job.options["meta"].get("periodic") == "paths.vetoed":
        raise Veto("refused by paths.before_enqueue")


@app.on("after_enqueue")
def after_enqueue(job: Job[Any]) -> None:
    record("after_enqueue", job)


@app.on("on_failure")
def on_failure(job: Job[Any], exc: BaseException) -> None:
    record("on_failure", job, exc)


@app.on("on_retry")
def on_retry(job: Job[Any], exc: BaseException) -> None:
    record("on_retry", job, exc)


@app.on("on_dead")
def on_dead(job: Job[Any], exc: BaseException) -> None:
    record("on_dead", job, exc)


# -- tasks ------------------------------------------------------------------------------------------


@app.task(name="paths.plain")
def plain(x: int = 0, **kwargs: Any) -> int:
    return x


@app.task(name="paths.boom", retries=0)
def boom() -> None:
    raise ValueError("boom")


def _announce() -> None:
    job = current_job()
    assert job is not None
    client().rpush(RUNNING, json.dumps([job.id, job.attempt, os.getpid()]))


@app.task(name="paths.stubborn", timeout=1, retries=0)
def stubborn() -> str:
    """Ignores its hard limit: SIGALRM (the child's way to stop it) is ignored, so only the supervisor's
    SIGKILL past ``timeout`` + its margin ends it."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _announce()
    deadline = time.monotonic() + LONG_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "survived"


@app.task(name="paths.killable")
def killable() -> str:
    """On its first attempt, announces itself and sleeps (until the test kills it); then returns "ok"."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        _announce()
        time.sleep(LONG_S)
        return "not killed"
    return "ok"


@app.task(name="paths.pausable")
def pausable() -> str:
    """On its first attempt, announces itself and sleeps 2 s (the test pauses its worker meanwhile), then
    returns "late"; later attempts return "ok" at once."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        _announce()
        time.sleep(2.0)
        return "late"
    return "ok"


@app.periodic(every=60, name="paths.minutely", kwargs={"x": 7})
def minutely(x: int = 0) -> int:
    return x


@app.periodic(every=60, name="paths.vetoed")
def vetoed() -> None:
    """Its every tick is vetoed by ``before_enqueue``."""
