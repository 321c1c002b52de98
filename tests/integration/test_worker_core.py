"""Jobs run by real ``resq worker`` processes: outcomes, retries, dead jobs, delays, expiry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

from resq import JobFailed, JobStatus, Resq, UnknownJob
from resq.broker.keys import Keys
from resq.codec import unpack
from tests.conftest import RunWorker
from tests.helpers import burst, wait_for

K = Keys("resq")
APP = "tests.apps.core:app"


@pytest.mark.cluster
def test_status_goes_queued_then_succeeded_and_result_returns(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(2, 3)
    assert job.status() == "queued"
    burst(run_worker, APP)
    assert job.status() == JobStatus.SUCCEEDED == "succeeded"
    assert job.result() == 5
    assert job.result(timeout=1) == 5  # can be read more than once


def test_status_is_running_while_the_task_runs(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.slow.delay(1.0)
    run_worker(APP)
    wait_for(lambda: job.status() == "running", timeout=15, message="job running")
    assert job.info()["worker"]
    assert job.result(timeout=15) == 1.0
    assert job.status() == "succeeded"


def test_result_blocks_until_the_worker_finishes(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(20, 22)
    run_worker(APP)
    assert job.result(timeout=20) == 42


def test_arguments_and_results_round_trip_through_a_worker(core: ModuleType, run_worker: RunWorker) -> None:
    args: list[Any] = [
        None,
        True,
        7,
        2.5,
        "s",
        b"\x00b",
        [1, [2]],
        {"k": {"n": 1}},
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        date(2024, 2, 29),
        Decimal("1.10"),
        uuid.UUID(int=99),
        (1, 2),
    ]
    job = core.echo.delay(*args, when=datetime(2030, 1, 1, tzinfo=UTC))
    rich = core.rich_values.delay()
    burst(run_worker, APP)
    expected_args = [*args[:-1], [1, 2]]  # tuples come back as lists
    assert job.result() == [expected_args, {"when": datetime(2030, 1, 1, tzinfo=UTC)}]
    assert rich.result() == {
        "dt": datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "day": date(2024, 2, 29),
        "dec": Decimal("12.3400"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "tuple": [1, 2],
    }


def test_job_failed_carries_type_message_and_traceback(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.fail_with.delay("boom 42")
    burst(run_worker, APP)
    assert job.status() == "dead"
    with pytest.raises(JobFailed) as info:
        job.result(timeout=5)
    err = info.value
    assert err.job_id == job.id
    assert err.exc_type == "ValueError"
    assert err.exc_message == "boom 42"
    assert "Traceback (most recent call last)" in err.traceback
    assert "in fail_with" in err.traceback
    assert "ValueError: boom 42" in err.traceback
    assert "boom 42" in str(err)


@pytest.mark.cluster
def test_retries_then_success(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.flaky.delay()
    run_worker(APP)
    assert job.result(timeout=20) == "ok on attempt 2"
    info = job.info()
    assert info["status"] == "succeeded"
    assert info["attempts"] == 2
    # The result is shown; the error of the failed first attempt is kept, as the last error
    assert info["result"] == "ok on attempt 2"
    assert (info["error"]["type"], info["error"]["message"]) == ("ConnectionError", "first attempt fails")


@pytest.mark.cluster
def test_retries_exhausted_goes_dead_with_error_and_traceback(
    core: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    job = core.always_fails.delay("no luck")
    run_worker(APP)
    with pytest.raises(JobFailed, match="no luck"):
        job.result(timeout=20)
    assert job.status() == "dead"
    info = job.info()
    assert info["attempts"] == 3  # retries=2: one attempt and two retries
    assert info["error"]["type"] == "ValueError"
    assert info["error"]["message"] == "no luck"
    assert "ValueError: no luck" in info["error"]["traceback"]
    assert info["finished_at"] is not None
    assert redis_client.zscore(K.dead("default"), job.id) is not None
    assert redis_client.zcard(K.scheduled("default")) == 0
    with pytest.raises(JobFailed, match="no luck"):
        job.result()


def test_burst_consumer_does_not_exit_while_a_promoted_job_waits(
    core: ModuleType, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resq.worker.consumer import Consumer

    job = core.add.enqueue_in(0.2, 1, 2)
    due_ms = int(job.info()["due_at"].timestamp() * 1000)
    wait_for(lambda: time.time() * 1000 > due_ms + 1, timeout=5, message="job due")
    other = Resq(redis_url)  # stands for the supervisor's maintenance, in another process
    broker = core.app.broker
    broker.queues.ensure_groups(["default"])
    real_fetch = broker.queues.fetch

    def fetch_then_someone_promotes(*args: Any, **kwargs: Any) -> Any:
        found = real_fetch(*args, **kwargs)
        if not found:
            other.broker.queues.promote("default")
        return found

    monkeypatch.setattr(broker.queues, "fetch", fetch_then_someone_promotes)
    Consumer(core.app, "test-consumer", ["default"], burst=True).run()
    assert job.status() == "succeeded"


def test_retry_with_delay_is_honoured(core: ModuleType, run_worker: RunWorker) -> None:
    # retry_later's own backoff is 60 s: only Retry(delay=1) lets it run again within the test.
    job = core.retry_later.delay(1.0)
    run_worker(APP)
    second_start = job.result(timeout=20)
    info = job.info()
    assert info["attempts"] == 2
    assert second_start >= info["first_started_at"].timestamp() + 1.0


def test_retry_on_filters_exceptions(core: ModuleType, run_worker: RunWorker) -> None:
    not_listed = core.picky.delay("key")
    listed = core.picky.delay("value")
    run_worker(APP)
    for job in (not_listed, listed):
        with pytest.raises(JobFailed):
            job.result(timeout=20)
    assert not_listed.status() == "dead"
    assert not_listed.info()["attempts"] == 1  # KeyError is not in retry_on: dead at once
    assert not_listed.info()["error"]["type"] == "KeyError"
    assert listed.status() == "dead"
    assert listed.info()["attempts"] == 4  # ValueError is retried: retries=3


def test_unencodable_result_goes_dead_without_retries(core: ModuleType, run_worker: RunWorker) -> None:
    plain = core.unencodable_result.delay()
    retried = core.unencodable_result_with_retries.delay()
    burst(run_worker, APP)
    for job in (plain, retried):
        assert job.status() == "dead"
        info = job.info()
        assert info["attempts"] == 1  # the same result would fail the same way every time
        assert info["error"]["type"] == "resq.errors.EncodeError"
        with pytest.raises(JobFailed):
            job.result()


def test_current_job_inside_a_task(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.whoami.delay()
    flaky = core.whoami_flaky.delay()
    run_worker(APP)
    seen = job.result(timeout=20)
    assert seen["id"] == job.id
    assert seen["attempt"] == 1
    assert seen["task"] == "tests.apps.core.whoami"
    assert seen["queue"] == "default"
    assert flaky.result(timeout=20) == {"id": flaky.id, "attempt": 2}


@pytest.mark.cluster
def test_enqueue_in_runs_after_its_delay_not_before(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.started_at.enqueue_in(1.5)
    due_s = job.info()["due_at"].timestamp()
    assert job.status() == "scheduled"
    run_worker(APP)
    started = job.result(timeout=20)
    assert started >= due_s
    assert job.status() == "succeeded"


def test_enqueue_at_runs_at_its_time_not_before(core: ModuleType, run_worker: RunWorker) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    job = core.started_at.enqueue_at(at)
    assert job.status() == "scheduled"
    run_worker(APP)
    started = job.result(timeout=20)
    assert started >= at.timestamp()


def test_scheduled_job_waits_in_a_running_worker(core: ModuleType, run_worker: RunWorker) -> None:
    run_worker(APP)
    ready = core.add.delay(1, 1)
    assert ready.result(timeout=20) == 2  # the worker is up
    later = core.started_at.enqueue_in(1.0)
    due_s = later.info()["due_at"].timestamp()
    assert later.status() == "scheduled"
    assert later.result(timeout=20) >= due_s


@pytest.mark.cluster
def test_apply_async_queue_is_served_by_a_worker_of_that_queue(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.apply_async(args=(4, 4), queue="urgent")
    other = core.add.delay(1, 1)
    burst(run_worker, APP, "-q", "urgent")
    assert job.result() == 8
    assert other.status() == "queued"  # the default queue was not served


@pytest.mark.cluster
def test_queues_are_served_in_priority_order(core: ModuleType, run_worker: RunWorker) -> None:
    low = [core.started_at.apply_async(queue="low") for _ in range(3)]
    high = [core.started_at.apply_async(queue="high") for _ in range(3)]
    burst(run_worker, APP, "-q", "high,low")
    last_high = max(j.result() for j in high)
    first_low = min(j.result() for j in low)
    assert last_high <= first_low


def test_job_id_can_be_reused_once_the_job_finished(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.apply_async(args=(1, 2), job_id="again")
    burst(run_worker, APP)
    assert job.result() == 3
    again = core.add.apply_async(args=(2, 2), job_id="again")
    assert again.status() == "queued"
    burst(run_worker, APP)
    assert again.result() == 4


@pytest.mark.cluster
def test_job_info_fields_after_success(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.add.delay(2, 3)
    burst(run_worker, APP)
    info = core.app.job(job.id).info()
    assert info["id"] == job.id
    assert info["task"] == "tests.apps.core.add"
    assert info["queue"] == "default"
    assert info["status"] == "succeeded"
    assert info["attempts"] == 1
    assert info["worker"]
    assert info["result"] == 5
    assert info["error"] is None
    assert info["args"] == [2, 3]
    assert info["kwargs"] == {}
    assert isinstance(info["duration_ms"], int)
    enqueued, started, finished = info["enqueued_at"], info["started_at"], info["finished_at"]
    assert all(t.tzinfo is not None for t in (enqueued, started, finished))
    assert enqueued <= started <= finished


def test_unknown_task_goes_dead_and_the_worker_carries_on(
    core: ModuleType, run_worker: RunWorker, redis_url: str, redis_client: redis.Redis
) -> None:
    other = Resq(redis_url)

    @other.task(name="nowhere.missing")
    def missing() -> None: ...

    stray = missing.delay()
    good = core.add.delay(1, 2)
    burst(run_worker, APP)
    assert stray.status() == "dead"
    assert stray.info()["error"]["message"] == "unknown task 'nowhere.missing'"
    with pytest.raises(JobFailed) as info:
        stray.result()
    assert info.value.exc_message == "unknown task 'nowhere.missing'"
    assert redis_client.zscore(K.dead("default"), stray.id) is not None
    assert good.result() == 3


def test_undecodable_envelope_goes_dead_with_its_bytes_and_the_worker_carries_on(
    core: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    bad = core.add.delay(1, 2)
    garbage = b"\xc1\x00not msgpack\xff"
    redis_client.hset(K.job("default", bad.id), "envelope", garbage)
    good = core.add.delay(3, 4)
    burst(run_worker, APP)
    assert bad.status() == "dead"
    assert redis_client.hget(K.job("default", bad.id), "envelope") == garbage
    info = bad.info()
    assert info["raw_payload"] == garbage
    assert info["error"]["type"] == "DecodeError"
    assert redis_client.zscore(K.dead("default"), bad.id) is not None
    with pytest.raises(JobFailed):
        bad.result()
    assert good.result() == 7


@pytest.mark.cluster
def test_garbage_stream_entry_goes_dead_with_its_fields_and_the_worker_carries_on(
    core: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    entry = redis_client.xadd(K.queue("default"), {"hello": "world", "n": b"\x00\xff"}).decode()
    lone = redis_client.xadd(K.queue("default"), {"not_id": "x"}).decode()
    good = core.add.delay(5, 6)
    burst(run_worker, APP)
    assert good.result() == 11
    dead = {m.decode() for m in redis_client.zrange(K.dead("default"), 0, -1)}
    assert dead == {f"garbage-{entry}", f"garbage-{lone}"}
    fields = redis_client.hgetall(K.job("default", f"garbage-{entry}"))
    assert fields[b"status"] == b"dead"
    assert unpack(fields[b"envelope"]) == {"hello": b"world", "n": b"\x00\xff"}
    assert redis_client.xlen(K.queue("default")) == 0  # nothing left to trip over
    assert core.app.job(f"garbage-{entry}").status() == "dead"


@pytest.mark.cluster
def test_result_ttl_expires_the_job_record(core: ModuleType, run_worker: RunWorker, redis_client: redis.Redis) -> None:
    job = core.short_lived.delay()
    keep = core.add.delay(1, 1)
    burst(run_worker, APP)
    assert keep.result() == 2
    wait_for(lambda: not redis_client.exists(K.job("default", job.id)), timeout=10, message="record expired")
    with pytest.raises(UnknownJob):
        job.status()
    assert not [k for k in redis_client.keys("*") if job.id.encode() in k]
    ttl = redis_client.pttl(K.job("default", keep.id))
    assert 0 < ttl <= 86400 * 1000  # the default result_ttl: a day


@pytest.mark.cluster
def test_dead_set_is_capped_and_trimmed_jobs_are_deleted(
    core: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    jobs = [core.capped_fail.delay(n) for n in range(5)]
    burst(run_worker, "tests.apps.core:capped")
    dead = {m.decode() for m in redis_client.zrange(K.dead("default"), 0, -1)}
    assert len(dead) == 3
    trimmed = [j for j in jobs if j.id not in dead]
    assert len(trimmed) == 2
    for job in trimmed:
        assert not redis_client.exists(K.job("default", job.id))
        assert not redis_client.exists(K.done("default", job.id))
    for job_id in dead:
        assert redis_client.hget(K.job("default", job_id), "status") == b"dead"
    ttl = redis_client.pttl(K.job("default", next(iter(dead))))
    assert 0 < ttl <= 7 * 86400 * 1000  # dead jobs are kept for dead_ttl (7 days)


@pytest.mark.cluster
def test_a_death_trims_dead_jobs_older_than_dead_ttl(redis_url: str, redis_client: redis.Redis) -> None:
    """The dead set is trimmed by whoever records a death (``Queues.trim_dead``): by size (above) and by
    age, the records of the trimmed jobs deleted with them."""
    app = Resq(redis_url, dead_ttl=0.3)

    @app.task(name="trim.fail", retries=0)
    def fail(n: int) -> None:
        raise ValueError(f"no {n}")

    app.broker.queues.ensure_groups(["default"])
    old = fail.delay(1)
    from resq.testing import drain

    drain(app, ["default"])
    assert old.status() == JobStatus.DEAD
    time.sleep(0.4)  # past dead_ttl (its record would expire on its own too: the set keeps no TTL per member)
    new = fail.delay(2)
    drain(app, ["default"])
    assert {m.decode() for m in redis_client.zrange(K.dead("default"), 0, -1)} == {new.id}
    assert not redis_client.exists(K.job("default", old.id))
    app.broker.close()


def test_module_level_task_runs_on_the_default_app(core: ModuleType, run_worker: RunWorker) -> None:
    job = core.default_add.delay(20, 1)
    burst(run_worker, "tests.apps.core:default")
    assert job.result() == 21


PRODUCER = """
import sys
from resq import task

