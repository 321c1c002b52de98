"""A job given back (its worker died or stopped) goes to the front of its queue, before the backlog; it
stays visible, cancellable and clearable there like any queued job (issue 11, item 7)."""

from __future__ import annotations

import redis

from resq import Resq
from resq.broker.keys import Keys
from resq.codec import pack
from resq.outcomes import Succeeded

K = Keys("resq")


def _backlog_behind_a_leased_job(app: Resq, worker: str) -> tuple[str, list[str]]:
    add = app.tasks["add"]
    first = add.delay(0, 0)
    backlog = [add.delay(i, i).id for i in range(1, 6)]
    [delivery] = app.broker.queues.fetch(worker, ["default"], 1, None)
    assert delivery.job_id == first.id
    app.broker.queues.start(worker, delivery)
    return first.id, backlog


def test_a_job_whose_worker_was_lost_runs_before_the_backlog(adder: Resq) -> None:
    queues = adder.broker.queues
    first, backlog = _backlog_behind_a_leased_job(adder, "lost-worker")
    [lease] = queues.pending_of("default", "lost-worker")
    assert queues.release(lease, "lost") == "queued"
    order = [d.job_id for d in queues.fetch("w2", ["default"], 10, None)]
    assert order == [first, *backlog]


def test_jobs_handed_back_at_a_stop_keep_their_place(adder: Resq) -> None:
    queues = adder.broker.queues
    add = adder.tasks["add"]
    ids = [add.delay(i, i).id for i in range(4)]
    leased = queues.fetch("stopping", ["default"], 2, None)  # a batch, then the worker is told to stop
    for delivery in leased:
        assert queues.release(delivery, "returned") == "queued"
    assert [d.job_id for d in queues.fetch("w2", ["default"], 10, None)] == ids


def test_a_job_at_the_front_is_counted_listed_cancelled_and_cleared(adder: Resq, redis_url: str) -> None:
    queues, admin = adder.broker.queues, adder.broker.admin
    first, backlog = _backlog_behind_a_leased_job(adder, "lost-worker")
    [lease] = queues.pending_of("default", "lost-worker")
    queues.release(lease, "returned")
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(K.front("default")) == 1
    assert admin.queue_sizes(["default"]) == [(6, 0, 0)]
    assert "envelope" in adder.broker.jobs.fields("default", first)  # its arguments are found at the front
    assert adder.broker.jobs.cancel("default", first) == "cancelled"
    assert client.xlen(K.front("default")) == 0
    assert client.xlen(K.queue("default")) == len(backlog)  # the backlog is untouched
    assert admin.clear_queue("default") == len(backlog)
    assert admin.queue_sizes(["default"]) == [(0, 0, 0)]
    client.close()


def test_the_lease_of_a_job_at_the_front_is_reaped_and_its_outcome_recorded(adder: Resq) -> None:
    queues = adder.broker.queues
    first, backlog = _backlog_behind_a_leased_job(adder, "lost-worker")
    [lease] = queues.pending_of("default", "lost-worker")
    queues.release(lease, "lost")
    # A worker asking for one job holds one: the front's, and the backlog's head stays next in line
    [again] = queues.fetch("w2", ["default"], 1, None)
    assert again.front and again.job_id == first
    assert queues.start("w2", again).runnable
    assert {c["name"]: c["pending"] for c in queues.consumers("default")}["w2"] == 1
    # Its worker dies too: its lease at the front is found and given back once more
    [held] = queues.pending_of("default", "w2")
    assert held.front and held.entry == again.entry
    assert queues.release(held, "lost") == "queued"
    order = queues.fetch("w3", ["default"], 10, None)
    assert [d.job_id for d in order] == [backlog[0], first, *backlog[1:]]
    started = queues.start("w3", order[1])
    assert started.runnable and started.attempt == 3  # attempts 1 and 2 were each lost with their worker
    outcome = Succeeded(order[1], first, pack(0), 60_000, 1)
    queues.record([outcome])
    assert adder.broker.jobs.status("default", first) == "succeeded"
