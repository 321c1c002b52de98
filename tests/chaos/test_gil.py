"""A task that holds the GIL in one C call for longer than the recovery bound (5 heartbeat intervals): its
worker is not declared lost, since heartbeats come from the supervisor, a process of its own. (The same
property, at 0.5 s heartbeats, is in tests/integration/test_worker_outages.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable

from resq import Resq
from tests.chaos.harness import (
    CHAOS,
    Ledger,
    Procs,
    Row,
    heartbeat_args,
    size,
    tally,
    wait_done,
    write_row,
)
from tests.redis_server import RedisServer

pytestmark = CHAOS

HEARTBEAT_S = size(0.3, None)
INTERVAL_S = HEARTBEAT_S or 3.0
#: How long the task holds the GIL, in heartbeat intervals (more than the recovery bound's 5).
HOLD_INTERVALS = 10


def test_a_task_holding_the_gil_past_the_heartbeats_is_not_declared_lost(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory()
    url, app = server.url(0), app_for(server.url(0))
    hb = heartbeat_args(HEARTBEAT_S)
    busy = procs.worker(url, "-c", "1", *hb)
    reaper = procs.worker(url, "-c", "1", "-q", "other", *hb)  # idle: it only reaps
    procs.wait_ready(busy, 1)
    procs.wait_ready(reaper, 1)
    began = time.time()
    job = app.enqueue_many([("chaos.gil", (_range_for(HOLD_INTERVALS * INTERVAL_S),))])[0]
    done = wait_done(app, ledger, [job.id], timeout=size(60.0, 300.0))
    info = job.info()
    counts = tally(ledger, [job.id], done.missing)
    held = (info["duration_ms"] or 0) / 1000
    row = Row(
        scenario="tests/chaos/test_gil.py::test_a_task_holding_the_gil_past_the_heartbeats_is_not_declared_lost",
        fault=f"a task holding the GIL for {held:.1f} s ({held / INTERVAL_S:.0f} heartbeat intervals)",
        jobs_in=1,
        completed=counts.completed,
        reruns=counts.reruns,
        lost=len(done.missing) + info["lost"],
        recover_s=None,
        recover="no fault to recover from",
        wall_s=round(done.finished_at - began, 1),
        notes={"heartbeat_s": INTERVAL_S, "held_s": held, "attempts": info["attempts"], "worker_losses": info["lost"]},
    )
    write_row(row)
    assert done.missing == {}
    assert held > 4 * INTERVAL_S, f"the task held the GIL {held:.1f} s only: make N larger"
    assert (info["attempts"], info["lost"], counts.reruns) == (1, 0, 0), info
    assert "lease_released" not in busy.log() + reaper.log()


def _range_for(seconds: float) -> int:
    """How large a ``sum(range(n))`` takes about ``seconds`` here (the fastest of 3 runs over 3 million)."""
    fastest = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        sum(range(3_000_000))
        fastest = min(fastest, time.perf_counter() - began)
    return int(3_000_000 * seconds / max(fastest, 1e-6))
