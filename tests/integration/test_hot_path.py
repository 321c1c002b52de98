"""The hot path's server work, counted with Redis's own command statistics (no timing: counts only).

A job that succeeds on its first attempt costs at most 10 commands (scripts' inner commands included),
history and counters kept; events cost nothing while nobody listens; the ``done`` list exists only for
jobs someone waits for.
"""

from __future__ import annotations

import pytest
import redis

from resq import Resq
from resq.broker.keys import Keys
from resq.worker.consumer import Consumer
from tests.helpers import wait_for

N = 200
K = Keys("resq")


@pytest.fixture
def app(adder: Resq) -> Resq:
    return adder


def _drain(app: Resq) -> int:
    consumer = Consumer(app, "hot-consumer", ["default"], burst=True)
    consumer.run()
    return consumer.state.processed


def _calls(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in client.info("commandstats").items()}


def test_a_job_that_succeeds_costs_at_most_ten_commands(app: Resq, redis_client: redis.Redis) -> None:
    jobs = [app.tasks["add"].delay(i, 1) for i in range(N)]
    redis_client.config_resetstat()
    assert _drain(app) == N
    calls = _calls(redis_client)
    total = sum(n for name, n in calls.items() if name not in ("info", "config|resetstat"))
    assert total / N <= 10, calls
    assert "publish" not in calls, calls  # nobody listens: no event is published
    assert "rpush" not in calls, calls  # nobody waits: no done list is pushed
    assert all(job.status() == "succeeded" for job in jobs)
    events = [e["event"] for e in jobs[0].info()["history"]]
    assert events == ["enqueued", "started", "succeeded"]  # the history is kept, in one entry per attempt
    assert app.job(jobs[-1].id).result(timeout=1) == N  # a finished job's result is read without a done list


def test_only_a_waited_for_job_gets_a_done_list(app: Resq, redis_client: redis.Redis) -> None:
    waited, alone = app.tasks["add"].delay(1, 2), app.tasks["add"].delay(3, 4)
    with pytest.raises(Exception, match="did not finish"):
        waited.result(timeout=0.05)  # says that it waits, then times out (no worker yet)
    assert redis_client.hget(K.job("default", waited.id), "waiting") == b"1"
    _drain(app)
    assert redis_client.exists(K.done("default", waited.id)) == 1
    assert redis_client.exists(K.done("default", alone.id)) == 0
    assert waited.result(timeout=1) == 3 and alone.result(timeout=1) == 7


def test_events_are_published_while_someone_listens(app: Resq, redis_client: redis.Redis) -> None:
    subscription = app.broker.admin.events()
    assert subscription.message() is None  # subscribes; the server counts it once it has read SUBSCRIBE:
    wait_for(lambda: redis_client.pubsub_numsub(K.events)[0][1] == 1, timeout=5, message="subscribed")
    job = app.tasks["add"].delay(2, 2)
    _drain(app)
    seen = []
    while (raw := subscription.message(0.5)) is not None:
        seen.append(raw)
    subscription.close()
    assert len(seen) == 3, seen  # enqueued, started, succeeded
    assert job.result(timeout=1) == 4


def test_a_running_job_shows_its_started_event(app: Resq) -> None:
    job = app.tasks["add"].delay(1, 1)
    delivery = app.broker.queues.fetch("hot-consumer", ["default"], 1, None)[0]
    started = app.broker.queues.start("hot-consumer", delivery)
    assert started.runnable and job.status() == "running"
    events = job.info()["history"]
    assert [e["event"] for e in events] == ["enqueued", "started"]
    assert events[1]["worker"] == "hot-consumer" and events[1]["attempt"] == 1


def test_a_first_attempt_that_succeeds_writes_no_history_entry_but_shows_its_events(
    app: Resq, redis_client: redis.Redis
) -> None:
    job = app.tasks["add"].delay(1, 1)
    _drain(app)
    assert redis_client.hget(K.job("default", job.id), "history") is None  # its fields say it all
    started, succeeded = job.info()["history"][1:]
    assert (started["event"], started["attempt"], started["worker"]) == ("started", 1, "hot-consumer")
    assert (succeeded["event"], succeeded["attempt"], succeeded["task"]) == ("succeeded", 1, "add")
    assert succeeded["at_ms"] >= started["at_ms"] and succeeded["duration_ms"] >= 0


def test_without_hiredis_redis_py_packs_the_hot_path(app: Resq, monkeypatch: pytest.MonkeyPatch) -> None:
    from resq.broker import connection

    monkeypatch.setattr(connection, "_pack_command", None)  # as without the `fast` extra
    jobs = [app.tasks["add"].delay(i, 1) for i in range(3)]
    assert _drain(app) == 3
    assert [job.result(timeout=1) for job in jobs] == [1, 2, 3]
