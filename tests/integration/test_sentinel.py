"""Redis through Sentinel (``redis+sentinel://host:port,host:port/master/db``, ``docs/scaling.md``): a master,
two replicas and three Sentinels on loopback. Producers, a worker and the scheduler run through it, and ride
out a failover under load: the master SIGKILLed, a replica promoted, every acknowledged job completed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from resq import ConfigError, Job, JobStatus, Resq
from tests.apps import topology as topo
from tests.conftest import RunResq, RunWorker
from tests.helpers import read_log, wait_for
from tests.topology import SentinelSet

APP = "tests.apps.topology:app"


@pytest.fixture
def sentinels() -> Iterator[SentinelSet]:
    found = SentinelSet()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def counts(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """Where ``topo.record`` counts its runs: the suite's own Redis (a plain one)."""
    monkeypatch.setenv("TOPO_COUNT_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def runs(counts: redis.Redis) -> dict[int, int]:
    return {int(k): int(v) for k, v in counts.hgetall("topo:runs").items()}


def test_a_bad_sentinel_url_is_one_clear_line() -> None:
    for url, says in [
        ("redis+sentinel://127.0.0.1:26379", "hosts, then the master's name"),
        ("redis+sentinel://127.0.0.1:x/mymaster", "not a number"),
        ("redis+sentinel://h/mymaster/zero", "not a number"),
    ]:
        with pytest.raises(ConfigError, match=says):
            Resq(url)


def test_producers_workers_and_the_scheduler_run_through_sentinel(
    sentinels: SentinelSet, counts: redis.Redis, run_worker: RunWorker, run_resq: RunResq
) -> None:
    url = sentinels.url()
    topo.bind(url)
    try:
        env = {"TOPO_COUNT_URL": _url(counts)}
        worker = run_worker(APP, "-q", "default", "-c", "2", url=url, env=env)
        scheduler = run_resq("scheduler", app_ref=APP, url=url, env=env)
        now = [topo.record.delay(n) for n in range(5)]
        later = topo.record.enqueue_in(0.5, 99)
        assert [job.result(timeout=20) for job in now] == list(range(5)), read_log(worker)
        assert later.result(timeout=20) == 99, read_log(scheduler)
        master = redis.Redis(port=sentinels.master_port())
        assert master.exists(f"{{resq:default}}:job:{later.id}")  # on the master the Sentinels name
        master.close()
    finally:
        topo.app.broker.close()


def test_a_failover_under_load_is_ridden_out(
    sentinels: SentinelSet, counts: redis.Redis, run_worker: RunWorker, run_resq: RunResq
) -> None:
    url = sentinels.url()
    topo.bind(url)
    topo.app.reconfigure(wait_replicas=1)  # an acknowledged job is on a replica too
    env = {"TOPO_COUNT_URL": _url(counts)}
    acknowledged: list[tuple[int, Job[Any]]] = []
    errors: list[BaseException] = []

    def produce() -> None:
        for n in range(300):
            try:
                job = topo.record.enqueue_in(0.2, n) if n % 10 == 0 else topo.record.delay(n)
            except Exception as exc:  # an enqueue that failed is not acknowledged: the caller knows
                errors.append(exc)
                continue
            acknowledged.append((n, job))
            time.sleep(0.005)

    try:
        worker = run_worker(APP, "-q", "default", "-c", "2", url=url, env=env)
        scheduler = run_resq("scheduler", app_ref=APP, url=url, env=env)
        producer = threading.Thread(target=produce)
        producer.start()
        wait_for(lambda: len(acknowledged) >= 80, timeout=30, message="the producer under way")
        old = sentinels.master_port()
        sentinels.kill_master()
        new = sentinels.wait_failover(old)
        producer.join(timeout=120)
        assert not producer.is_alive()
        for n, job in acknowledged:
            assert job.result(timeout=60) == n, f"job {n}\n{read_log(worker)}\n{read_log(scheduler)}"
        done = runs(counts)
        assert {n for n, _ in acknowledged} <= set(done)
        # at least once: a job runs again when the dead master had not replicated its outcome yet (at most
        # the jobs in flight around the kill: -c 2, each with its prefetched batch)
        assert sum(done.values()) - len(done) <= 12, done
        assert new != old  # a replica was promoted (wait_failover waits at most 30 s)
        assert not errors, errors  # producers retried through the failover (broker_retry_s=30)
        assert all(job.status() == JobStatus.SUCCEEDED for _, job in acknowledged)
    finally:
        topo.app.broker.close()


def _url(client: redis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
