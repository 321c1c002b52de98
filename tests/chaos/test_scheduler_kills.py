"""Several ``resq scheduler`` processes, one SIGKILLed and replaced every second or two: no delayed job
and no cron tick is lost or fired twice. No worker serves the queue meanwhile (workers promote their own
queues too), so every promotion is a scheduler's; a burst worker runs the jobs afterwards."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable

import redis

from resq import Resq
from resq.broker.keys import Keys
from resq.clock import now_ms
from tests.apps.chaos import TICK_ENTRY
from tests.chaos.harness import (
    CHAOS,
    TIMED,
    Ledger,
    Monkey,
    Proc,
    Procs,
    Producer,
    Row,
    rng,
    sigkill,
    size,
    wait_done,
    write_row,
)
from tests.helpers import wait_for
from tests.redis_server import RedisServer

pytestmark = CHAOS

SCHEDULERS = 3
DELAYED = size(200, 5_000)
WINDOW_S = size(2.5, 60.0)  # the delayed jobs fall due over this window, while the monkey kills
PERIOD_S = size(0.7, 2.0)
K = Keys("resq")
TICK_PREFIX = f"cron:{TICK_ENTRY}:"


def test_schedulers_sigkilled_repeatedly_lose_and_double_no_delayed_job_or_tick(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory()
    url, app = server.url(0), app_for(server.url(0))
    client = redis.Redis.from_url(url)
    fleet: list[Proc] = [procs.scheduler(url) for _ in range(SCHEDULERS)]
    wait_for(lambda: all("scheduler_started" in s.log() for s in fleet), timeout=30, message="schedulers up")
    start_ms = now_ms() + 1000
    span_ms = int(WINDOW_S * 1000)
    due = {}  # job number -> due time (ms), spread evenly over the window

    def due_ms(i: int) -> int:
        due[i] = start_ms + span_ms * i // DELAYED
        return due[i]

    producer = procs.track(
        Producer(url, DELAYED, chunk=500, task="chaos.delayed", make_args=lambda i: (i,), queue="timed", due_ms=due_ms)
    )
    producer.start()
    producer.join()
    assert producer.count() == DELAYED, producer.errors
    ids = producer.ids()
    choose, seed = rng()

    def act(n: int) -> str:
        live = [s for s in fleet if s.running()]
        victim = choose.choice(live)
        sigkill(victim.pid)
        victim.popen.wait(timeout=5)
        fleet.append(procs.scheduler(url))
        return f"scheduler {victim.pid}"

    monkey = procs.track(Monkey(PERIOD_S, act))
    monkey.start()
    time.sleep(max(0.0, (start_ms + span_ms) / 1000 - time.time()) + 1.0)
    monkey.stop()
    end_ms = now_ms()
    wait_for(lambda: client.zcard(K.scheduled("timed")) == 0, timeout=30, message="every delayed job promoted")
    for proc in fleet:  # stop the ticks: what they fired is now all in the stream
        if proc.running():
            proc.popen.terminate()
    for proc in fleet:
        proc.popen.wait(timeout=15)

    # Each job (delayed or tick) entered the stream once; its entry id is the time it was moved (or fired)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(K.queue("timed"), "-", "+")  # type: ignore[assignment]
    entered = Counter(fields[b"id"].decode() for _, fields in entries)
    at_ms = {fields[b"id"].decode(): int(entry.split(b"-")[0]) for entry, fields in entries}
    ticks = sorted(int(job_id.removeprefix(TICK_PREFIX)) for job_id in entered if job_id.startswith(TICK_PREFIX))
    doubled = {job_id: n for job_id, n in entered.items() if n > 1}
    delayed_missing = [job_id for job_id in ids if job_id not in entered]
    gaps = [(a, b) for a, b in itertools.pairwise(ticks) if b - a != 1000]
    tick_ids = [f"{TICK_PREFIX}{t}" for t in ticks]

    burst = procs.worker(url, "--burst", "-q", "timed", "-c", "2", app_ref=TIMED)
    assert burst.popen.wait(timeout=120) == 0, burst.log()[-3000:]
    done = wait_done(app, ledger, ids + tick_ids, timeout=30, queue="timed")
    runs = ledger.runs_of(ids + tick_ids)
    late = [at_ms[job_id] - due[i] for i, job_id in enumerate(ids) if job_id in at_ms]
    tick_late = [at_ms[job_id] - t for job_id, t in zip(tick_ids, ticks, strict=True)]
    lost = len(delayed_missing) + sum(b - a - 1000 for a, b in gaps) // 1000 + len(done.missing)
    row = Row(
        scenario="tests/chaos/test_scheduler_kills.py::"
        "test_schedulers_sigkilled_repeatedly_lose_and_double_no_delayed_job_or_tick",
        fault=f"`resq scheduler` ×{SCHEDULERS}, one SIGKILLed and replaced every {PERIOD_S:g} s "
        f"({len(monkey.events)} kills); delayed jobs + an every-second cron entry",
        jobs_in=len(ids) + len(ticks),
        completed=len(ids) + len(ticks) - len(done.missing),
        reruns=sum(max(0, r - 1) for r in runs) + sum(n - 1 for n in doubled.values()),
        lost=lost,
        recover_s=max(late + tick_late, default=0) / 1000,
        recover="worst lateness of a promotion or tick",
        wall_s=round(done.finished_at - start_ms / 1000 + 1.0, 1),
        notes={
            "seed": seed,
            "delayed": len(ids),
            "ticks": len(ticks),
            "tick_range_s": [(ticks[0] - start_ms) / 1000, (ticks[-1] - end_ms) / 1000] if ticks else None,
            "delayed_p50_late_ms": sorted(late)[len(late) // 2] if late else None,
        },
    )
    write_row(row)
    client.close()
    assert doubled == {}, f"jobs that entered the queue twice: {list(doubled.items())[:10]}"
    assert delayed_missing == [], f"{len(delayed_missing)} delayed jobs were never promoted"
    assert gaps == [], f"ticks missing between {gaps[:5]}"
    # the ticks cover the window: the first within 2 s of the schedulers' start, the last within 2 s of the end
    assert ticks and ticks[0] <= start_ms + 1000 and ticks[-1] >= end_ms - 2000, (ticks[:3], ticks[-3:])
    assert done.missing == {}, list(done.missing.items())[:10]
    assert all(r == 1 for r in runs), Counter(runs)
    assert all(at >= 0 for at in late), "a delayed job was promoted before its due time"
