"""The app of the Resque interop tests (``resq worker -A tests.apps.resqueapp:app --resque-queues ...``):
tasks for the classes Ruby, PHP and node producers name. Each records its run in the list ``interop:ran``
(JSON ``{class, args}``) of the worker's Redis, as the node-resque side of the tests does."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from resq import Resq

app = Resq()
#: The app of the failure tests (``-A tests.apps.resqueapp:strict``): a job whose worker process dies is
#: dead at once (``Crash``), recorded by the supervisor, hooks included.
strict = Resq(max_worker_losses=1)


def _record(cls: str, *args: Any) -> None:
    client = redis.Redis.from_url(os.environ["RESQ_REDIS_URL"])
    client.rpush("interop:ran", json.dumps({"class": cls, "args": list(args)}))
    client.close()


@app.task(resque_class="Archive")
def archive(item_id: int, where: str) -> None:
    """Ruby's shape: ``Resque.enqueue(Archive, 44, "masterbrew")``."""
    _record("Archive", item_id, where)


@app.task(resque_class="Job\\Work\\TestJob")
def php_test_job(args: dict[str, Any]) -> None:
    """The seed's php shape: a namespaced class, one object in ``args``."""
    _record("Job\\Work\\TestJob", args)


@app.task(name="add")
def add(a: int, b: int) -> int:
    """node's shape (``queue.enqueue("math", "add", [1, 2])``): no resque_class, the task's name is the class."""
    _record("add", a, b)
    return a + b


@app.task(resque_class="Slow")
def slow(n: int, seconds: float) -> None:
    """Runs ``seconds``, then records its run (a worker killed meanwhile leaves it to be run again)."""
    time.sleep(seconds)
    _record("Slow", n)


@strict.task(resque_class="Boom", retries=1, backoff=0.01)
def boom(reason: str) -> None:
    """Fails every attempt (once retried), then ends dead: a failure record in ``resque:failed``."""
    raise ValueError(reason)


@strict.task(resque_class="Crash")
def crash() -> None:
    """Kills its worker process: the supervisor records the job dead (``WorkerLost``), without the child."""
    os._exit(3)


@app.task(resque_class="Once", unique=True)
def once(n: int) -> None:
    """A unique task: its Resque jobs are enqueued one at a time, through its lock."""
    _record("Once", n)
