"""Pausing a queue for every worker (its jobs wait, none starts), and the figures the dashboard shows per
queue and per minute: the wait in queue (p50, p99) and jobs processed and failed in each minute."""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

from resq import Resq
from resq.ops import Inspector
from resq.worker.consumer import Consumer
from tests.conftest import RunWorker
from tests.helpers import wait_for

APP = "tests.apps.core:app"


def test_a_paused_queue_keeps_its_jobs_until_it_is_resumed(core: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    run_worker(APP, "-c", "2")
    assert core.add.delay(1, 1).result(timeout=10) == 2
    result = cli("queue", "pause", "default")
    assert result.exit_code == 0 and "paused default" in result.output
    time.sleep(0.2)  # a batch fetched within PAUSES_FRESH_S (50 ms) of a worker's last look may still start
    jobs = [core.add.delay(i, i) for i in range(5)]
    time.sleep(1.5)  # workers blocked in a read before the pause take the jobs, and hand them back
    assert [j.status() for j in jobs] == ["queued"] * 5
    [shown] = json.loads(cli("queues", "--json").output)
    assert shown["paused"] is True and shown["waiting"] == 5
    assert "paused" in cli("queues").output
    assert cli("queue", "resume", "default").exit_code == 0
    assert [j.result(timeout=10) for j in jobs] == [0, 2, 4, 6, 8]
    assert json.loads(cli("queues", "--json").output)[0]["paused"] is False


def test_pausing_an_unknown_queue_is_a_clear_error(core: ModuleType, cli: Any) -> None:
    result = cli("queue", "pause", "nope")
    assert result.exit_code != 0 and "no queue named 'nope'" in result.output


def test_a_batch_fetched_as_the_queue_is_paused_is_handed_back_unstarted(adder: Resq) -> None:
    consumer = Consumer(adder, "w1", ["default"], prefetch=3)
    assert consumer.step(None).fetched == 0  # it looks at the pause flags: none
    jobs = [adder.tasks["add"].delay(i, 1) for i in range(3)]
    Inspector(adder).pause_queue("default")
    time.sleep(0.06)  # PAUSES_FRESH_S: its next batch looks again before it starts
    report = consumer.step(None)
    assert (report.fetched, report.performed, report.handed_back) == (3, 0, 3)
    assert [j.status() for j in jobs] == ["queued"] * 3
    assert consumer.step(None).fetched == 0  # it knows the queue is paused: it does not read it
    Inspector(adder).resume_queue("default")
    time.sleep(1.05)  # PAUSED_LOOK_S
    assert consumer.step(None).kinds == {"succeeded": 3}
    assert [j.result(timeout=1) for j in jobs] == [1, 2, 3]  # in their order


def test_the_wait_in_queue_and_the_jobs_of_each_minute_are_counted(core: ModuleType, run_worker: RunWorker) -> None:
    jobs = [core.add.delay(i, 0) for i in range(20)]
    failing = core.fail_with.delay("no")
    time.sleep(0.2)  # they wait a little before a worker starts
    run_worker(APP, "-c", "1")
    assert [j.result(timeout=10) for j in jobs] == list(range(20))
    wait_for(lambda: failing.status() == "dead", message="the failing job dead")
    inspector = Inspector(core.app)
    minutes = wait_for(lambda: inspector.per_minute() if sum(inspector.per_minute()["processed"]) >= 21 else None)
    assert len(minutes["processed"]) == 60 and sum(minutes["failed"]) >= 1
    [queue] = inspector.queues()
    assert queue.wait_p50_ms is not None and queue.wait_p99_ms is not None
    assert 100 <= queue.wait_p99_ms <= 60_000 and queue.wait_p50_ms <= queue.wait_p99_ms
