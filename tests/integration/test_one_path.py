"""Issue 8, items 3 and 4: every producer goes through the one enqueue path, every failed attempt through the
one failure path, hooks and counters included, whichever process records it.

The app is ``tests.apps.paths``: its hooks append ``{"hook", "job", "task", "attempt", "error", "pid"}``
to a Redis list, so a test reads what ran in a worker, its supervisor or this process alike.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from resq import producer, testing
from resq.cli import main
from resq.errors import UnknownJob
from resq.maintenance import Maintenance
from resq.ops import Inspector
from resq_scheduler import Scheduler
from resq_scheduler.scheduler import tick_job_id
from tests.apps import paths as paths_module
from tests.conftest import RunWorker
from tests.helpers import read_log, wait_for

APP_REF = "tests.apps.paths:app"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # on a whole minute: an every=60 entry fires a tick here
T0_MS = int(T0.timestamp() * 1000)


def records(client: redis.Redis, job_id: str | None = None) -> list[dict[str, Any]]:
    found = [json.loads(raw) for raw in client.lrange(paths_module.LOG, 0, -1)]
    return [r for r in found if job_id is None or r["job"] == job_id]


def calls(client: redis.Redis, job_id: str) -> list[tuple[str, str]]:
    """``(hook, task)`` of every hook call recorded for ``job_id``, in order."""
    return [(r["hook"], r["task"]) for r in records(client, job_id)]


def cli(redis_url: str, *args: str) -> str:
    """Run ``resq *args -A tests.apps.paths:app`` in this process; returns its output (exit status 0)."""
    result = CliRunner().invoke(
        main, [*args, "-A", APP_REF], env={"RESQ_REDIS_URL": redis_url, "RESQ_APP": None}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


# -- A. the one enqueue path ------------------------------------------------------------------------

#: A producer of a new job: (the module, the database url) -> (job id, the task name it was enqueued under).
Producer = Callable[[ModuleType, str], tuple[str, str]]


def _delay(p: ModuleType, url: str) -> tuple[str, str]:
    return p.plain.delay(x=1).id, "paths.plain"


def _apply_async(p: ModuleType, url: str) -> tuple[str, str]:
    job = p.plain.apply_async((), {"x": 2}, queue="other", job_id="chosen-id")
    assert (job.id, job.queue) == ("chosen-id", "other")
    return job.id, "paths.plain"


def _enqueue_in(p: ModuleType, url: str) -> tuple[str, str]:
    return p.plain.enqueue_in(3600, x=3).id, "paths.plain"


def _inspector_known(p: ModuleType, url: str) -> tuple[str, str]:
    return Inspector(p.app).enqueue("paths.plain", kwargs={"x": 4})[0], "paths.plain"


def _inspector_unknown(p: ModuleType, url: str) -> tuple[str, str]:
    return Inspector(p.app).enqueue("paths.not_registered", [5])[0], "paths.not_registered"


def _cli_known(p: ModuleType, url: str) -> tuple[str, str]:
    out = json.loads(cli(url, "enqueue", "paths.plain", "--kwargs", '{"x": 6}', "--json"))
    return out["id"], "paths.plain"


def _cli_unknown(p: ModuleType, url: str) -> tuple[str, str]:
    out = json.loads(cli(url, "enqueue", "paths.not_registered", "--args", "[7]", "--json"))
    return out["id"], "paths.not_registered"


def _cron_tick(p: ModuleType, url: str) -> tuple[str, str]:
    report = Scheduler(p.app, entries=[p.app.periodic_entries["paths.minutely"]]).tick(T0)
    assert report.fired == [("paths.minutely", T0)]
    return tick_job_id("paths.minutely", T0_MS), "paths.minutely"


def _fire_now(p: ModuleType, url: str) -> tuple[str, str]:
    scheduler = Scheduler(p.app)
    return scheduler.fire_now(scheduler.entries["paths.minutely"]), "paths.minutely"


def _cli_cron_run(p: ModuleType, url: str) -> tuple[str, str]:
    out = cli(url, "cron", "run", "paths.minutely")
    assert out.startswith("paths.minutely: enqueued job "), out
    return out.split()[-1], "paths.minutely"


PRODUCERS: dict[str, Producer] = {
    "delay": _delay,
    "apply_async": _apply_async,
    "enqueue_in": _enqueue_in,
    "inspector_registered": _inspector_known,
    "inspector_unregistered": _inspector_unknown,
    "cli_enqueue_registered": _cli_known,
    # with -A, `resq enqueue` refuses a name the app does not register (test_cli_first_hour.py)
    "cron_tick": _cron_tick,
    "fire_now": _fire_now,
    "cli_cron_run": _cli_cron_run,
}


@pytest.mark.cluster
@pytest.mark.parametrize("produce", list(PRODUCERS.values()), ids=list(PRODUCERS))
def test_every_producer_of_a_new_job_runs_before_then_after_enqueue(
    paths: ModuleType, redis_url: str, redis_client: redis.Redis, produce: Producer
) -> None:
    """Each producer of a new job (a task's methods, the Inspector and ``resq enqueue`` for a registered
    and an unregistered name, a cron tick, ``fire_now`` and ``resq cron run``) runs ``before_enqueue``
    then ``after_enqueue``, each once, with the job's id and task, in this process; and the job exists."""
    job_id, task = produce(paths, redis_url)
    assert calls(redis_client, job_id) == [("before_enqueue", task), ("after_enqueue", task)]
    assert {r["pid"] for r in records(redis_client)} == {os.getpid()}
    assert len(records(redis_client)) == 2  # no hook ran for any other job
    info = paths.app.job(job_id).info()
    assert info["task"] == task
    assert info["status"] in ("queued", "scheduled")


