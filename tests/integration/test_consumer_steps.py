"""A consumer driven one step at a time, in this process, against the real Redis (no worker subprocess)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from resq import JobStatus, Resq
from resq.clock import now_ms
from resq.maintenance import Maintenance
from resq.worker.consumer import Consumer, ConsumerState, StepReport
from resq.worker.messages import ChildMessage, JobBegan, JobEnded

QUEUES = ["default"]


@dataclass
class Steps:
    """A fresh app with a few tasks, the consumer that steps through its queue, and what the tasks saw."""

    app: Resq
    state: ConsumerState
    ran: list[str] = field(default_factory=list)
    #: ids the ``canceller`` task cancels
    to_cancel: list[str] = field(default_factory=list)

    def consumer(self, prefetch: int = 1, **options: Any) -> Consumer:
        """A consumer of the default queue sharing ``state`` (so a task can set its flags)."""
        return Consumer(self.app, "step-consumer", QUEUES, prefetch=prefetch, state=self.state, **options)


@pytest.fixture
def steps(redis_url: str) -> Iterator[Steps]:
    app = Resq(redis_url)
    found = Steps(app, ConsumerState())

    @app.task(name="note")
    def note(word: str) -> str:
        found.ran.append(word)
        return word.upper()

    @app.task(name="flaky", retries=1, backoff=60)
    def flaky(word: str) -> str:
        found.ran.append(word)
        if len(found.ran) == 1:
            raise RuntimeError("first attempt fails")
        return word

    @app.task(name="canceller")
    def canceller() -> None:
        found.ran.append("canceller")
        for job_id in found.to_cancel:
            app.job(job_id).cancel()

    @app.task(name="stopper")
    def stopper() -> None:
        found.ran.append("stopper")
        found.state.stopping.set()

    app.broker.queues.ensure_groups(QUEUES)
    app.broker.workers.register("step-consumer", {"host": "test", "pid": "0", "queues": "default"})
    yield found
    app.broker.close()


def test_an_empty_queue_steps_to_nothing(steps: Steps) -> None:
    report = steps.consumer().step()
    assert report == StepReport()
    assert (report.fetched, report.performed, report.kinds, report.drained) == (0, 0, {}, False)


def test_an_empty_queue_in_burst_mode_steps_to_drained(steps: Steps) -> None:
    assert steps.consumer(burst=True).step().drained


def test_one_step_performs_a_queued_job_and_records_it_succeeded(steps: Steps) -> None:
    job = steps.app.tasks["note"].delay("hi")
    report = steps.consumer().step()
    assert (report.fetched, report.performed, report.kinds) == (1, 1, {"succeeded": 1})
    assert steps.ran == ["hi"]
    assert job.status() == JobStatus.SUCCEEDED
    assert job.result(timeout=0) == "HI"
    assert steps.consumer().step().fetched == 0  # the entry was settled, not left pending


@pytest.mark.cluster
def test_a_failing_job_steps_to_retrying_then_time_travel_runs_attempt_2(
    steps: Steps, redis_client: redis.Redis
) -> None:
    job = steps.app.tasks["flaky"].delay("again")
    consumer = steps.consumer()
    assert consumer.step().kinds == {"retrying": 1}
    assert job.status() == JobStatus.RETRYING
    due = redis_client.zscore(steps.app.broker.keys.scheduled("default"), job.id)
    assert due is not None and due > now_ms() + 30_000  # backoff=60: due in the future, not now
    assert consumer.step().fetched == 0  # not in the queue before it is due
    assert Maintenance(steps.app, QUEUES).promote(now=int(due) + 1) == 1
    report = consumer.step()
    assert report.kinds == {"succeeded": 1}
    assert job.info()["attempts"] == 2
    assert job.result(timeout=0) == "again"


@pytest.mark.cluster
def test_a_job_cancelled_while_leased_is_discarded_not_run(steps: Steps) -> None:
    # The first job of the batch cancels the second, which the same fetch already leased
    killer = steps.app.tasks["canceller"].delay()
    victim = steps.app.tasks["note"].delay("never")
    steps.to_cancel.append(victim.id)
    report = steps.consumer(prefetch=2).step()
    assert report.fetched == 2
    assert report.kinds == {"succeeded": 1, "discarded": 1}
    assert "never" not in steps.ran
    assert victim.status() == JobStatus.CANCELLED and killer.status() == JobStatus.SUCCEEDED


def test_a_job_cancelled_before_the_fetch_is_not_run(steps: Steps) -> None:
    job = steps.app.tasks["note"].delay("never")
    assert job.cancel() == JobStatus.CANCELLED
    assert steps.consumer().step().fetched == 0  # a queued job's entry leaves the queue with the cancel
    assert steps.ran == []
    assert job.status() == JobStatus.CANCELLED


def test_a_foreign_stream_entry_becomes_a_dead_job(steps: Steps, redis_client: redis.Redis) -> None:
    entry = redis_client.xadd(steps.app.broker.keys.queue("default"), {"foo": "bar"}).decode()
    report = steps.consumer().step()
    assert report.kinds == {"dead": 1}
    dead = report.outcomes[0]
    assert dead.job_id == f"garbage-{entry}"
    assert [job_id for job_id, _ in steps.app.broker.jobs.dead_ids("default")] == [f"garbage-{entry}"]
    assert steps.consumer().step().fetched == 0


@pytest.mark.cluster
def test_prefetch_n_leases_n_and_performs_them_in_one_step(steps: Steps) -> None:
    jobs = [steps.app.tasks["note"].delay(str(i)) for i in range(4)]
    report = steps.consumer(prefetch=3).step()
    assert (report.fetched, report.performed, report.kinds) == (3, 3, {"succeeded": 3})
    assert steps.ran == ["0", "1", "2"]
    assert [job.status() for job in jobs] == ["succeeded"] * 3 + ["queued"]


def test_a_stop_mid_batch_hands_the_rest_back_queued_again(steps: Steps) -> None:
    first = steps.app.tasks["stopper"].delay()
    rest = [steps.app.tasks["note"].delay(str(i)) for i in range(2)]
    report = steps.consumer(prefetch=3).step()
    assert (report.fetched, report.performed, report.handed_back) == (3, 1, 2)
    assert report.kinds == {"succeeded": 1} and first.status() == "succeeded"
    assert [job.status() for job in rest] == ["queued", "queued"]
    steps.state.stopping.clear()
    again = steps.consumer(prefetch=3).step()
    assert (again.fetched, again.kinds) == (2, {"succeeded": 2})
    assert steps.ran == ["stopper", "0", "1"]


def test_each_attempt_is_reported_as_job_began_then_job_ended_on_its_thread(steps: Steps) -> None:
    job = steps.app.tasks["note"].delay("seen")
    messages: list[ChildMessage] = []
    steps.consumer(on_job=messages.append).step()
    assert [type(m) for m in messages] == [JobBegan, JobEnded]
    assert {(m.queue, m.job_id, m.thread) for m in messages} == {("default", job.id, threading.get_ident())}
    assert messages[0].delivery == messages[1].delivery
