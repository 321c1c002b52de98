"""Redis SIGKILLed and restarted (``appendonly yes``, ``appendfsync everysec``) while producers enqueue and
workers run: both reconnect by themselves, and every job acknowledged to its producer more than 1 s before
the kill completes (``everysec`` may lose the last second, on a crash of the machine)."""

from __future__ import annotations

import time
from collections.abc import Callable

from resq import Resq
from tests.chaos.harness import (
    CHAOS,
    Ledger,
    Procs,
    Producer,
    Row,
    first_after,
    size,
    tally,
    wait_done,
    write_row,
)
from tests.redis_server import RedisServer

pytestmark = CHAOS

RATE = size(150.0, 400.0)
DURATION_S = size(2.5, 50.0)
KILLS = size(1, 3)
HEARTBEAT_S = size(0.5, None)
#: ``appendfsync everysec``: what was acknowledged within the last second may be lost on a crash.
WINDOW_S = 1.0


def test_redis_sigkilled_and_restarted_from_its_aof_loses_no_acknowledged_job(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory("--appendonly", "yes", "--appendfsync", "everysec")
    url, app = server.url(0), app_for(server.url(0))
    workers, kids = procs.ready_workers(url, 2, HEARTBEAT_S)
    began = time.time()
    producer = procs.track(Producer(url, int(RATE * DURATION_S), rate=RATE, chunk=10, ms=1.0))
    producer.start()
    faults: list[tuple[float, float]] = []  # (killed at, answering again at)
    for k in range(KILLS):
        # the kills evenly spaced over the run, each after at least a second of traffic
        time.sleep(max(0.0, began + DURATION_S * (k + 1) / (KILLS + 1) - time.time()))
        server.kill()
        killed = time.time()
        server.restart()  # same port, same directory: it loads its AOF
        faults.append((killed, time.time()))
    producer.join()

    def at_risk(at: float) -> bool:
        return any(killed - WINDOW_S < at <= killed for killed, _ in faults)

    required = producer.ids(lambda at: not at_risk(at))
    risky = producer.ids(at_risk)
    done = wait_done(app, ledger, required + risky, timeout=size(40.0, 180.0))
    lost = {job_id: status for job_id, status in done.missing.items() if job_id in set(required)}
    counts = tally(ledger, required + risky, done.missing)
    times = ledger.completions()
    resumed = [first_after(times, back) for _, back in faults]
    row = Row(
        scenario="tests/chaos/test_redis_restart.py::"
        "test_redis_sigkilled_and_restarted_from_its_aof_loses_no_acknowledged_job",
        fault=f"Redis SIGKILL + restart from its AOF (everysec), {KILLS}× during the run",
        jobs_in=len(required) + len(risky),
        completed=counts.completed,
        reruns=counts.reruns,
        lost=len(lost),
        recover_s=max((r for r in resumed if r is not None), default=None),
        recover="restart → first job done, worst restart",
        wall_s=round(done.finished_at - began, 1),
        notes={
            "restart_s": [round(back - killed, 2) for killed, back in faults],
            "acknowledged_in_the_last_second": len(risky),
            "of_those_lost": len(done.missing) - len(lost),
            "producer_errors": len(producer.errors),
        },
    )
    write_row(row)
    assert lost == {}, f"{len(lost)} acknowledged jobs did not complete: {list(lost.items())[:10]}"
    for worker in workers:  # no process died: the same supervisors and children serve on
        assert worker.running() and worker.children() == kids[worker.pid], worker.log()[-3000:]
    assert None not in resumed, "no job completed after a restart"
