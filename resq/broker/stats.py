"""Counters: totals and per UTC day, by task and queue, and a duration histogram by task.

Counters are advisory: they are summed over a worker's batch and written with its last outcome, so a
crash may lose a few counts, never a job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from resq.broker.connection import Part, Pipeline, as_int, text
from resq.outcomes import Cancelled, Dead, Lost, Outcome, Retried, Succeeded

__all__ = ["COUNTERS", "DURATION_BUCKETS_MS", "Stats", "counter_names"]

#: Counters kept per day and in total (``Keys.stat``).
COUNTERS = ("processed", "failed", "retried", "dead", "cancelled")
#: Upper bounds of the job duration histogram, in milliseconds.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)


def counter_names(outcome: Outcome) -> tuple[str, ...]:
    """The counters an outcome adds to (``processed`` counts attempts that ran)."""
    if isinstance(outcome, Succeeded):
        return ("processed",)
    if isinstance(outcome, Retried):
        return ("processed", "failed", "retried")
    if isinstance(outcome, Dead):
        return ("processed", "failed", "dead") if outcome.failed_attempt else ("dead",)
    if isinstance(outcome, Lost):
        return ("processed", "failed", "dead" if outcome.final else "retried")
    if isinstance(outcome, Cancelled):
        return ("cancelled",)
    return ()


class Stats(Part):
    """Writes and reads the counters of one namespace."""

    def add(self, pipe: Pipeline, outcomes: Sequence[Outcome]) -> None:
        """Queue on ``pipe`` the counters of ``outcomes``, each counter summed first (one command per
        counter, not per job)."""
        totals: Counter[str] = Counter()
        by_task: Counter[str] = Counter()
        durations: Counter[str] = Counter()
        for outcome in outcomes:
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
