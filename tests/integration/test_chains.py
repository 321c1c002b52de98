"""Chains (``docs/workflows.md``): each step gets the previous step's result, the next step is created by
the script that records a step's success, a step that dies ends the chain, and a retried step runs again
alone. With real Redis, resq's consumer in this process, and a real worker."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import resq
from resq import ConfigError, JobFailed, JobStatus
from resq.worker.consumer import Consumer
from tests.apps import workflowapp as wf
from tests.conftest import RunWorker

APP = "tests.apps.workflowapp:app"
QUEUES = ["default", "db"]


@pytest.fixture
def client(bind_app: Any) -> redis.Redis:
    return bind_app(wf.app, tuple(QUEUES))


def drain() -> None:
    consumer = Consumer(wf.app, "w1", QUEUES, burst=True, prefetch=1)
    while not consumer.step().drained:
        pass


def count(client: redis.Redis, name: str) -> int:
    return int(client.get(f"wftest:{name}") or 0)


@pytest.mark.cluster
def test_each_step_gets_the_result_of_the_one_before(client: redis.Redis) -> None:
    handle = resq.chain(wf.fetch.s("example.com"), wf.parse.s(), wf.store.s(table="docs")).delay()
    assert [job.status() for job in handle.jobs[:1]] == [JobStatus.QUEUED]
    assert not client.exists(f"{{resq:db}}:job:{handle.id}")  # the last step does not exist yet
    drain()
    assert handle.result(timeout=5) == "docs:example.com"
    assert handle.jobs[1].result(timeout=0) == {"title": "example.com", "length": 24}
    assert [count(client, n) for n in ("fetch", "parse", "store")] == [1, 1, 1]
    assert handle.jobs[2].queue == "db"  # a step runs in its own task's queue


@pytest.mark.cluster
def test_an_immutable_step_ignores_the_result_before_it(client: redis.Redis) -> None:
    handle = resq.chain(wf.fetch.s("a.b"), wf.ping.si("done")).delay()
    drain()
    assert handle.result(timeout=5) == "done"


@pytest.mark.cluster
def test_a_step_that_dies_ends_the_chain(client: redis.Redis) -> None:
    handle = resq.chain(wf.fetch.s("x"), wf.broken.s(), wf.store.s()).delay()
    drain()
    assert handle.jobs[1].status() == JobStatus.DEAD
    assert not client.exists(f"{{resq:db}}:job:{handle.id}")  # never created
    with pytest.raises(JobFailed, match="cannot take"):
        handle.result(timeout=5)
    assert count(client, "store") == 0


@pytest.mark.cluster
def test_a_retried_step_runs_again_alone(client: redis.Redis) -> None:
    handle = resq.chain(wf.fetch.s("r.s"), wf.parse.s(fail_first=True), wf.store.s()).delay()
    drain()
    assert handle.result(timeout=5) == "pages:r.s"
    assert [count(client, n) for n in ("fetch", "parse", "store")] == [1, 2, 1]
    assert handle.jobs[1].info()["attempts"] == 2


@pytest.mark.cluster
def test_a_chain_runs_to_its_end_in_a_worker(client: redis.Redis, run_worker: RunWorker) -> None:
    handle = resq.chain(wf.fetch.s("w.org"), wf.parse.s(), wf.store.s()).delay()
    worker = run_worker(APP, "-q", "default,db")
    try:
        assert handle.result(timeout=20) == "pages:w.org"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_bad_chains_are_refused_with_one_line(client: redis.Redis) -> None:
    with pytest.raises(ConfigError, match="at least one step"):
        resq.chain()
    with pytest.raises(ConfigError, match=r"task\.s\(\.\.\.\)"):
        resq.chain(wf.fetch.s("x"), wf.parse)  # type: ignore[arg-type]


@pytest.mark.cluster
def test_a_step_run_twice_after_its_worker_was_lost_creates_its_successor_once(client: redis.Redis) -> None:
    from resq.codec import pack
    from resq.outcomes import Succeeded
    from resq.producer import prepare_step

    handle = resq.chain(wf.fetch.s("k.io"), wf.ping.si("second")).delay()
    queues = wf.app.broker.queues
    [stale] = queues.fetch("lost-worker", ["default"], 1, None)
    queues.start("lost-worker", stale)
    assert queues.release(stale, "lost") == "queued"  # a reaper gave its lease back: it runs elsewhere
    drain()  # run again, to its end: the second step is created and runs
    assert handle.result(timeout=5) == "second"
    nxt = handle.jobs[1]
    late = Succeeded(
        stale,
        stale.job_id or "",
        pack("late"),
        60_000,
        1,
        then=prepare_step(wf.app, "wf.ping", ["again"], {}, "default", nxt.id, {}),
    )
    assert queues.record([late]) == (late,)  # the first worker wakes: its success is refused (fencing)
    assert nxt.status() == JobStatus.SUCCEEDED and nxt.result(timeout=0) == "second"  # not made again
    assert count(client, "fetch") == 1  # the lost attempt never got to its body here


def test_a_chain_runs_whole_in_eager_mode(client: redis.Redis) -> None:
    from resq import testing

    with testing.eager(wf.app):
        handle = resq.chain(wf.fetch.s("e.ag"), wf.parse.s(), wf.store.s()).delay()
        assert handle.result(timeout=0) == "pages:e.ag"


@pytest.mark.cluster
def test_a_group_runs_its_jobs_and_returns_their_results_in_order(client: redis.Redis) -> None:
    sizes = [640, 320, 1280, 160]
    handle = resq.group(wf.resize.s("cat.png", w) for w in sizes).delay()
    assert handle.progress() == resq.canvas.GroupProgress(done=0, failed=0, total=4)
    drain()
    assert handle.results(timeout=5) == [f"cat.png@{w}" for w in sizes]
    assert handle.progress().finished


@pytest.mark.cluster
def test_a_group_with_a_dead_member_says_so(client: redis.Redis) -> None:
    handle = resq.group(wf.resize.s("a", 10), wf.resize.s("b", -1)).delay()
    drain()
    assert handle.progress() == resq.canvas.GroupProgress(done=2, failed=1, total=2)
    with pytest.raises(JobFailed, match="no width -1"):
        handle.results(timeout=5)
    with pytest.raises(ConfigError, match="at least one step"):
        resq.group([])


@pytest.mark.cluster
def test_a_step_in_another_queue_handed_off_by_a_process_that_died_is_made_once_by_the_reaper(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resq.broker.handoff
    from resq import BrokerUnavailable
    from resq.maintenance import Maintenance

    handle = resq.chain(wf.fetch.s("x.io"), wf.parse.s(), wf.store.s()).delay()  # store is in queue db
    handoff = wf.app.broker.queues.handoff

    def died(handed: object, **_: object) -> None:  # the worker dies between the step's end and its hand-off
        raise BrokerUnavailable("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(handoff, "apply", died)
        drain()  # fetch, then parse (one queue: made by fetch's succeed script itself), then no store
    assert handle.jobs[1].status() == JobStatus.SUCCEEDED
    assert not client.exists(f"{{resq:db}}:job:{handle.id}")  # the step in `db` is not made yet
    monkeypatch.setattr(resq.broker.handoff, "SWEEP_AFTER_MS", 0)
    Maintenance(wf.app, None).reap()
    assert client.hlen("{resq:default}:handoff") == 0
    drain()
    assert handle.result(timeout=5) == "pages:x.io"
    Maintenance(wf.app, None).reap()  # nothing left to apply: the step is not made again
    assert count(client, "store") == 1
