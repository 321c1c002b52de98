"""Counters: totals and per UTC day, by task and queue, and a duration histogram by task.

Counters are advisory: they are summed over a worker's batch and written with its last outcome, so a
crash may lose a few counts, never a job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from resq.broker.connection import Part, Pipeline, as_int, text
from resq.outcomes import Cancelled, Dead, Held, Lost, Outcome, Retried, Succeeded

__all__ = [
    "COUNTERS",
    "DURATION_BUCKETS_MS",
    "MINUTE_COUNTERS",
    "WAIT_BUCKETS_MS",
    "Stats",
    "counter_names",
    "entry_ms",
]

#: Counters kept per day and in total (``Keys.stat``).
COUNTERS = ("processed", "failed", "retried", "dead", "cancelled", "expired", "parked", "throttled", "snoozed")
#: Upper bounds of the job duration histogram, in milliseconds.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)
#: Counters also kept per minute (``Keys.stat_minutes``, two hours): the dashboard's chart of the last hour.
MINUTE_COUNTERS = ("processed", "failed")
#: Upper bounds of the histogram of how long jobs waited in their queue before a worker took them, in ms.
WAIT_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000)
#: How long the per-minute hashes are kept, in seconds.
_MINUTES_TTL_S, _WAITS_TTL_S = 2 * 3600 + 120, 3600 + 120


def entry_ms(entry: str) -> int | None:
    """The time (ms) a stream entry id says its entry was added, or None for an id that is not one."""
    head, _, _ = entry.partition("-")
    return int(head) if head.isdigit() else None


def _wait_bucket(wait_ms: int) -> str:
    return next((str(b) for b in WAIT_BUCKETS_MS if wait_ms <= b), "+Inf")


def counter_names(outcome: Outcome) -> tuple[str, ...]:
    """The counters an outcome adds to (``processed`` counts attempts that ran)."""
    if isinstance(outcome, Succeeded):
        return ("processed",)
    if isinstance(outcome, Retried):
        return ("processed", "snoozed") if outcome.snoozed else ("processed", "failed", "retried")
    if isinstance(outcome, Held):
        return (outcome.held,)
    if isinstance(outcome, Dead):
        return ("processed", "failed", "dead") if outcome.failed_attempt else ("dead",)
    if isinstance(outcome, Lost):
        return ("processed", "failed", "dead" if outcome.final else "retried")
    if isinstance(outcome, Cancelled):
        return ("cancelled",)
    return ()


def _waited_ms(outcome: Outcome) -> int | None:
    """How long the job of an outcome waited in its queue before its worker fetched it (None: unknown,
    or the attempt did not run)."""
    if isinstance(outcome, Cancelled | Held) or not outcome.delivery.fetched_ms:
        return None
    added = entry_ms(outcome.delivery.entry)
    return None if added is None else max(0, outcome.delivery.fetched_ms - added)


class Stats(Part):
    """Writes and reads the counters of one namespace."""

    def add(self, pipe: Pipeline, outcomes: Sequence[Outcome]) -> None:
        """Queue on ``pipe`` the counters of ``outcomes``, each counter summed first (one command per
        counter, not per job)."""
        totals: Counter[str] = Counter()
        by_task: Counter[str] = Counter()
        durations: Counter[str] = Counter()
        waits: Counter[str] = Counter()
        tallies: Counter[str] = Counter()
        for outcome in outcomes:
            if isinstance(outcome, Succeeded):
                tallies.update(outcome.tallies)
            names = counter_names(outcome)
            if not names:
                continue
            task = outcome.task or "?"
            totals.update(names)
            by_task.update(f"{task}|{outcome.delivery.queue}|{name}" for name in names)
            duration = getattr(outcome, "duration_ms", None)
            if duration is not None and "processed" in names:
                bucket = next((str(b) for b in DURATION_BUCKETS_MS if duration <= b), "+Inf")
                durations.update({f"{task}|{bucket}": 1, f"{task}|sum_ms": duration, f"{task}|count": 1})
            waited = _waited_ms(outcome)
            if waited is not None:
                waits[f"{outcome.delivery.queue}|{_wait_bucket(waited)}"] += 1
        today = datetime.now(UTC).date()
        keep_s = int(timedelta(days=self.settings.stats_days).total_seconds())
        k = self.keys
        for name, n in totals.items():
            pipe.incrby(k.stat(name), n)
            pipe.incrby(k.stat(name, today), n)
            pipe.expire(k.stat(name, today), keep_s)
        for name, n in by_task.items():
            pipe.hincrby(k.stat_by_task, name, n)
        for name, n in durations.items():
            pipe.hincrby(k.stat_durations, name, n)
        for key, n in tallies.items():
            pipe.incrby(key, n)
        self._add_minutes(pipe, totals, waits)

    def _add_minutes(self, pipe: Pipeline, totals: Counter[str], waits: Counter[str]) -> None:
        """The per-minute counters and wait histogram of this minute (the time of the addition: counters
        wait at most ``COUNTERS_EVERY_S`` in a worker, so a count may land in the next minute)."""
        minute = int(datetime.now(UTC).timestamp()) // 60
        per_minute = {f"{name}|{minute}": totals[name] for name in MINUTE_COUNTERS if totals[name]}
        if per_minute:
            key = self.keys.stat_minutes(minute // 60)
            for field, n in per_minute.items():
                pipe.hincrby(key, field, n)
            pipe.expire(key, _MINUTES_TTL_S)
        if waits:
            key = self.keys.stat_waits(minute)
            for field, n in waits.items():
                pipe.hincrby(key, field, n)
            pipe.expire(key, _WAITS_TTL_S)

    def per_minute(self, minutes: int = 60) -> dict[str, list[int]]:
        """Each of ``MINUTE_COUNTERS`` for each of the last ``minutes`` minutes, oldest first (this minute
        last), in one round trip."""
        now = int(datetime.now(UTC).timestamp()) // 60
        first = now - minutes + 1
        pipe = self._redis.pipeline(transaction=False)
        hours = sorted({m // 60 for m in range(first, now + 1)})
        for hour in hours:
            pipe.hgetall(self.keys.stat_minutes(hour))
        merged: dict[str, int] = {}
        for found in pipe.execute():
            merged.update({text(k): as_int(v) for k, v in found.items()})
        return {name: [merged.get(f"{name}|{m}", 0) for m in range(first, now + 1)] for name in MINUTE_COUNTERS}

    def waits(self, minutes: int = 5) -> dict[str, dict[str, int]]:
        """How long jobs waited in each queue over the last ``minutes`` minutes: ``{queue: {bucket bound ms
        or "+Inf": jobs}}`` (``WAIT_BUCKETS_MS``), in one round trip."""
        now = int(datetime.now(UTC).timestamp()) // 60
        pipe = self._redis.pipeline(transaction=False)
        for minute in range(now - minutes + 1, now + 1):
            pipe.hgetall(self.keys.stat_waits(minute))
        found: dict[str, dict[str, int]] = {}
        for rows in pipe.execute():
            for raw_key, value in rows.items():
                queue, _, bucket = text(raw_key).rpartition("|")
                per_queue = found.setdefault(queue, {})
                per_queue[bucket] = per_queue.get(bucket, 0) + as_int(value)
        return found

    def counters(self, days: Sequence[date]) -> tuple[dict[str, int], list[dict[str, int]]]:
        """The :data:`COUNTERS` in total and on each of ``days``, in one round trip."""
        k = self.keys
        names = [k.stat(name) for name in COUNTERS] + [k.stat(name, day) for day in days for name in COUNTERS]
        values = [as_int(v) for v in self._redis.mget(names)]
        n = len(COUNTERS)
        total = dict(zip(COUNTERS, values[:n], strict=True))
        per_day = [dict(zip(COUNTERS, values[n * (i + 1) : n * (i + 2)], strict=True)) for i in range(len(days))]
        return total, per_day

    def by_task(self) -> dict[tuple[str, str, str], int]:
        """Counters by ``(task, queue, counter)``."""
        found = {}
        for raw_key, value in self._redis.hgetall(self.keys.stat_by_task).items():
            parts = text(raw_key).rsplit("|", 2)
            if len(parts) == 3:
                found[(parts[0], parts[1], parts[2])] = as_int(value)
        return found

    def durations(self) -> dict[str, dict[str, int]]:
        """The duration histogram: ``{task: {bucket bound ms or "+Inf": n, "sum_ms": s, "count": c}}``."""
        found: dict[str, dict[str, int]] = {}
        for raw_key, value in self._redis.hgetall(self.keys.stat_durations).items():
            task, _, bucket = text(raw_key).rpartition("|")
            found.setdefault(task, {})[bucket] = as_int(value)
        return found
