"""Cron and every-N-seconds specs, misfire policies and DST, with an injected clock (no Redis)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from resq.errors import ConfigError
from resq_scheduler import (
    CronSpec,
    EverySpec,
    Spec,
    due_ticks,
    next_fires,
    parse_spec,
    previous_at_or_before,
)

PARIS = ZoneInfo("Europe/Paris")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- EverySpec -------------------------------------------------------------------------------------


def test_every_ticks_are_aligned_on_the_epoch() -> None:
    spec = EverySpec(30)
    assert spec.next_after(utc(2026, 1, 1, 12, 0, 7)) == utc(2026, 1, 1, 12, 0, 30)
    assert spec.next_after(utc(2026, 1, 1, 12, 0, 30)) == utc(2026, 1, 1, 12, 1, 0)  # strictly after
    assert spec.previous_at_or_before(utc(2026, 1, 1, 12, 0, 30)) == utc(2026, 1, 1, 12, 0, 30)
    assert spec.previous_before(utc(2026, 1, 1, 12, 0, 30)) == utc(2026, 1, 1, 12, 0, 0)


def test_every_ignores_the_moment_s_time_zone() -> None:
    # Two schedulers in different zones agree: the same instant gives the same tick.
    moment = utc(2026, 6, 1, 10, 0, 7)
    assert EverySpec(7).next_after(moment) == EverySpec(7).next_after(moment.astimezone(PARIS))
    assert EverySpec(7).next_after(moment).tzinfo is UTC


def test_every_with_fractional_seconds() -> None:
    spec = EverySpec(0.25)
    assert spec.next_after(utc(2026, 1, 1, 0, 0, 1)) == utc(2026, 1, 1, 0, 0, 1) + timedelta(seconds=0.25)


@pytest.mark.parametrize("bad", [0, -5, float("inf"), float("nan"), True, "30"])
def test_every_rejects_bad_periods(bad: object) -> None:
    with pytest.raises(ConfigError):
        EverySpec(bad)  # type: ignore[arg-type]


# -- CronSpec --------------------------------------------------------------------------------------


def test_cron_next_after_in_a_time_zone() -> None:
    spec = CronSpec("0 9 * * *", "Europe/Paris")
    # 09:00 in Paris in January is 08:00 UTC (CET, +01:00), in July 07:00 UTC (CEST, +02:00).
    assert spec.next_after(utc(2026, 1, 10, 0, 0)) == utc(2026, 1, 10, 8, 0)
    assert spec.next_after(utc(2026, 7, 10, 0, 0)) == utc(2026, 7, 10, 7, 0)
    assert spec.next_after(utc(2026, 7, 10, 7, 0)) == utc(2026, 7, 11, 7, 0)  # strictly after
    assert spec.next_after(utc(2026, 7, 10, 0, 0)).tzinfo is UTC


def test_cron_six_fields_put_seconds_first() -> None:
    spec = CronSpec("*/10 * * * * *")
    assert spec.next_after(utc(2026, 1, 1, 0, 0, 3)) == utc(2026, 1, 1, 0, 0, 10)
    assert next_fires(spec, utc(2026, 1, 1, 0, 0, 10), 3) == [
        utc(2026, 1, 1, 0, 0, 20),
        utc(2026, 1, 1, 0, 0, 30),
        utc(2026, 1, 1, 0, 0, 40),
    ]
    # "30 0 * * * *": second 30 of minute 0 of every hour (not minute 30 of hour 0).
    assert CronSpec("30 0 * * * *").next_after(utc(2026, 1, 1, 5, 1)) == utc(2026, 1, 1, 6, 0, 30)


def test_cron_previous_at_or_before() -> None:
    spec = CronSpec("*/5 * * * *")
    assert previous_at_or_before(spec, utc(2026, 1, 1, 0, 5)) == utc(2026, 1, 1, 0, 5)
    assert previous_at_or_before(spec, utc(2026, 1, 1, 0, 5, 0) + timedelta(microseconds=1)) == utc(2026, 1, 1, 0, 5)
    assert previous_at_or_before(spec, utc(2026, 1, 1, 0, 4, 59) + timedelta(microseconds=999999)) == utc(
        2026, 1, 1, 0, 0
    )


def test_cron_aliases() -> None:
    assert CronSpec("@hourly").next_after(utc(2026, 1, 1, 0, 1)) == utc(2026, 1, 1, 1, 0)


@pytest.mark.parametrize("expr", ["61 * * * *", "* * *", "a b c d e", "*/0 * * * *", "* * * * * * *", "0 0 30 2 *"])
def test_invalid_cron_expression_names_it(expr: str) -> None:
    with pytest.raises(ConfigError, match="invalid cron expression") as info:
        CronSpec(expr)
    assert repr(expr) in str(info.value)


def test_unknown_time_zone_names_it() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        CronSpec("* * * * *", "Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown time zone"):
        CronSpec("* * * * *", "")


@pytest.mark.parametrize("spec", [CronSpec("* * * * *"), EverySpec(5)])
def test_naive_datetimes_are_refused(spec: Spec) -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        spec.next_after(datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="timezone-aware"):
        due_ticks(spec, None, datetime(2026, 1, 1))


# -- parse_spec ------------------------------------------------------------------------------------


def test_parse_spec() -> None:
    assert parse_spec(cron="*/5 * * * *", tz="Europe/Paris") == CronSpec("*/5 * * * *", "Europe/Paris")
    assert parse_spec(cron="*/5 * * * *") == CronSpec("*/5 * * * *", "UTC")
    assert parse_spec(every=30) == EverySpec(30.0)
    assert parse_spec(every=timedelta(minutes=2)) == EverySpec(120)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"cron": "* * * * *", "every": 5}, {"every": 5, "tz": "UTC"}, {"tz": "UTC"}],
)
def test_parse_spec_rejects_bad_combinations(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_spec(**kwargs)  # type: ignore[arg-type]


# -- misfire policies ------------------------------------------------------------------------------

EVERY_MINUTE = CronSpec("* * * * *")
BASE = utc(2026, 5, 1, 12, 0)


def test_never_fired_entry_fires_only_an_on_time_tick() -> None:
    assert due_ticks(EVERY_MINUTE, None, BASE) == [BASE]
    assert due_ticks(EVERY_MINUTE, None, BASE + timedelta(seconds=0.5)) == [BASE]
    assert due_ticks(EVERY_MINUTE, None, BASE + timedelta(seconds=30)) == []
    assert due_ticks(EVERY_MINUTE, None, BASE + timedelta(seconds=30), first_grace_s=60) == [BASE]


def test_nothing_due_when_the_last_tick_is_the_latest() -> None:
    assert due_ticks(EVERY_MINUTE, BASE, BASE + timedelta(seconds=59)) == []
    assert due_ticks(EVERY_MINUTE, BASE, BASE - timedelta(minutes=5)) == []  # clock went backwards


@pytest.mark.parametrize("misfire", ["skip", "once", "all"])
def test_on_time_tick_fires_under_every_policy(misfire: str) -> None:
    assert due_ticks(EVERY_MINUTE, BASE, BASE + timedelta(minutes=1), misfire) == [BASE + timedelta(minutes=1)]


def test_misfire_skip_fires_only_the_on_time_tick() -> None:
    now = BASE + timedelta(minutes=10)
    assert due_ticks(EVERY_MINUTE, BASE, now, "skip") == [now]
    assert due_ticks(EVERY_MINUTE, BASE, now + timedelta(seconds=20), "skip") == []


def test_misfire_once_fires_the_latest_missed_tick() -> None:
    now = BASE + timedelta(minutes=10, seconds=20)
    assert due_ticks(EVERY_MINUTE, BASE, now, "once") == [BASE + timedelta(minutes=10)]


def test_misfire_all_fires_each_missed_tick_oldest_first() -> None:
    now = BASE + timedelta(minutes=10, seconds=20)
    assert due_ticks(EVERY_MINUTE, BASE, now, "all") == [BASE + timedelta(minutes=m) for m in range(1, 11)]


@pytest.mark.parametrize("spec", [EVERY_MINUTE, EverySpec(60)])
def test_misfire_all_keeps_the_newest_cap_ticks(spec: Spec) -> None:
    now = BASE + timedelta(minutes=10)
    assert due_ticks(spec, BASE, now, "all", cap=3) == [BASE + timedelta(minutes=m) for m in (8, 9, 10)]


@pytest.mark.parametrize("spec", [EverySpec(1), CronSpec("* * * * * *")])
def test_long_downtime_is_bounded(spec: Spec) -> None:
    last = utc(2026, 1, 1)
    now = last + timedelta(days=31, seconds=0.5)  # ~2.7 million missed one-second ticks
    started = time.perf_counter()
    assert due_ticks(spec, last, now, "once") == [utc(2026, 2, 1)]
    ticks = due_ticks(spec, last, now, "all")
    assert len(ticks) == 100
    assert ticks[0] == utc(2026, 2, 1) - timedelta(seconds=99) and ticks[-1] == utc(2026, 2, 1)
    assert due_ticks(spec, last, now, "skip") == [utc(2026, 2, 1)]
    assert time.perf_counter() - started < 2.0


def test_bad_policy_or_cap() -> None:
    with pytest.raises(ConfigError, match="misfire policy"):
        due_ticks(EVERY_MINUTE, BASE, BASE, "sometimes")
    with pytest.raises(ConfigError, match="cap"):
        due_ticks(EVERY_MINUTE, BASE, BASE, "all", cap=0)


# -- DST, with an injected clock -------------------------------------------------------------------


def simulate(spec: Spec, start: datetime, end: datetime, misfire: str, step: timedelta) -> list[datetime]:
    """Run a scheduler loop from ``start`` to ``end``, its clock advancing by ``step``; return fires."""
    last: datetime | None = spec.previous_before(start)  # it has been running: yesterday's tick fired
    fired: list[datetime] = []
    now = start
    while now <= end:
        ticks = due_ticks(spec, last, now, misfire, first_grace_s=step.total_seconds())
        fired.extend(ticks)
        if ticks:
            last = ticks[-1]
        now += step
    return fired


def fires_per_local_day(fired: list[datetime]) -> Counter[str]:
    return Counter(tick.astimezone(PARIS).date().isoformat() for tick in fired)


DST_DAYS = [
    # spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist; croniter gives 03:00 CEST.
    ("2026-03-29", utc(2026, 3, 29, 1, 0)),
    # fall back, 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first (CEST) one fires.
    ("2026-10-25", utc(2026, 10, 25, 0, 30)),
]


@pytest.mark.parametrize("misfire", ["skip", "once", "all"])
@pytest.mark.parametrize("step_s", [60, 599])
@pytest.mark.parametrize(("day", "expected"), DST_DAYS)
def test_fixed_time_entry_fires_once_on_dst_days(day: str, expected: datetime, misfire: str, step_s: int) -> None:
    spec = CronSpec("30 2 * * *", "Europe/Paris")
    local_midnight = datetime.fromisoformat(day).replace(tzinfo=PARIS)
    start = local_midnight.astimezone(UTC) - timedelta(hours=2)
    end = start + timedelta(hours=30)
    fired = simulate(spec, start, end, misfire, timedelta(seconds=step_s))
    assert fires_per_local_day(fired)[day] == 1
    assert [tick for tick in fired if tick.astimezone(PARIS).date().isoformat() == day] == [expected]


@pytest.mark.parametrize(("day", "hours"), [("2026-03-29", 23), ("2026-10-25", 25)])
def test_wildcard_hour_entry_fires_every_real_hour_on_dst_days(day: str, hours: int) -> None:
    spec = CronSpec("0 * * * *", "Europe/Paris")
    local_midnight = datetime.fromisoformat(day).replace(tzinfo=PARIS)
    start = local_midnight.astimezone(UTC) - timedelta(minutes=30)
    fired = simulate(spec, start, start + timedelta(hours=26), "once", timedelta(seconds=60))
    assert fires_per_local_day(fired)[day] == hours


def test_fall_back_next_after_skips_the_repeated_wall_time() -> None:
    spec = CronSpec("30 2 * * *", "Europe/Paris")
    first = spec.next_after(utc(2026, 10, 24, 12, 0))
    assert first == utc(2026, 10, 25, 0, 30)
    assert spec.next_after(first) == utc(2026, 10, 26, 1, 30)
    assert spec.previous_before(utc(2026, 10, 25, 2, 0)) == first