@task(name="tests.apps.core.default_add")
def default_add(a, b): ...

print(default_add.delay(int(sys.argv[1]), 1).id)
"""


def test_module_level_task_reads_the_environment(
    run_worker: RunWorker, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A producer process using only ``from resq import task`` and RESQ_REDIS_URL / RESQ_NAMESPACE."""
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "RESQ_NAMESPACE": "otherns"}
    done = subprocess.run([sys.executable, str(script), "41"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    job_id = done.stdout.decode().strip()
    other = Keys("otherns")
    assert redis_client.hget(other.job("default", job_id), "status") == b"queued"
    assert not redis_client.exists(K.job("default", job_id))
    burst(run_worker, "tests.apps.core:default", env={"RESQ_NAMESPACE": "otherns"})
    assert unpack(redis_client.hget(other.job("default", job_id), "result")) == 42


def test_worker_survives_a_burst_of_mixed_jobs(core: ModuleType, run_worker: RunWorker) -> None:
    started = time.monotonic()
    jobs = [core.add.delay(i, i) for i in range(30)]
    failures = [core.fail_with.delay(f"f{i}") for i in range(3)]
    burst(run_worker, APP)
    assert [j.result() for j in jobs] == [2 * i for i in range(30)]
    assert all(f.status() == "dead" for f in failures)
    assert time.monotonic() - started < 60
