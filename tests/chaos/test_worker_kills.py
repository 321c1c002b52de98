"""A monkey SIGKILLs a worker process (a child, or the supervisor) every few seconds while jobs flow
through ``resq worker -c 2``; a killed supervisor is replaced. Every job id completes."""

from __future__ import annotations

import time
from collections.abc import Callable

from resq import Resq
from tests.chaos.harness import (
    CHAOS,
    FULL,
    Ledger,
    Monkey,
    Proc,
    Procs,
    Producer,
    Row,
    alive,
    heartbeat_args,
    longest_pause,
    rng,
    sigkill,
    size,
    tally,
    wait_done,
    write_row,
)
from tests.helpers import wait_for
from tests.redis_server import RedisServer

pytestmark = CHAOS

JOBS = size(300, 20_000)
RATE = size(150.0, 350.0)  # jobs per second: the run lasts 2 s short, about a minute full
PERIOD_S = size(0.8, 2.0)
HEARTBEAT_S = size(0.5, None)  # full: the default (3 s)


def test_a_monkey_sigkilling_worker_processes_loses_no_job(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory()
    url, app = server.url(0), app_for(server.url(0))
    args = ("-c", "2", *heartbeat_args(HEARTBEAT_S))
    current: list[Proc] = [procs.worker(url, *args)]
    procs.wait_ready(current[0], 2)
    choose, seed = rng()
    killed = {"child": 0, "supervisor": 0}
    orphans: list[int] = []  # the children of killed supervisors: they must stop by themselves

    def act(n: int) -> str:
        worker = current[-1]
        kids = worker.children()
        # full: any process at random; short: a child first, then the supervisor, so both kinds are covered
        victim = choose.choice([worker.pid, *kids]) if FULL else kids[0] if n % 2 == 0 and kids else worker.pid
        sigkill(victim)
        if victim != worker.pid:
            killed["child"] += 1
            return f"child {victim}"
        worker.popen.wait(timeout=5)
        orphans.extend(kids)
        current.append(procs.worker(url, *args))
        killed["supervisor"] += 1
        return f"supervisor {victim}"

    began = time.time()
    producer = procs.track(Producer(url, JOBS, rate=RATE, chunk=10, ms=1.0))
    monkey = procs.track(Monkey(PERIOD_S, act, times=None if FULL else 2))
    producer.start()
    monkey.start()
    producer.join()
    if not FULL:  # a slow machine must not skip the supervisor's kill
        wait_for(lambda: len(monkey.events) >= 2, timeout=20, message="both kills")
    monkey.stop()
    ids = producer.ids()
    done = wait_done(app, ledger, ids, timeout=size(60.0, 300.0))
    wait_for(lambda: not any(alive(pid) for pid in orphans), timeout=15, message="orphaned children stopped")

    counts = tally(ledger, ids, done.missing)
    first_kill = monkey.events[0][0] if monkey.events else began
    row = Row(
        scenario="tests/chaos/test_worker_kills.py::test_a_monkey_sigkilling_worker_processes_loses_no_job",
        fault=f"SIGKILL of a worker process every {PERIOD_S:g} s ({killed['child']} children, "
        f"{killed['supervisor']} supervisors), `-c 2`",
        jobs_in=len(ids),
        completed=counts.completed,
        reruns=counts.reruns,
        lost=len(done.missing),
        recover_s=round(longest_pause(ledger.completions(), first_kill, producer.finished_at), 2),
        recover="longest pause in completions",
        wall_s=round(done.finished_at - began, 1),
        notes={"seed": seed, "heartbeat_s": HEARTBEAT_S or 3.0, "producer_errors": len(producer.errors)},
    )
    write_row(row)
    assert killed["child"] >= 1 and killed["supervisor"] >= 1, monkey.events
    assert done.missing == {}, f"{len(done.missing)} jobs did not complete: {list(done.missing.items())[:10]}"
