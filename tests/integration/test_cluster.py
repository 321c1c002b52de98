"""Redis Cluster (``redis+cluster://host:port,host:port``, ``docs/scaling.md``): 3 masters and 3 replicas on
loopback. Queues land on different masters; a worker serves them all with one blocking read per queue at
once, and rides out a master SIGKILLed mid-run (its replica promoted): every job completes."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import resq
from resq import ConfigError, Job, Resq
from resq.canvas import Signature
from resq.worker.consumer import Consumer
from tests.apps import topology as topo
from tests.conftest import RunResq, RunWorker
from tests.helpers import read_log, wait_for
from tests.integration.test_sentinel import APP, counts
from tests.topology import Cluster

__all__ = ["counts"]  # the Sentinel tests' fixture: where `topo.record` counts its runs


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One cluster for the tests that leave it whole (the failover test makes its own)."""
    found = Cluster()
    try:
        yield found
    finally:
        found.close()


def test_a_bad_cluster_url_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="only database 0"):
        Resq("redis+cluster://127.0.0.1:7000/3")
    with pytest.raises(ConfigError, match="not a number"):
        Resq("redis+cluster://127.0.0.1:x")


def test_queues_on_every_master_are_served_by_one_worker(
    cluster: Cluster, counts: redis.Redis, run_worker: RunWorker, run_resq: RunResq, redis_url: str
) -> None:
    queues = cluster.queues_on_each_master()
    assert len(set(queues)) == 3  # three queues, each on its own master
    topo.bind(cluster.url())
    try:
        worker = run_worker(APP, "-q", ",".join(queues.values()), "-c", "2", url=cluster.url(), env=_env(redis_url))
        scheduler = run_resq("scheduler", app_ref=APP, url=cluster.url(), env=_env(redis_url))
        jobs = [topo.record.apply_async((n,), queue=q) for n, q in enumerate(queues.values())]
        later = topo.record.apply_async((7,), queue=queues[min(queues)], delay=0.5)  # the scheduler promotes it
        assert [job.result(timeout=20) for job in jobs] == [0, 1, 2], read_log(worker)
        assert later.result(timeout=20) == 7, read_log(scheduler)
        for port, queue in queues.items():  # each queue's records on its own master
            node = redis.Redis(port=port)
            assert node.exists(f"{{resq:{queue}}}:queue")
            node.close()
    finally:
        topo.app.broker.close()


def test_a_queue_sharded_over_every_master_is_drained_by_one_worker_each_job_once(
    cluster: Cluster, counts: redis.Redis, run_worker: RunWorker, redis_url: str
) -> None:
    shards = [f"ingest#{n}" for n in range(6)]
    assert len({cluster.master_of(f"{{resq:{shard}}}") for shard in shards}) == 3  # one queue, every master
    topo.bind(cluster.url())
    try:
        jobs = [topo.ingest.delay(n) for n in range(60)]
        assert Counter(job.queue for job in jobs) == dict.fromkeys(shards, 10)  # round-robin
        worker = run_worker(APP, "-q", "ingest", "-c", "2", url=cluster.url(), env=_env(redis_url))
        assert sorted(job.result(timeout=30) for job in jobs) == list(range(60)), read_log(worker)
        assert {int(k): int(v) for k, v in counts.hgetall("topo:runs").items()} == dict.fromkeys(range(60), 1)
    finally:
        topo.app.broker.close()


def test_a_master_killed_mid_run_is_ridden_out(counts: redis.Redis, run_worker: RunWorker, redis_url: str) -> None:
    # Two replicas a master: with wait_replicas=1 an acknowledged job is on a replica, and the promoted one
    # still has a replica to confirm the enqueues after the failover.
    cluster = Cluster(replicas=2)
    try:
        _killed_mid_run(cluster, counts, run_worker, redis_url)
    finally:
        cluster.close()


def _killed_mid_run(cluster: Cluster, counts: redis.Redis, run_worker: RunWorker, redis_url: str) -> None:
    queues = cluster.queues_on_each_master()
    topo.bind(cluster.url())
    topo.app.reconfigure(wait_replicas=1)  # an acknowledged job is on its master's replica too
    acknowledged: list[tuple[int, Job[Any]]] = []
    errors: list[BaseException] = []

    def produce() -> None:
        names = list(queues.values())
        for n in range(300):
            try:
                acknowledged.append((n, topo.record.apply_async((n,), queue=names[n % 3])))
            except Exception as exc:
                errors.append(exc)
            time.sleep(0.005)

    try:
        worker = run_worker(APP, "-q", ",".join(queues.values()), "-c", "2", url=cluster.url(), env=_env(redis_url))
        producer = threading.Thread(target=produce)
        producer.start()
        wait_for(lambda: len(acknowledged) >= 80, timeout=30, message="the producer under way")
        victim = max(queues)
        cluster.server(victim).kill()  # a master: its replica takes over within the node timeout
        cluster.wait_failover(victim)
        producer.join(timeout=120)
        for n, job in acknowledged:
            assert job.result(timeout=60) == n, f"job {n}\n{read_log(worker)}"
        done = {int(k): int(v) for k, v in counts.hgetall("topo:runs").items()}
        assert {n for n, _ in acknowledged} <= set(done)
        # at least once: a job runs again when the dead master had not replicated its outcome yet (at most
        # the jobs in flight around the kill: -c 2, each with its prefetched batch)
        assert sum(done.values()) - len(done) <= 12, done
        assert not errors, errors  # producers retried through the failover (broker_retry_s=30)
        assert cluster.master_of(f"{{resq:{queues[victim]}}}") != victim  # served by the promoted replica
    finally:
        topo.app.broker.close()