@pytest.mark.cluster
def test_a_vetoed_cron_tick_is_skipped_and_enqueues_nothing(paths: ModuleType, redis_client: redis.Redis) -> None:
    """A ``Veto`` from ``before_enqueue`` skips the tick (reason "vetoed"): no job, no ``after_enqueue``, and
    the tick is done (a later pass does not try it again)."""
    scheduler = Scheduler(paths.app, entries=[paths.app.periodic_entries["paths.vetoed"]])
    report = scheduler.tick(T0)
    assert report.fired == []
    assert report.skipped == [("paths.vetoed", T0, "vetoed")]
    job_id = tick_job_id("paths.vetoed", T0_MS)
    assert calls(redis_client, job_id) == [("before_enqueue", "paths.vetoed")]
    with pytest.raises(UnknownJob):
        paths.app.job(job_id).status()
    assert redis_client.xlen(paths.app.broker.keys.queue("default")) == 0
    later = scheduler.tick(T0 + timedelta(seconds=30))
    assert (later.fired, later.skipped) == ([], [])
    assert len(records(redis_client)) == 1


@pytest.mark.cluster
def test_a_revived_dead_job_runs_after_enqueue_but_not_before_enqueue(
    paths: ModuleType, redis_client: redis.Redis
) -> None:
    """``retry_dead(id)`` and ``retry_all_dead()`` put a dead job back in its queue: ``after_enqueue`` runs
    (with the job's id and task), as for every job that enters a queue, but ``before_enqueue`` does not:
    they re-enqueue an existing job whose arguments were fixed when it was created."""
    one, two = paths.boom.delay(), paths.boom.delay()
    assert testing.drain(paths.app, ["default"]) == 2
    assert (one.status(), two.status()) == ("dead", "dead")
    died = [
        ("before_enqueue", "paths.boom"),
        ("after_enqueue", "paths.boom"),
        ("on_failure", "paths.boom"),
        ("on_dead", "paths.boom"),
    ]
    assert calls(redis_client, one.id) == calls(redis_client, two.id) == died

    inspector = Inspector(paths.app)
    assert inspector.retry_dead(one.id) == "default"
    assert one.status() == "queued"
    assert calls(redis_client, one.id) == [*died, ("after_enqueue", "paths.boom")]
    assert calls(redis_client, two.id) == died

    assert inspector.retry_all_dead() == 1
    assert two.status() == "queued"
    assert calls(redis_client, two.id) == [*died, ("after_enqueue", "paths.boom")]
    assert calls(redis_client, one.id) == [*died, ("after_enqueue", "paths.boom")]


@pytest.mark.cluster
def test_run_now_runs_after_enqueue_but_not_before_enqueue(paths: ModuleType, redis_client: redis.Redis) -> None:
    """``producer.run_now`` (``resq scheduled run-now``) moves a scheduled job into its queue: ``after_enqueue``
    runs again, ``before_enqueue`` does not (the job exists; its arguments were fixed when it was created)."""
    job = paths.plain.enqueue_in(3600, x=1)
    assert job.status() == "scheduled"
    assert producer.run_now(paths.app, job.queue, job.id) == (True, "queued")
    assert job.status() == "queued"
    assert calls(redis_client, job.id) == [
        ("before_enqueue", "paths.plain"),
        ("after_enqueue", "paths.plain"),
        ("after_enqueue", "paths.plain"),
    ]


# -- B. the one failure path ------------------------------------------------------------------------


def running(client: redis.Redis, count: int = 1) -> list[tuple[str, int, int]]:
    """Wait until ``count`` attempts announced themselves; their ``(job id, attempt, pid)``."""
    found = wait_for(
        lambda: (
            [tuple(json.loads(raw)) for raw in client.lrange(paths_module.RUNNING, 0, -1)]
            if client.llen(paths_module.RUNNING) >= count
            else []
        ),
        timeout=15,
        message="a running attempt",
    )
    return [(str(job_id), int(attempt), int(pid)) for job_id, attempt, pid in found]


