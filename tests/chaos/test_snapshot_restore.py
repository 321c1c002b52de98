"""Redis restored from a snapshot older than the workers' latest acknowledgements (SIGKILL after ``SAVE``,
restart from that RDB while the workers keep running). A job leased before the snapshot and finished after
it comes back ``running``, pending under a live worker: the worker must notice that Redis came back with
an older state and run it again. Jobs acknowledged after the ``SAVE`` are gone with the snapshot (the
durability of that Redis configuration, not resq's): they are counted, not required."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import redis

from resq import Resq
from tests.chaos.harness import (
    CHAOS,
    Ledger,
    Procs,
    Producer,
    Row,
    size,
    statuses,
    tally,
    wait_done,
    write_row,
)
from tests.redis_server import RedisServer

pytestmark = CHAOS

RATE = size(240.0, 240.0)  # above what 4 children do of 20 ms jobs (200/s): a backlog builds
BEFORE_S = size(0.8, 10.0)  # traffic before the SAVE
AFTER_S = size(0.7, 5.0)  # traffic between the SAVE and the kill
DURATION_S = size(2.2, 25.0)
HEARTBEAT_S = size(0.5, None)


def test_redis_restored_from_an_older_snapshot_runs_again_what_it_forgot(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory()
    url, app = server.url(0), app_for(server.url(0))
    workers, kids = procs.ready_workers(url, 2, HEARTBEAT_S)
    began = time.time()
    # 20 ms jobs, so that some are running or leased at the SAVE and finish after it
    producer = procs.track(Producer(url, int(RATE * DURATION_S), rate=RATE, chunk=10, ms=20.0))
    producer.start()
    time.sleep(BEFORE_S)
    client = redis.Redis.from_url(url)
    save_began = time.time()
    client.save()
    saved = time.time()
    client.close()
    time.sleep(AFTER_S)
    server.kill()
    killed = time.time()
    server.restart()  # from the snapshot: what happened after the SAVE is forgotten
    restarted = time.time()
    in_snapshot = producer.ids(lambda at: at < save_began)
    after_save = producer.ids(lambda at: saved <= at <= killed)
    # What the restored Redis shows of the jobs of the snapshot that the ledger says completed before the kill
    last = ledger.last()
    finished = [job_id for job_id in in_snapshot if job_id in last and last[job_id][0] < killed]
    rolled_back = {k: v for k, v in statuses(app, finished).items() if v != "succeeded"}
    producer.join()
    after_restart = producer.ids(lambda at: at > restarted)
    required = in_snapshot + after_restart
    done = wait_done(app, ledger, required, timeout=size(10.0, 90.0))

    counts = tally(ledger, required, done.missing)
    last = ledger.last()
    redone = [last[job_id][0] - restarted for job_id in rolled_back if job_id not in done.missing]
    row = Row(
        scenario="tests/chaos/test_snapshot_restore.py::"
        "test_redis_restored_from_an_older_snapshot_runs_again_what_it_forgot",
        fault=f"Redis SIGKILL + restart from a `SAVE` snapshot {AFTER_S:g} s old",
        jobs_in=len(required),
        completed=counts.completed,
        reruns=counts.reruns,
        lost=len(done.missing),
        recover_s=max(redone, default=None),
        recover="restart → last rolled-back job re-run",
        wall_s=round(done.finished_at - began, 1),
        notes={
            "finished_but_rolled_back": dict(Counter(rolled_back.values())),
            "acknowledged_after_the_save_gone_with_it": len(after_save),
            "producer_errors": len(producer.errors),
        },
    )
    write_row(row)
    for worker in workers:
        assert worker.running() and worker.children() == kids[worker.pid], worker.log()[-3000:]
    assert rolled_back, "the snapshot caught no job in flight: nothing was tested"
    assert done.missing == {}, (
        f"{len(done.missing)} jobs did not complete after the restore: {Counter(done.missing.values())}, "
        f"e.g. {list(done.missing.items())[:5]}"
    )
