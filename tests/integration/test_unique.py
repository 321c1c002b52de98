"""Unique and debounced jobs on real Redis (``@app.task(unique=True, ...)``, ``debounce=...``): each call is
judged by the ``unique`` script against the job holding its key's lock, so a duplicate is refused whatever
the number of producers. What ran is judged from what the tasks recorded (``tests/apps/uniqueapp.py``),
run by worker subprocesses."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest
import redis

from resq import ConfigError, Job, JobStatus, generate_key
from resq.broker.queues import NewJob
from resq.clock import now_ms
from resq.codec import Envelope
from resq.producer import job_unique
from resq.testing import eager
from tests.apps import uniqueapp
from tests.conftest import RunWorker
from tests.helpers import burst, wait_for

APP = "tests.apps.uniqueapp:app"


@pytest.fixture
def client(bind_app: Any) -> redis.Redis:
    return bind_app(uniqueapp.app)


def recorded(client: redis.Redis, key: str) -> list[str]:
    return [row.decode().rsplit("|", 1)[0] for row in client.lrange(key, 0, -1)]


def job_ids(client: redis.Redis) -> set[str]:
    return {key.decode().rsplit(":", 1)[1] for key in client.keys("{resq:default}:job:*")}


def field(client: redis.Redis, job: Job[Any] | str, name: str) -> int:
    job_id = job if isinstance(job, str) else job.id
    raw = client.hget(f"{{resq:default}}:job:{job_id}", name)
    return int(raw or 0)


def ready_worker(client: redis.Redis, run_worker: RunWorker) -> None:
    """A worker subprocess, running: it has run a job."""
    run_worker(APP, "-c", "2")
    probe = uniqueapp.plain.delay(0)
    wait_for(lambda: probe.status() == JobStatus.SUCCEEDED, message="the worker runs jobs")


@pytest.mark.cluster
def test_a_unique_job_enqueued_twice_exists_once_and_runs_once(client: redis.Redis, run_worker: RunWorker) -> None:
    first = uniqueapp.once.delay(1)
    again = uniqueapp.once.delay(1)
    other = uniqueapp.once.delay(2)  # other arguments: another key
    assert (first.deduplicated, again.deduplicated, other.deduplicated) == (False, True, False)
    assert again.id == first.id != other.id
    assert job_ids(client) == {first.id, other.id}
    burst(run_worker, APP)
    assert sorted(recorded(client, "uqtest:once")) == ["1", "2"]
    assert uniqueapp.once.delay(1).deduplicated is False  # its holder finished: a new job


@pytest.mark.cluster
def test_a_unique_job_enqueued_from_many_threads_at_once_exists_once(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    start = threading.Barrier(8)
    handles: list[Job[Any]] = []
    lock = threading.Lock()

    def produce() -> None:
        start.wait()
        for _ in range(20):
            job = uniqueapp.once.delay(7)
            with lock:
                handles.append(job)

    threads = [threading.Thread(target=produce) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(handles) == 160
    assert len({job.id for job in handles}) == 1
    assert sum(not job.deduplicated for job in handles) == 1
    assert len(job_ids(client)) == 1
    burst(run_worker, APP)
    assert recorded(client, "uqtest:once") == ["7"]


def test_until_started_a_call_after_the_holder_started_creates_a_new_job(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    holder = uniqueapp.until_started.delay("a")
    assert uniqueapp.until_started.delay("a").id == holder.id  # not started yet: a duplicate
    run_worker(APP, "-c", "1")  # one at a time: the new job waits while the holder runs
    wait_for(lambda: client.lrange("uqtest:began", 0, -1) == [b"a"], message="the holder started")
    assert holder.status() == JobStatus.RUNNING
    new = uniqueapp.until_started.delay("a")
    assert not new.deduplicated and new.id != holder.id
    assert uniqueapp.until_started.delay("a").id == new.id  # the new job holds the lock now
    client.rpush("uqtest:go", "1", "1")
    wait_for(lambda: {holder.status(), new.status()} == {JobStatus.SUCCEEDED}, message="both ran")
    assert recorded(client, "uqtest:started") == ["a", "a"]


def test_until_finished_a_running_holder_refuses_calls_until_it_ended(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    holder = uniqueapp.until_finished.delay("a")
    run_worker(APP, "-c", "2")
    wait_for(lambda: client.lrange("uqtest:began", 0, -1) == [b"a"], message="the holder started")
    running = uniqueapp.until_finished.delay("a")
    assert running.deduplicated and running.id == holder.id
    client.rpush("uqtest:go", "1")
    wait_for(lambda: holder.status() == JobStatus.SUCCEEDED, message="the holder finished")
    new = uniqueapp.until_finished.delay("a")
    assert not new.deduplicated and new.id != holder.id
    client.rpush("uqtest:go", "1")
    wait_for(lambda: new.status() == JobStatus.SUCCEEDED, message="the new job ran")
    assert recorded(client, "uqtest:finished") == ["a", "a"]


def test_a_window_refuses_duplicates_until_it_passes_even_after_its_holder_finished(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    ready_worker(client, run_worker)
    began = time.monotonic()
    holder = uniqueapp.window.delay(1)
    wait_for(lambda: holder.status() == JobStatus.SUCCEEDED, message="the holder ran")
    assert time.monotonic() - began < 0.9, "the holder must finish within the window for this test to mean much"
    assert uniqueapp.window.delay(1).id == holder.id  # finished, and still refused
    new = wait_for(lambda: (job := uniqueapp.window.delay(1)) and not job.deduplicated and job, interval=0.02)
    assert time.monotonic() - began >= 0.95  # unique_for=1.0 (Redis expires the lock to the millisecond)
    assert new.id != holder.id
    wait_for(lambda: new.status() == JobStatus.SUCCEEDED, message="the new job ran")
    assert recorded(client, "uqtest:window") == ["1", "1"]


def test_a_unique_key_by_argument_keeps_one_job_per_user(client: redis.Redis, run_worker: RunWorker) -> None:
    ada = uniqueapp.per_user.delay("ada", 1)
    bob = uniqueapp.per_user.delay("bob", 1)
    assert uniqueapp.per_user.delay("ada", 2).id == ada.id  # other arguments, the same key
    assert uniqueapp.per_user.apply_async(kwargs={"user": "bob", "n": 3}).id == bob.id
    assert ada.id != bob.id and len(job_ids(client)) == 2
    burst(run_worker, APP)
    assert sorted(recorded(client, "uqtest:per_user")) == ["ada:1", "bob:1"]


@pytest.mark.cluster
def test_a_burst_of_debounced_calls_runs_once_with_the_last_arguments(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    jobs = [uniqueapp.debounced.delay(n) for n in range(5)]
    assert len({job.id for job in jobs}) == 1
    assert [job.deduplicated for job in jobs] == [False, True, True, True, True]
    assert jobs[0].status() == JobStatus.SCHEDULED
    history = uniqueapp.app.broker.jobs.history("default", jobs[0].id)
    assert [e["event"] for e in history] == ["scheduled", "debounced"]  # one entry for a run of calls
    assert history[-1]["calls"] == 4
    run_worker(APP)
    wait_for(lambda: jobs[0].status() == JobStatus.SUCCEEDED, message="the debounced job ran")
    assert recorded(client, "uqtest:debounced") == ["4"]
    assert len(job_ids(client)) == 1


def test_a_debounced_job_starts_by_its_maximum_wait_and_the_next_call_starts_a_new_one(
    client: redis.Redis, run_worker: RunWorker
) -> None:
    ready_worker(client, run_worker)
    handles: list[tuple[int, Job[Any]]] = []
    began = time.monotonic()
    n = 0
    while time.monotonic() - began < 2.0:  # a call every 0.1 s: each within debounce (0.3 s) of the last
        handles.append((now_ms(), uniqueapp.capped.delay(n)))
        n += 1
        time.sleep(0.1)
    ids = list(dict.fromkeys(job.id for _, job in handles))  # in the order they were created
    assert len(ids) >= 2, "calls after the holder started made a new job"
    wait_for(lambda: all(uniqueapp.app.job(i).status() == JobStatus.SUCCEEDED for i in ids), message="all ran")
    calls = {job_id: [at for at, job in handles if job.id == job_id] for job_id in ids}
    for job_id in ids:
        first, started = field(client, job_id, "debounce_first_ms"), field(client, job_id, "first_started_ms")
        assert abs(first - calls[job_id][0]) < 200
        # never before the debounce, never later than the cap (plus the promotion's tolerance), although
        # calls kept coming for 2 s: without the cap the first job would start after the last call
        assert first + 300 <= started <= first + 800 + 500, (job_id, started - first)
    for before, after in itertools.pairwise(ids):
        assert field(client, after, "first_started_ms") > field(client, before, "first_started_ms")
        taken = calls[before]
        if max((b - a for a, b in itertools.pairwise(taken)), default=0) < 250:  # no pause let it start early
            # it took every call while it waited, up to its cap: only then did a call make a new job
            assert field(client, after, "enqueued_ms") >= field(client, before, "debounce_first_ms") + 800
    # each job ran once, with the arguments of the last call it took
    last_args = [str(max(i for i, (_, job) in enumerate(handles) if job.id == job_id)) for job_id in ids]
    assert recorded(client, "uqtest:capped") == last_args


def test_a_debounced_call_of_an_encrypted_task_is_sealed_again_for_the_job_it_replaces(
    client: redis.Redis, redis_url: str, run_worker: RunWorker
) -> None:
    key = generate_key()
    uniqueapp.app.reconfigure(url=redis_url, encryption_keys=f"k1:{key}")
    first = uniqueapp.sealed_debounced.delay("first secret")
    second = uniqueapp.sealed_debounced.delay("second secret")
    assert second.deduplicated and second.id == first.id
    stored = client.hget(f"{{resq:default}}:job:{first.id}", "envelope") or b""
    assert stored and b"secret" not in stored  # the replacing envelope is sealed too
    burst(run_worker, APP, env={"RESQ_ENCRYPTION_KEYS": f"k1:{key}"})
    assert first.status() == JobStatus.SUCCEEDED  # the worker opened it under the job's own id
    assert recorded(client, "uqtest:sealed") == ["second secret"]


@pytest.mark.cluster
def test_the_script_writes_nothing_and_says_retry_when_the_lock_changed_after_it_was_read(
    client: redis.Redis,
) -> None:
    holder = uniqueapp.once.delay(1)
    unique, connection = uniqueapp.app.broker.unique, uniqueapp.app.broker.connection
    lock = job_unique(uniqueapp.app, Envelope("x", "uq.once", "default", [1], {}, 0))
    assert lock is not None and client.get(f"{{resq:default}}:unique:{lock.key}") == holder.id.encode()
    call = NewJob("late-producer", "uq.once", b"\x80", 0)
    for read in ("", "someone-else"):  # what a producer read before another took the lock
        keys, args = unique._call("default", call, lock, False, read, None, "")
        assert connection.script("unique", keys, args) == [b"retry", holder.id.encode()]
    assert job_ids(client) == {holder.id}  # nothing written
    keys, args = unique._call("default", call, lock, False, holder.id, None, "")  # the holder read now
    assert connection.script("unique", keys, args)[2:4] == [holder.id.encode(), b"duplicate"]


def test_map_of_a_unique_task_is_refused_in_one_line_before_anything_is_enqueued(client: redis.Redis) -> None:
    with pytest.raises(ConfigError) as raised:
        uniqueapp.once.map([1, 2, 3])
    assert str(raised.value) == "uq.once: unique and debounced tasks are enqueued one at a time: use delay()"
    with pytest.raises(ConfigError, match="one at a time"):
        uniqueapp.app.enqueue_many([(uniqueapp.debounced, (1,))])
    assert job_ids(client) == set()


def test_a_failing_unique_key_function_is_a_config_error_and_enqueues_nothing(client: redis.Redis) -> None:
    with pytest.raises(ConfigError, match=r"unique_key of uq\.bad_key failed .*LookupError: no tenant for ada"):
        uniqueapp.bad_key.delay("ada")
    assert job_ids(client) == set()
    assert client.keys("*unique*") == []


@pytest.mark.cluster
def test_async_and_on_commit_enqueues_are_deduplicated_too(client: redis.Redis) -> None:
    async def twice() -> tuple[Job[Any], Job[Any]]:
        first = await uniqueapp.once.adelay(5)
        again = await uniqueapp.once.aapply_async((5,))
        await uniqueapp.app.broker.aclose()
        return first, again

    first, again = asyncio.run(twice())
    assert (first.deduplicated, again.deduplicated, again.id) == (False, True, first.id)
    sent: list[Any] = []
    uniqueapp.app.on_commit = sent.append
    try:
        uniqueapp.once.delay_on_commit(5)
        for send in sent:
            send()  # the transaction commits
    finally:
        uniqueapp.app.on_commit = None
    assert len(sent) == 1 and job_ids(client) == {first.id}

    async def debounce() -> Job[Any]:
        job = await uniqueapp.debounced.adelay(2)
        await uniqueapp.app.broker.aclose()
        return job

    pending = uniqueapp.debounced.delay(1)
    later = asyncio.run(debounce())
    assert later.deduplicated and later.id == pending.id


def test_eager_mode_ignores_uniqueness(client: redis.Redis) -> None:
    with eager(uniqueapp.app):
        jobs = [uniqueapp.once.delay(3), uniqueapp.once.delay(3)]
    assert jobs[0].id != jobs[1].id and not any(job.deduplicated for job in jobs)
    assert recorded(client, "uqtest:once") == ["3", "3"]
    assert job_ids(client) == set()