def failure_hooks(client: redis.Redis, job_id: str) -> list[tuple[str, str, int, str | None, int]]:
    """``(hook, task, attempt, error type, pid)`` of the failure hooks that ran for ``job_id``."""
    return [
        (r["hook"], r["task"], r["attempt"], r["error"], r["pid"])
        for r in records(client, job_id)
        if r["hook"] in ("on_failure", "on_retry", "on_dead")
    ]


def counters_of(app: Any, task: str) -> dict[str, int]:
    """The counters filed under ``task`` (queue ``default``); asserts none was filed under ``"?"``."""
    found = Inspector(app).task_counters()
    assert not [key for key in found if key[0] == "?"], found
    return {counter: n for (name, queue, counter), n in found.items() if (name, queue) == (task, "default")}


def test_a_child_killed_past_its_hard_limit_fails_through_the_one_path(
    paths: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    """A task that ignores SIGALRM outlives ``timeout=1``: the supervisor kills its child past the limit and
    its 2 s margin and records the attempt there: ``on_failure`` then ``on_dead`` (retries=0) ran in the
    supervisor, with the job and its task, and the counters are filed under the task's own name."""
    job = paths.stubborn.delay()
    proc = run_worker(APP_REF)
    [(job_id, attempt, child_pid)] = running(redis_client)
    assert (job_id, attempt) == (job.id, 1) and child_pid != proc.pid
    wait_for(lambda: job.status() == "dead", timeout=15, message="the job killed past its hard limit")
    assert failure_hooks(redis_client, job.id) == [
        ("on_failure", "paths.stubborn", 1, "TimeLimitExceeded", proc.pid),
        ("on_dead", "paths.stubborn", 1, "TimeLimitExceeded", proc.pid),
    ], read_log(proc)
    assert job.info()["error"]["type"] == "TimeoutError"
    assert counters_of(paths.app, "paths.stubborn") == {"processed": 1, "failed": 1, "dead": 1}
    assert paths.app.job(job.id).status() == "dead" and redis_client.llen(paths.RUNNING) == 1  # never run again


def test_a_child_killed_mid_run_is_a_lost_attempt_then_the_job_runs_again(
    paths: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    """SIGKILL of the child running a job: the supervisor records a lost attempt through the one failure path
    (``on_failure`` then ``on_retry``, in the supervisor, with the job and its task), the job goes back to its
    queue (``max_worker_losses`` is 3), a new child runs it and it succeeds; counters under the task's name."""
    job = paths.killable.delay()
    proc = run_worker(APP_REF)
    [(job_id, attempt, child_pid)] = running(redis_client)
    assert (job_id, attempt) == (job.id, 1) and child_pid != proc.pid
    os.kill(child_pid, signal.SIGKILL)
    assert job.result(timeout=15) == "ok", read_log(proc)
    assert failure_hooks(redis_client, job.id) == [
        ("on_failure", "paths.killable", 1, "WorkerLost", proc.pid),
        ("on_retry", "paths.killable", 1, "WorkerLost", proc.pid),
    ], read_log(proc)
    expected = {"processed": 2, "failed": 1, "retried": 1}  # a worker adds counters within 0.5 s, not per job
    wait_for(lambda: counters_of(paths.app, "paths.killable") == expected, timeout=5, message="the counters")
    assert (job.info()["attempts"], job.info()["lost"]) == (2, 1)


def test_a_job_whose_worker_died_is_failed_by_the_process_that_reaps_it(
    paths: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    """SIGKILL of the whole worker (supervisor and child) while a job runs: once its heartbeat expires, whoever
    reaps (here this process) records the lost attempt through the one failure path: ``on_failure`` then
    ``on_retry`` run here, with the job and its task; the job is queued again and then succeeds."""
    job = paths.killable.delay()
    proc = run_worker(APP_REF, "--heartbeat-interval", "0.5")
    [(job_id, _, _)] = running(redis_client)
    assert job_id == job.id
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert job.status() == "running"  # nobody recorded anything yet
    assert failure_hooks(redis_client, job.id) == []

    reaper = Maintenance(paths.app, None)
    assert wait_for(reaper.reap, timeout=10, interval=0.1, message="the dead worker's lease reaped") == 1
    assert failure_hooks(redis_client, job.id) == [
        ("on_failure", "paths.killable", 1, "WorkerLost", os.getpid()),
        ("on_retry", "paths.killable", 1, "WorkerLost", os.getpid()),
    ]
    assert job.status() == "queued"
    assert counters_of(paths.app, "paths.killable") == {"processed": 1, "failed": 1, "retried": 1}
    assert testing.drain(paths.app, ["default"]) == 1
    assert job.result(timeout=5) == "ok"
    assert counters_of(paths.app, "paths.killable") == {"processed": 2, "failed": 1, "retried": 1}