def _env(redis_url: str) -> dict[str, str]:
    return {"TOPO_COUNT_URL": redis_url}


def test_chords_batches_and_depends_on_whose_keys_span_masters_run_once(cluster: Cluster) -> None:
    """Each workflow's members, callbacks and join on different masters: the hand-off settles them."""
    qa, qb, qc = cluster.queues_on_each_master().values()
    topo.bind(cluster.url())
    try:
        chord = resq.chord(
            [_on(topo.square.s(n), (qa, qb, qc)[n % 3]) for n in range(6)], _on(topo.total.s(), qb)
        ).delay()
        with topo.app.batch(on_success=_on(topo.tally.s(), qc)) as batch:
            topo.square.apply_async((7,), queue=qa)
            topo.square.apply_async((8,), queue=qb)
        parents = [topo.square.apply_async((2,), queue=qa), topo.square.apply_async((3,), queue=qc)]
        dependent = topo.total.apply_async(([1],), queue=qb, depends_on=parents)
        keys = topo.app.broker.keys
        joins = {cluster.master_of(keys.workflow(j)) for j in (chord.id, batch.id, dependent.id)}
        assert len(joins | set(cluster.masters())) == 3 and len(cluster.masters()) == 3
        consumer = Consumer(topo.app, "w1", [qa, qb, qc], burst=True, prefetch=1)
        while not consumer.step().drained:
            pass
        assert chord.result(timeout=5) == sum(n * n for n in range(6))
        status = batch.status()
        assert status is not None and (status.total, status.succeeded, status.fired) == (2, 2, ("success",))
        callback_id, callback_queue = status.callbacks["success"]
        assert Job(topo.app, callback_id, callback_queue).result(timeout=5) == 2
        assert dependent.result(timeout=5) == 1
        client = cluster.client()
        assert [client.hlen(keys.handoff(q)) for q in (qa, qb, qc)] == [0, 0, 0]  # every entry applied
    finally:
        topo.app.broker.close()


def test_a_chain_across_queues_on_different_masters_runs_each_step_once(cluster: Cluster) -> None:
    qa, qb, qc = cluster.queues_on_each_master().values()
    topo.bind(cluster.url())
    try:
        steps = [_on(topo.square.s(3), qa), _on(topo.square.s(), qb), _on(topo.total.s([1]), qc)]
        handle = resq.chain(*steps[:2], _on(topo.square.s(), qa)).delay()
        consumer = Consumer(topo.app, "w1", [qa, qb, qc], burst=True, prefetch=1)
        while not consumer.step().drained:
            pass
        assert handle.result(timeout=5) == 6561  # ((3²)²)², each step on another master than the one before
        assert [job.queue for job in handle.jobs] == [qa, qb, qa]
        client = cluster.client()
        assert [client.hlen(topo.app.broker.keys.handoff(q)) for q in (qa, qb)] == [0, 0]
    finally:
        topo.app.broker.close()


def _on(signature: Signature, queue: str) -> Signature:
    """``signature`` in another queue."""
    return dataclasses.replace(signature, queue=queue)


def test_a_queue_whose_slot_moves_while_workers_run_loses_nothing(
    cluster: Cluster, counts: redis.Redis, run_worker: RunWorker, redis_url: str
) -> None:
    masters = cluster.masters()
    source, target = sorted(masters)[:2]
    low, _ = masters[source][0]
    moving = cluster.queue_in_slots(low, low + 99)  # among the 100 slots the reshard moves
    topo.bind(cluster.url())
    try:
        worker = run_worker(APP, "-q", moving, "-c", "2", url=cluster.url(), env=_env(redis_url))
        first = [topo.record.apply_async((n,), queue=moving) for n in range(100)]
        resharding = cluster.reshard(source, target, 100)
        during = [topo.record.apply_async((n,), queue=moving) for n in range(100, 200)]
        output, _ = resharding.communicate(timeout=120)
        assert resharding.returncode == 0, output[-2000:]
        after = [topo.record.apply_async((n,), queue=moving) for n in range(200, 250)]
        for n, job in enumerate([*first, *during, *after]):
            assert job.result(timeout=60) == n, f"job {n}\n{read_log(worker)}"
        assert cluster.master_of(f"{{resq:{moving}}}") == target  # the queue's keys moved
        done = {int(k): int(v) for k, v in counts.hgetall("topo:runs").items()}
        assert set(done) == set(range(250)) and set(done.values()) == {1}  # each ran once
    finally:
        topo.app.broker.close()
