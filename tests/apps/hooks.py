"""Apps whose hooks record what they see in a Redis list, for ``tests/integration/test_hooks.py``.

Each record is a JSON object ``{"job", "hook", "attempt", "current", "pid"}`` pushed onto :data:`LOG`
(``current`` is the id ``resq.current_job()`` returns inside the hook). Workers run these apps as
subprocesses (``-A tests.apps.hooks:app`` or ``:plugged``); the test process binds them to its database.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from resq import Job, Plugin, Resq, SkipJob, Veto, current_job
from tests.topology import RedisClient, client_for

#: The Redis list every hook appends to.
LOG = "test:hooks"

app = Resq()
#: An app whose hooks come from plugin objects (``app.add_plugin``), including ``around_perform``.
plugged = Resq()
#: An app with ``before_enqueue`` hooks (producer side only).
routing = Resq()

_clients: dict[tuple[int, str], RedisClient] = {}


def bind(url: str) -> None:
    """Point every app of this module at ``url`` (the test process's database)."""
    for each in (app, plugged, routing):
        each.reconfigure(url=url)


def _client(url: str) -> RedisClient:
    key = (os.getpid(), url)  # never share a connection across a fork
    if key not in _clients:
        _clients[key] = client_for(url)
    return _clients[key]


def record(owner: Resq, hook: str, job: Job[Any] | None = None) -> None:
    """Append one record to :data:`LOG`."""
    current = current_job()
    entry = {
        "job": job.id if job is not None else None,
        "hook": hook,
        "attempt": job.attempt if job is not None else None,
        "current": current.id if current is not None else None,
        "pid": os.getpid(),
    }
    _client(owner.settings.url).rpush(LOG, json.dumps(entry))


# -- app: hooks registered with @app.on -------------------------------------------------------------


@app.on("before_perform")
def before_perform(job: Job[Any]) -> None:
    record(app, "before_perform", job)
    if job.task.endswith("skip_me"):
        raise SkipJob("not today")
    if job.task.endswith("hook_breaks"):
        raise RuntimeError("a broken before_perform hook")


@app.on("after_perform")
def after_perform(job: Job[Any], result: Any) -> None:
    record(app, "after_perform", job)


@app.on("on_failure")
def on_failure(job: Job[Any], exc: BaseException) -> None:
    record(app, "on_failure", job)


@app.on("on_retry")
def on_retry(job: Job[Any], exc: BaseException) -> None:
    record(app, "on_retry", job)


@app.on("on_dead")
def on_dead(job: Job[Any], exc: BaseException) -> None:
    record(app, "on_dead", job)


def task_on_failure(job: Job[Any], exc: BaseException) -> None:
    """A per-task hook (``@app.task(on_failure=...)``)."""
    record(app, f"task_on_failure:{type(exc).__name__}", job)


@app.task
def succeed() -> str:
    return "ok"


@app.task(retries=1, backoff=0.05)
def fail_always() -> None:
    raise ValueError("always")


@app.task(on_failure=task_on_failure)
def fail_with_task_hook() -> None:
    raise KeyError("per task")


@app.task(retries=3, backoff=0.05)
def add_retried(a: int, b: int) -> int:
    """Retried 3 times on any exception, but never for arguments that do not fit (an old producer)."""
    return a + b


@app.task
def skip_me() -> str:
    return "should not run"


@app.task
def hook_breaks() -> str:
    return "still fine"


# -- plugged: plugin objects ------------------------------------------------------------------------


class Recorder(Plugin):
    """Records before/after/around and worker hooks under its own name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def before_perform(self, job: Job[Any]) -> None:
        record(plugged, f"{self.name}.before_perform", job)

    def after_perform(self, job: Job[Any], result: Any) -> None:
        record(plugged, f"{self.name}.after_perform", job)

    @contextlib.contextmanager
    def around_perform(self, job: Job[Any]) -> Iterator[None]:
        record(plugged, f"{self.name}.around_enter", job)
        try:
            yield
        finally:
            record(plugged, f"{self.name}.around_exit", job)

    def worker_start(self, worker: Any) -> None:
        record(plugged, f"{self.name}.worker_start")

    def child_start(self, worker: Any) -> None:
        record(plugged, f"{self.name}.child_start")


plugged.add_plugin(Recorder("A"))
plugged.add_plugin(Recorder("B"))


@plugged.task(name="plugged.work")
def work() -> str:
    job = current_job()
    record(plugged, "task", job)
    return "done"


# -- routing: before_enqueue ------------------------------------------------------------------------


@routing.on("before_enqueue")
def route(job: Job[Any]) -> None:
    if job.options["kwargs"].get("veto"):
        raise Veto("refused by the routing hook")
    if job.options["kwargs"].get("urgent"):
        job.options["queue"] = "urgent"
        job.options["meta"]["routed"] = True


@routing.on("after_enqueue")
def enqueued(job: Job[Any]) -> None:
    record(routing, "after_enqueue", job)


@routing.task(name="routing.send")
def send(**kwargs: Any) -> dict[str, Any]:
    return kwargs
