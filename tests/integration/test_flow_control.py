"""Flow control on real Redis (``docs/flow-control.md``): priorities within a queue, concurrency limits
that hold across worker processes (per task and per key), rate limits over a window, expiry, and
``Snooze``. The limits are judged from what the tasks themselves recorded (``tests/apps/flowapp.py``)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from typing import Any

import pytest
import redis

from resq import ConfigError, JobFailed, JobStatus
from resq.ops.inspect import Inspector
from resq.worker.consumer import Consumer
from tests.apps import flowapp
from tests.conftest import RunWorker
from tests.helpers import burst, wait_for

APP = "tests.apps.flowapp:app"


@pytest.fixture
def client(bind_app: Any) -> redis.Redis:
    return bind_app(flowapp.app)


def drain(worker: str = "w1") -> None:
    consumer = Consumer(flowapp.app, worker, ["default"], burst=True, prefetch=1)
    while not consumer.step().drained:
        pass
    consumer.flush_counters()


def runs(client: redis.Redis, key: str) -> list[tuple[str, float, float]]:
    rows = [row.decode().split("|") for row in client.lrange(key, 0, -1)]
    return [(label, float(began), float(ended)) for label, began, ended in rows]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    edges = sorted([(b, 1) for b, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


@pytest.mark.cluster
def test_higher_priorities_run_first_and_each_in_the_order_it_came(client: redis.Redis) -> None:
    record = flowapp.record
    for n in range(3):
        record.delay(f"p0-{n}")
    for n in range(3):
        record.apply_async((f"p9-{n}",), priority=9)
    for n in range(2):
        record.apply_async((f"p5-{n}",), priority=5)
    drain()
    order = [label.decode() for label in client.lrange("flowtest:order", 0, -1)]
    assert order == ["p9-0", "p9-1", "p9-2", "p5-0", "p5-1", "p0-0", "p0-1", "p0-2"]


@pytest.mark.cluster
def test_a_delayed_job_keeps_its_priority_when_it_becomes_due(client: redis.Redis) -> None:
    flowapp.record.delay("plain")
    late = flowapp.record.apply_async(("urgent",), priority=7, delay=0.05)
    assert late.status() == JobStatus.SCHEDULED
    flowapp.app.broker.queues.promote("default", now=10**13)  # due now
    drain()
    assert [label.decode() for label in client.lrange("flowtest:order", 0, -1)] == ["urgent", "plain"]


def test_a_priority_out_of_range_is_refused_with_the_range(client: redis.Redis) -> None:

    with pytest.raises(ConfigError, match="from 0 to 9"):
        flowapp.record.apply_async(("x",), priority=10)
    with pytest.raises(ConfigError, match="from 0 to 9"):
        flowapp.app.task(name="bad.priority", priority=-1)(lambda: None)
    assert client.llen("flowtest:order") == 0 and Inspector(flowapp.app).queues()[0].waiting == 0


def test_a_concurrency_key_holds_across_worker_processes_without_blocking_other_keys(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    for n in range(6):
        for user in ("ada", "bob"):
            flowapp.per_user.delay(user, n)
    burst(run_worker, APP, "-c", "3")
    done = runs(client, "flowtest:per_user")
    assert len(done) == 12
    for user in ("ada", "bob"):
        assert most_at_once([(b, e) for u, b, e in done if u == user]) == 1, done
    assert most_at_once([(b, e) for _, b, e in done]) >= 2  # ada's jobs did not hold bob's back
    assert Inspector(flowapp.app).stats(days=1)["total"]["parked"] >= 1


@pytest.mark.cluster
def test_a_task_concurrency_limit_holds_across_worker_processes(client: redis.Redis, run_worker: RunWorker) -> None:
    for n in range(8):
        flowapp.two_at_once.delay(n)
    burst(run_worker, APP, "-c", "4")
    done = runs(client, "flowtest:two")
    assert len(done) == 8
    assert most_at_once([(b, e) for _, b, e in done]) == 2
    assert client.zcard("{resq:default}:slots:flow.two_at_once") == 0  # every slot given back


@pytest.mark.cluster
def test_a_rate_limit_holds_over_its_window_across_worker_processes(client: redis.Redis, run_worker: RunWorker) -> None:
    jobs = [flowapp.rated.delay(n) for n in range(10)]
    burst(run_worker, APP, "-c", "2")
    assert {job.status() for job in jobs} == {JobStatus.SUCCEEDED}
    starts = sorted(b for _, b, _ in runs(client, "flowtest:rated"))
    assert len(starts) == 10
    # 4 a second: no window a little shorter than a second (the task's clock is not Redis's) holds more
    for i, first in enumerate(starts):
        assert len([s for s in starts[i:] if s < first + 0.95]) <= 4, starts
    assert starts[-1] - starts[0] >= 1.9  # 10 starts at 4 a second span two windows at least


@pytest.mark.cluster
def test_a_job_not_started_before_it_expires_never_runs(client: redis.Redis) -> None:
    gone = flowapp.record.apply_async(("stale",), expires_in=0.01)
    kept = flowapp.record.apply_async(("fresh",), expires_in=60)
    time.sleep(0.05)  # past its expiry (a condition to reach, not a timing goal)
    drain()
    assert gone.status() == JobStatus.EXPIRED and kept.status() == JobStatus.SUCCEEDED
    with pytest.raises(JobFailed, match="expired"):
        gone.result(timeout=0)
    assert [label.decode() for label in client.lrange("flowtest:order", 0, -1)] == ["fresh"]
    assert Inspector(flowapp.app).stats(days=1)["total"]["expired"] == 1
    assert [e["event"] for e in gone.info()["history"]][-1] == "expired"


@pytest.mark.cluster
def test_a_snoozed_job_runs_later_without_counting_an_attempt(client: redis.Redis) -> None:
    job = flowapp.snoozer.delay()
    drain()
    assert job.result(timeout=0) == 1  # the third try is its first attempt: no retry was used up
    events = [e["event"] for e in job.info()["history"]]
    assert events.count("snoozed") == 2
    assert Inspector(flowapp.app).stats(days=1)["total"]["snoozed"] == 2


def test_a_slot_held_by_a_killed_worker_is_freed_through_its_lease(client: redis.Redis, run_worker: RunWorker) -> None:
    first = flowapp.waits_for_word.delay("ada", 1)
    killed = run_worker(APP, "-c", "2", "--heartbeat-interval", "0.5")  # a second child takes the second job
    wait_for(lambda: first.status() == JobStatus.RUNNING, message="the first job holds ada's slot")
    second = flowapp.waits_for_word.delay("ada", 2)
    wait_for(lambda: Inspector(flowapp.app).stats(days=1)["total"]["parked"] >= 1, message="the second waits")
    os.killpg(killed.pid, signal.SIGKILL)  # the whole tree: the slot's holder never records an outcome
    killed.wait(timeout=10)
    # Enough for both runs (the first runs again: it was lost), and for the killed one's BLPOP, which Redis
    # may still serve before it sees that connection closed.
    client.rpush("flowtest:go", *["go"] * 4)
    run_worker(APP, "--heartbeat-interval", "0.5")
    assert first.result(timeout=30) == 1 and second.result(timeout=30) == 2
    done = runs(client, "flowtest:per_user")
    assert most_at_once([(b, e) for _, b, e in done]) == 1
    assert first.info()["lost"] == 1 and client.zcard("{resq:default}:slots:flow.waits_for_word:ada") == 0


def test_resq_job_shows_the_limits_and_the_priority_a_job_counts_against(client: redis.Redis) -> None:
    from resq.cli.ops import format_job

    job = flowapp.per_user.apply_async(("ada", 1), priority=3, expires_in=60)
    info = job.info()
    assert info["priority"] == 3
    assert info["limits"]["concurrency"] == {"key": "flow.per_user:ada", "limit": 1}
    text = format_job(info)
    assert re.search(r"concurrency +1 at once per flow\.per_user:ada", text), text
    assert re.search(r"priority +3", text) and re.search(r"expires +\d{4}-", text), text


def test_groups_are_served_round_robin_whatever_their_backlog(client: redis.Redis) -> None:
    record = flowapp.record
    for n in range(30):
        record.apply_async((f"big-{n}",), group="big")
    for name in ("ada", "bob", "cyd"):
        for n in range(3):
            record.apply_async((f"{name}-{n}",), group=name)
    drain()
    order = [label.decode() for label in client.lrange("flowtest:order", 0, -1)]
    assert len(order) == 39
    small = [i for i, label in enumerate(order) if not label.startswith("big")]
    assert max(small) < 12  # the small groups' 9 jobs all start before the big group's 4th
    assert [label for label in order if label.startswith("big")] == [f"big-{n}" for n in range(30)]  # FIFO


def test_a_group_weight_serves_it_that_many_times_as_often(client: redis.Redis) -> None:
    flowapp.app.broker.queues.ensure_groups(["default"])
    flowapp.app.group_weight("gold", 3, queue="default")
    for n in range(12):
        flowapp.record.apply_async((f"gold-{n}",), group="gold")
        flowapp.record.apply_async((f"free-{n}",), group="free")
    drain()
    first = [label.decode() for label in client.lrange("flowtest:order", 0, 7)]
    assert sum(label.startswith("gold") for label in first) == 6  # 3 to 1, after both groups' first


@pytest.mark.cluster
def test_a_paused_group_waits_and_the_others_go_on(client: redis.Redis) -> None:
    flowapp.app.pause_group("slow", queue="default")
    held = [flowapp.record.apply_async((f"slow-{n}",), group="slow") for n in range(3)]
    flowapp.record.apply_async(("fast-0",), group="fast")
    drain()
    assert [label.decode() for label in client.lrange("flowtest:order", 0, -1)] == ["fast-0"]
    assert {job.status() for job in held} == {JobStatus.QUEUED}
    assert flowapp.app.resume_group("slow", queue="default") == 3
    drain()
    order = [label.decode() for label in client.lrange("flowtest:order", 0, -1)]
    assert order == ["fast-0", "slow-0", "slow-1", "slow-2"]


def test_a_worker_blocked_on_an_empty_queue_wakes_for_a_grouped_job(client: redis.Redis, run_worker: RunWorker) -> None:
    flowapp.record.apply_async(("warm",), group="a")  # the queue has groups: workers read their stream
    worker = run_worker(APP)
    wait_for(lambda: client.llen("flowtest:order") == 1, message="the first grouped job ran")
    time.sleep(0.3)  # the worker now waits in its blocking read
    job = flowapp.record.apply_async(("later",), group="b")
    assert job.result(timeout=10) is None
    assert client.lrange("flowtest:order", 0, -1) == [b"warm", b"later"]
    worker.terminate()
    worker.wait(timeout=30)


def test_grouped_jobs_count_as_waiting_and_resq_job_names_their_group(client: redis.Redis) -> None:
    from resq.cli.ops import format_job

    flowapp.app.pause_group("held", queue="default")
    jobs = [flowapp.record.apply_async((f"g-{n}",), group="held" if n else "open") for n in range(3)]
    drain()  # the open group's job runs; the held group's are set aside
    assert Inspector(flowapp.app).queues()[0].waiting == 2
    assert re.search(r"group +held", format_job(jobs[1].info()))


def test_a_group_limit_of_its_own_holds_across_worker_processes(client: redis.Redis, run_worker: RunWorker) -> None:
    flowapp.app.broker.queues.ensure_groups(["default"])
    flowapp.app.group_limits("solo", concurrency=1, queue="default")
    for n in range(5):
        for tenant in ("solo", "free"):
            flowapp.tenant_job.apply_async((tenant, n), group=tenant)
    burst(run_worker, APP, "-c", "3")
    done = runs(client, "flowtest:tenants")
    assert len(done) == 10
    assert most_at_once([(b, e) for t, b, e in done if t == "solo"]) == 1, done
    assert most_at_once([(b, e) for t, b, e in done if t == "free"]) >= 2, done  # the other group is not held
    assert client.zcard("{resq:default}:slots:group:solo") == 0


def test_rate_limited_by_the_other_side_runs_again_without_counting_an_attempt(client: redis.Redis) -> None:
    job = flowapp.limited_by_api.delay()
    drain()
    assert job.result(timeout=0) == 1
    assert [e["event"] for e in job.info()["history"]].count("snoozed") == 1


def test_higher_priorities_run_first_with_several_worker_processes(client: redis.Redis, run_worker: RunWorker) -> None:
    for n in range(10):
        flowapp.record.delay(f"p0-{n}")
    for n in range(10):
        flowapp.record.apply_async((f"p9-{n}",), priority=9)
    burst(run_worker, APP, "-c", "2", "--prefetch", "1")
    order = [label.decode() for label in client.lrange("flowtest:order", 0, -1)]
    assert len(order) == 20
    # Every p9 job is leased before any p0 job; the two children may start the last p9 and the first p0
    # in either order, so the first eight starts are p9 ones, and p9 ones come first on average.
    assert all(label.startswith("p9") for label in order[:8]), order
    ranks = {p: [i for i, label in enumerate(order) if label.startswith(p)] for p in ("p9", "p0")}
    assert sum(ranks["p9"]) < sum(ranks["p0"])


def test_resq_queue_pause_and_resume_take_one_group(client: redis.Redis, cli: Any) -> None:
    flowapp.record.apply_async(("first",), group="t1")  # the queue exists
    drain()
    assert cli("queue", "pause", "default", "--group", "t7").output.strip() == "paused group t7 of default"
    flowapp.record.apply_async(("t7-job",), group="t7")
    flowapp.record.apply_async(("t1-job",), group="t1")
    drain()
    assert [label.decode() for label in client.lrange("flowtest:order", 0, -1)] == ["first", "t1-job"]
    shown = json.loads(cli("queue", "resume", "default", "--group", "t7", "--json").output)
    assert shown == {"queue": "default", "group": "t7", "paused": False}
    drain()
    assert client.lrange("flowtest:order", -1, -1) == [b"t7-job"]
