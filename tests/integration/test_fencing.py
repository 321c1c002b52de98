"""Fencing: a worker whose lease went stale (it was declared lost, and its job given back) cannot record
an outcome for that job any more; the stream entry id the job runs under is the lease's token."""

from __future__ import annotations

import logging
import os
import signal
from types import ModuleType

import pytest
import redis

from resq import Resq, testing
from resq.broker.keys import Keys
from resq.codec import pack
from resq.maintenance import Maintenance
from resq.outcomes import Cancelled, Dead, Delivery, Outcome, Retried, Succeeded
from tests.conftest import RunWorker
from tests.helpers import read_log, wait_for
from tests.integration.test_one_path import APP_REF, running

K = Keys("resq")


@pytest.fixture
def app(adder: Resq) -> Resq:
    return adder


def _lease(app: Resq, worker: str) -> Delivery:
    [delivery] = app.broker.queues.fetch(worker, ["default"], 1, None)
    app.broker.queues.start(worker, delivery)
    return delivery


def _outcomes(d: Delivery) -> list[Outcome]:
    job_id = str(d.job_id)
    return [
        Succeeded(d, job_id, pack(99), 60_000, 1),
        Retried(d, job_id, pack({"type": "E"}), 0, 1),
        Dead(d, job_id, pack({"type": "E"}), 1),
        Cancelled(d, job_id, "cancelled while running"),
    ]


@pytest.mark.cluster
@pytest.mark.parametrize("kind", range(4), ids=["succeeded", "retried", "dead", "cancelled"])
def test_the_late_outcome_of_a_lease_given_back_is_refused(
    app: Resq, redis_client: redis.Redis, kind: int, caplog: pytest.LogCaptureFixture
) -> None:
    job = app.tasks["add"].delay(1, 2)
    stale = _lease(app, "paused-worker")
    assert app.broker.queues.release(stale, "lost") == "queued"  # a reaper declared its worker lost
    fresh = _lease(app, "other-worker")  # and another worker runs it now
    before = redis_client.hgetall(K.job("default", job.id))
    late = _outcomes(stale)[kind]
    with caplog.at_level(logging.WARNING, logger="resq.broker"):
        assert app.broker.queues.record([late], []) == (late,)  # said so: the worker counts nothing of it
    assert redis_client.hgetall(K.job("default", job.id)) == before  # nothing recorded
    assert "stale_outcome_refused" in caplog.text and job.id in caplog.text
    assert job.status() == "running" and app.broker.queues.pending_of("default", "other-worker") == [fresh]
    app.broker.queues.record([Succeeded(fresh, job.id, pack(3), 60_000, 1)], [])
    assert job.result(timeout=1) == 3
    assert job.info()["lost"] == 1


def test_a_paused_worker_that_wakes_after_its_job_ran_elsewhere_records_nothing(
    paths: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    """SIGSTOP a worker mid-job for longer than its heartbeats: a reaper gives the job back, another worker
    runs it; at SIGCONT the first one finishes too, and its late "succeeded" is refused."""
    job = paths.pausable.delay()
    proc = run_worker(APP_REF, "--heartbeat-interval", "0.5")
    [(job_id, attempt, _)] = running(redis_client)
    assert (job_id, attempt) == (job.id, 1)
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        reaper = Maintenance(paths.app, None)
        assert wait_for(reaper.reap, timeout=10, interval=0.1, message="the paused worker's lease reaped") == 1
        assert testing.drain(paths.app, ["default"]) == 1
        assert job.result(timeout=5) == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    wait_for(lambda: "stale_outcome_refused" in read_log(proc), timeout=10, message="the late outcome refused")
    assert job.result(timeout=1) == "ok"
    events = [e["event"] for e in job.info()["history"]]
    assert events.count("succeeded") == 1, events
    assert job.info()["lost"] == 1


def test_a_child_whose_supervisor_dies_finishes_its_job_and_records_it(
    paths: ModuleType, run_worker: RunWorker, redis_client: redis.Redis
) -> None:
    """SIGKILL of the supervisor alone: its child is told to stop (the kernel's parent-death signal),
    finishes the job in hand and records it; nothing is reported per job down a pipe any more, so there
    is no broken pipe to crash on (issue 11: the job ran again 11 s later, as a worker loss)."""
    job = paths.pausable.delay()
    proc = run_worker(APP_REF)
    [(job_id, attempt, child_pid)] = running(redis_client)
    assert (job_id, attempt) == (job.id, 1) and child_pid != proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    assert job.result(timeout=15) == "late", read_log(proc)
    wait_for(lambda: not os.path.exists(f"/proc/{child_pid}"), timeout=10, message="the child exits")
    info = job.info()
    assert (info["attempts"], info["lost"]) == (1, 0), info
    assert "Traceback" not in read_log(proc) and "BrokenPipe" not in read_log(proc)
