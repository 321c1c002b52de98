"""The recovery bound: a whole worker (supervisor and children, its process group) SIGKILLed while it runs
a long job; how long until another worker starts the job again. docs/reliability.md states the bound,
5 heartbeat intervals (15 s at the default 3 s): 3 of silence, up to one until a reaper's first look, one
to confirm. Full mode measures it at the default interval, short mode at 0.5 s."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from resq import Resq
from tests.chaos.harness import (
    CHAOS,
    Ledger,
    Proc,
    Procs,
    Row,
    heartbeat_args,
    sigkill_group,
    size,
    tally,
    wait_done,
    write_row,
)
from tests.helpers import wait_for
from tests.redis_server import RedisServer

pytestmark = CHAOS

HEARTBEAT_S = size(0.5, None)
INTERVAL_S = HEARTBEAT_S or 3.0
SAMPLES = size(1, 3)
#: Misses before a worker's jobs run again, in heartbeat intervals (docs/workers.md).
BOUND_INTERVALS = 5


def test_a_dead_workers_job_runs_again_within_the_recovery_bound(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory()
    url, app = server.url(0), app_for(server.url(0))
    hb = heartbeat_args(HEARTBEAT_S)
    fleet: list[Proc] = [procs.worker(url, "-c", "2", *hb) for _ in range(2)]
    for worker in fleet:
        procs.wait_ready(worker, 2)
    began = time.time()
    measured: list[float] = []
    ids: list[str] = []
    for _ in range(SAMPLES):
        job = app.enqueue_many([("chaos.long", (600.0,))])[0]  # 10 minutes on its first attempt
        ids.append(job.id)
        first = _must(wait_for(functools.partial(_start, ledger, job.id, 1), timeout=30, message="job started"))
        victim = next(w for w in fleet if w.running() and first[3] in w.children())
        sigkill_group(victim)  # the supervisor and its children at once: nobody gives the job back
        killed = time.time()
        fleet.append(procs.worker(url, "-c", "2", *hb))  # a replacement, for the next sample
        again = _must(wait_for(functools.partial(_start, ledger, job.id, 2), timeout=INTERVAL_S * 20, message="rerun"))
        measured.append(again[2] - killed)
        procs.wait_ready(fleet[-1], 2)
    done = wait_done(app, ledger, ids, timeout=30)
    infos = [app.job(job_id).info() for job_id in ids]
    row = Row(
        scenario="tests/chaos/test_recovery_bound.py::test_a_dead_workers_job_runs_again_within_the_recovery_bound",
        fault=f"a whole worker SIGKILLed (process group) mid-job, heartbeat {INTERVAL_S:g} s",
        jobs_in=len(ids),
        completed=len(ids) - len(done.missing),
        reruns=tally(ledger, ids, done.missing).reruns,  # the first run never ended: it was killed
        lost=len(done.missing),
        recover_s=max(measured),
        recover=f"kill → the job starts again (bound {BOUND_INTERVALS} × {INTERVAL_S:g} s)",
        wall_s=round(done.finished_at - began, 1),
        notes={
            "heartbeat_s": INTERVAL_S,
            "each_s": [round(m, 2) for m in measured],
            "bound_s": BOUND_INTERVALS * INTERVAL_S,
            "within_bound": all(m <= BOUND_INTERVALS * INTERVAL_S for m in measured),
        },
    )
    write_row(row)
    assert done.missing == {}, done.missing
    assert all(info["lost"] == 1 and info["attempts"] == 2 for info in infos), infos


def _start(ledger: Ledger, job_id: str, attempt: int) -> tuple[str, int, float, int] | None:
    """The ledger's record of that attempt of the job beginning, if it did."""
    return next((s for s in ledger.starts() if s[0] == job_id and s[1] == attempt), None)


def _must(start: tuple[str, int, float, int] | None) -> tuple[str, int, float, int]:
    assert start is not None
    return start
