"""Hooks and plugins, end to end: order, plugins, per-task hooks, Veto, SkipJob, isolation, nesting.

The worker runs as a subprocess (``tests.apps.hooks``); its hooks append JSON records to a Redis list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import redis

import resq
from resq import Veto
from resq.producer import enqueue
from tests.apps import hooks as hooks_module
from tests.conftest import RunWorker
from tests.helpers import burst, read_log


@pytest.fixture
def hooks(redis_url: str) -> Iterator[ModuleType]:
    hooks_module.bind(redis_url)
    yield hooks_module


def records(client: redis.Redis, job_id: str | None = None) -> list[dict[str, Any]]:
    found = [json.loads(raw) for raw in client.lrange(hooks_module.LOG, 0, -1)]
    return [r for r in found if job_id is None or r["job"] == job_id]


def test_order_for_a_success_and_for_a_job_retried_once_then_dead(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    ok = hooks.succeed.delay()
    doomed = hooks.fail_always.delay()
    burst(run_worker, "tests.apps.hooks:app")
    assert ok.result(timeout=10) == "ok"
    assert doomed.status() == "dead"
    assert [r["hook"] for r in records(redis_client, ok.id)] == ["before_perform", "after_perform"]
    seen = records(redis_client, doomed.id)
    assert [r["hook"] for r in seen] == [
        "before_perform",
        "on_failure",
        "on_retry",
        "before_perform",
        "on_failure",
        "on_dead",
    ]
    assert [r["attempt"] for r in seen] == [1, 1, 1, 2, 2, 2]


def test_arguments_that_do_not_fit_go_dead_at_once_through_the_failure_path(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    # Given jobs of add_retried(a, b) (retries=3) enqueued by name, which does not bind the arguments
    # (as a producer with an older signature would), and a job that fits
    short = enqueue(hooks.app, "tests.apps.hooks.add_retried", [1], queue="default").job
    extra = enqueue(hooks.app, "tests.apps.hooks.add_retried", [1, 2], {"c": 3}, queue="default").job
    fine = hooks.add_retried.delay(1, 2)
    # When a worker runs them
    burst(run_worker, "tests.apps.hooks:app")
    # Then the mismatched ones are dead after one attempt, not retried, with the reason
    assert fine.result(timeout=10) == 3
    for job, detail in ((short, "missing a required argument: 'b'"), (extra, "got an unexpected keyword argument 'c'")):
        info = job.info()
        assert (info["status"], info["attempts"], info["result"]) == ("dead", 1, None)
        assert info["error"]["type"] == "resq.errors.ArgumentsError"
        assert info["error"]["message"] == (
            f"arguments do not match the signature of tests.apps.hooks.add_retried(a, b): {detail}"
        )
        # And the attempt went through the one failure path: on_failure then on_dead, never on_retry
        assert [r["hook"] for r in records(redis_client, job.id)] == ["before_perform", "on_failure", "on_dead"]
    with pytest.raises(resq.JobFailed, match="arguments do not match the signature"):
        short.result(timeout=1)


def test_current_job_inside_hooks_is_the_job(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    doomed = hooks.fail_always.delay()
    burst(run_worker, "tests.apps.hooks:app")
    seen = records(redis_client, doomed.id)
    assert seen and all(r["current"] == doomed.id for r in seen)


def test_per_task_hook_runs_with_the_app_hooks(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    job = hooks.fail_with_task_hook.delay()
    burst(run_worker, "tests.apps.hooks:app")
    assert job.status() == "dead"
    # on_* hooks run in reverse registration order; per-task hooks are innermost, so they come first
    assert [r["hook"] for r in records(redis_client, job.id)] == [
        "before_perform",
        "task_on_failure:KeyError",
        "on_failure",
        "on_dead",
    ]


def test_before_perform_skipjob_cancels_the_job(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    job = hooks.skip_me.delay()
    burst(run_worker, "tests.apps.hooks:app")
    assert job.status() == "cancelled"
    with pytest.raises(resq.JobCancelled):
        job.result(timeout=5)
    assert [r["hook"] for r in records(redis_client, job.id)] == ["before_perform"]  # no after_perform
    assert [e["event"] for e in job.info()["history"]][-1] == "cancelled"


def test_a_failing_hook_is_logged_with_its_name_and_the_job_still_succeeds(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    job = hooks.hook_breaks.delay()
    proc = burst(run_worker, "tests.apps.hooks:app", "--log-format", "json")
    assert job.result(timeout=10) == "still fine"
    lines = [json.loads(line) for line in read_log(proc).splitlines() if line.startswith("{")]
    failed = [line for line in lines if line.get("event") == "hook_failed"]
    assert failed, read_log(proc)
    assert failed[0]["hook"] == "before_perform"
    assert failed[0]["job_id"] == job.id
    assert "a broken before_perform hook" in failed[0]["error"]
    assert [r["hook"] for r in records(redis_client, job.id)] == ["before_perform", "after_perform"]


def test_plugins_order_and_around_perform_nesting(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    job = hooks.work.delay()
    burst(run_worker, "tests.apps.hooks:plugged")
    assert job.result(timeout=10) == "done"
    assert [r["hook"] for r in records(redis_client, job.id)] == [
        "A.before_perform",
        "B.before_perform",
        "A.around_enter",
        "B.around_enter",
        "task",
        "B.around_exit",
        "A.around_exit",
        "B.after_perform",
        "A.after_perform",
    ]


def test_worker_hooks_run_in_the_supervisor_and_child_start_after_fork(
    hooks: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    proc = burst(run_worker, "tests.apps.hooks:plugged", "-c", "2")
    seen = records(redis_client)
    starts = [r for r in seen if r["hook"].endswith("worker_start")]
    assert [r["hook"] for r in starts] == ["A.worker_start", "B.worker_start"]
    assert {r["pid"] for r in starts} == {proc.pid}
    children = [r for r in seen if r["hook"].endswith("child_start")]
    assert len(children) == 4  # two plugins x two children
    assert proc.pid not in {r["pid"] for r in children}
    assert len({r["pid"] for r in children}) == 2


def test_before_enqueue_changes_the_queue(hooks: ModuleType, redis_client: redis.Redis) -> None:
    job = hooks.send.delay(urgent=True)
    assert job.queue == "urgent"
    assert job.info()["queue"] == "urgent"
    assert redis_client.xlen(hooks.routing.broker.keys.queue("urgent")) == 1
    plain = hooks.send.delay(x=1)
    assert plain.queue == "default"


def test_before_enqueue_veto_enqueues_nothing(hooks: ModuleType, redis_client: redis.Redis) -> None:
    with pytest.raises(Veto):
        hooks.send.delay(veto=True)
    assert redis_client.dbsize() == 0  # no job record, no queue, no hook record


def test_after_enqueue_runs_in_the_producer_and_not_when_vetoed(hooks: ModuleType, redis_client: redis.Redis) -> None:
    with pytest.raises(Veto):
        hooks.send.delay(veto=True)
    job = hooks.send.delay(y=2)
    assert [(r["job"], r["hook"]) for r in records(redis_client)] == [(job.id, "after_enqueue")]
