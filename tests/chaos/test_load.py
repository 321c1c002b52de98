"""Load: 100,000 jobs (3,000 short) through two workers while a producer enqueues them: nothing lost, and
Redis's memory back to its baseline once the results expire (a short ``result_ttl`` here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from resq import Resq
from resq.broker.keys import Keys
from tests.chaos.harness import (
    CHAOS,
    Ledger,
    Procs,
    Producer,
    Row,
    size,
    tally,
    wait_done,
    write_row,
)
from tests.helpers import wait_for
from tests.redis_server import RedisServer

pytestmark = CHAOS

JOBS = size(3_000, 100_000)
#: What the consumers of a stream's group that joined after the baseline may add to it, in bytes.
CONSUMERS_BYTES = 2048
TTL_S = size(1.0, 10.0)
#: What ``used_memory`` may stay above its baseline once every record expired: 256 KB, or 1% of what the run
#: added at its peak. Two idle moments differ by up to ~140 KB (client buffers), and after 100,000 jobs by
#: ~300 KB that no key holds (every key is measured too, below); a job left behind costs about 1.2 KB.
#: Counters are bounded by design (a fixed set of fields; a key per day or minute that expires by itself).
TOLERANCE = 256 * 1024
PEAK_SHARE = 0.01
K = Keys("resq")


def test_a_hundred_thousand_jobs_with_a_producer_running_lose_nothing_and_memory_returns(
    procs: Procs, ledger: Ledger, redis_factory: Callable[..., RedisServer], app_for: Callable[[str], Resq]
) -> None:
    server = redis_factory()
    url, app = server.url(0), app_for(server.url(0))
    client = redis.Redis.from_url(url)
    env = {"RESQ_CHAOS_RESULT_TTL": str(TTL_S)}
    workers = [procs.worker(url, "-c", "2", env=env) for _ in range(2)]
    for worker in workers:
        procs.wait_ready(worker, 2)
    # warm up (stats keys, scripts, the stream and its group), then the baseline once its record expired
    warm = app.enqueue_many([("chaos.record", (0,)) for _ in range(10)])
    assert wait_done(app, ledger, [j.id for j in warm], timeout=30, expired_ok=True).missing == {}
    wait_for(lambda: all(client.exists(K.job("default", j.id)) == 0 for j in warm), timeout=TTL_S + 30)
    time.sleep(0.6)  # the counters' last flush (at most every 0.5 s)
    baseline, baseline_keys = _memory(client), client.dbsize()
    info_before, keys_before = client.info("memory"), _key_sizes(client)

    peak = [baseline]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.25):
            peak[0] = max(peak[0], _memory(client))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.time()
    producer = procs.track(Producer(url, JOBS, chunk=500))
    producer.start()
    producer.join()
    ids = producer.ids()
    done = wait_done(app, ledger, ids, timeout=size(60.0, 600.0), expired_ok=True)
    drained = time.time()
    sampling.set()
    sampler.join()
    dead = sum(client.zcard(K.dead(q)) for q in ("default",))
    try:
        wait_for(lambda: _left(client, set(keys_before))["count"] == 0, timeout=TTL_S + 60, message="records expired")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; keys left: {_left(client, set(keys_before))}") from None
    time.sleep(0.6)
    after = _memory(client)
    grew = {
        k: v - info_before[k]
        for k, v in client.info("memory").items()
        if isinstance(v, int) and v != info_before.get(k)
    }
    keys_grew = {k: v - keys_before.get(k, 0) for k, v in _key_sizes(client).items() if v != keys_before.get(k)}
    # counters (a fixed set of fields, and one key per day) may take a field more, and a stream a consumer
    # (a worker's child that took no warm-up job joins the group later: a few hundred bytes, once); any other
    # growth is a leftover of the jobs
    leftovers = {
        k: v
        for k, v in keys_grew.items()
        if not k.startswith("{resq}:stat:") and not (k.endswith((":queue", ":front")) and v < CONSUMERS_BYTES)
    }
    counts = tally(ledger, ids, done.missing)
    row = Row(
        scenario="tests/chaos/test_load.py::"
        "test_a_hundred_thousand_jobs_with_a_producer_running_lose_nothing_and_memory_returns",
        fault=f"load: {JOBS:,} jobs, 2 workers `-c 2` and a producer at once, result_ttl {TTL_S:g} s",
        jobs_in=len(ids),
        completed=counts.completed,
        reruns=counts.reruns,
        lost=len(done.missing) + dead,
        recover_s=None,
        recover="no fault",
        wall_s=round(drained - began, 1),
        notes={
            "jobs_per_s": round(len(ids) / (drained - began)),
            "producer_s": round(producer.finished_at - producer.started_at, 1),
            "memory_baseline": baseline,
            "memory_peak": peak[0],
            "memory_after": after,
            "memory_above_baseline": after - baseline,
            "memory_allowed_above": int(max(TOLERANCE, PEAK_SHARE * (peak[0] - baseline))),
            "keys_baseline": baseline_keys,
            "keys_after": client.dbsize(),
            "keys_whose_size_changed": keys_grew,
        },
    )
    write_row(row)
    client.close()
    assert done.missing == {} and dead == 0, list(done.missing.items())[:10]
    assert leftovers == {}, leftovers
    allowed = max(TOLERANCE, PEAK_SHARE * (peak[0] - baseline))
    assert after - baseline < allowed, (
        f"memory {after - baseline:+,} bytes above its baseline of {baseline:,}: INFO memory changed by {grew}"
    )


def _memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _key_sizes(client: redis.Redis) -> dict[str, int]:
    """Every key and its ``MEMORY USAGE`` (exact: no sampling)."""
    return {key.decode(): int(client.memory_usage(key, samples=0) or 0) for key in client.scan_iter(count=1000)}


def _left(client: redis.Redis, before: set[str]) -> dict[str, Any]:
    """The keys that were not there at the baseline, counters aside (a counter per day or minute, which
    expires on its own): how many, and a few with their type, TTL and status."""
    if client.dbsize() > len(before) + 100:  # records still there: no need to list them
        return {"count": client.dbsize() - len(before)}
    extra = [k.decode() for k in client.scan_iter(count=1000) if k.decode() not in before]
    extra = [k for k in extra if not k.startswith("{resq}:stat:")]
    sample = {
        k: (kind, client.pttl(k), client.hget(k, "status") if kind == b"hash" else None)
        for k in extra[:5]
        for kind in [client.type(k)]
    }
    return {"count": len(extra), "sample": sample}
