"""``Scheduler.tick`` with an injected clock, against a real Redis: one pass, what it did, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from resq import Resq
from resq.broker.keys import Keys
from resq.codec import unpack
from resq.errors import ConfigError
from resq_scheduler import PeriodicEntry, Scheduler, TickReport, parse_spec
from resq_scheduler.scheduler import tick_job_id
from resq_scheduler.store import Store
from tests.helpers import stored_envelope

K = Keys("resq")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, on a whole minute


@pytest.fixture
def app(redis_url: str) -> Iterator[Resq]:
    app = Resq(redis_url)

    @app.task(name="t.work")
    def work(*args: Any, **kwargs: Any) -> None: ...

    yield app
    app.broker.close()


def queued_ids(client: redis.Redis, queue: str = "default") -> list[str]:
    return [fields[b"id"].decode() for _, fields in client.xrange(K.queue(queue))]


def test_tick_fires_once_per_tick(app: Resq, redis_client: redis.Redis) -> None:
    app.add_periodic("t.work", every=60, name="minutely", args=(1,), kwargs={"k": "v"})
    scheduler = Scheduler(app)

    first = scheduler.tick(T0)
    assert first.fired == [("minutely", T0)]
    assert first.next_wakeup == T0 + timedelta(minutes=1)
    assert scheduler.tick(T0 + timedelta(seconds=30)).fired == []  # same tick: nothing new
    assert scheduler.tick(T0 + timedelta(minutes=1)).fired == [("minutely", T0 + timedelta(minutes=1))]

    t0_ms = int(T0.timestamp() * 1000)
    assert queued_ids(redis_client) == [tick_job_id("minutely", t0_ms), tick_job_id("minutely", t0_ms + 60_000)]
    envelope = unpack(stored_envelope(redis_client, "default", tick_job_id("minutely", t0_ms)))
    assert (envelope["task"], envelope["args"], envelope["kwargs"]) == ("t.work", [1], {"k": "v"})


def test_a_new_entry_seen_between_ticks_starts_at_its_next_tick(app: Resq) -> None:
    app.add_periodic("t.work", every=1, name="fast")
    scheduler = Scheduler(app)
    assert scheduler.tick(T0 + timedelta(milliseconds=300)).fired == []  # late start-up: baseline only
    assert Store(app).state().last["fast"] == int(T0.timestamp() * 1000)
    late_wake = T0 + timedelta(seconds=1, milliseconds=40)
    assert scheduler.tick(late_wake).fired == [("fast", T0 + timedelta(seconds=1))]


def test_skip_treats_a_tick_late_by_over_a_quarter_period_as_missed(app: Resq) -> None:
    app.add_periodic("t.work", every=1, name="fast", misfire="skip")
    scheduler = Scheduler(app)
    scheduler.tick(T0)
    assert scheduler.tick(T0 + timedelta(seconds=1, milliseconds=200)).fired == [("fast", T0 + timedelta(seconds=1))]
    assert scheduler.tick(T0 + timedelta(seconds=2, milliseconds=600)).fired == []
    assert scheduler.tick(T0 + timedelta(seconds=3)).fired == [("fast", T0 + timedelta(seconds=3))]


def test_two_schedulers_at_the_same_instant_fire_once(app: Resq, redis_client: redis.Redis) -> None:
    app.add_periodic("t.work", every=10, name="e10")
    one, two = Scheduler(app), Scheduler(Resq(app.settings.url))
    two.app.tasks.update(app.tasks)
    reports = [one.tick(T0), two.tick(T0), two.tick(T0), one.tick(T0)]
    assert sum(len(r.fired) for r in reports) == 1
    assert len(queued_ids(redis_client)) == 1


def test_a_scheduler_killed_between_enqueue_and_cas_loses_nothing_and_duplicates_nothing(
    app: Resq, redis_client: redis.Redis
) -> None:
    app.add_periodic("t.work", every=10, name="e10")
    scheduler = Scheduler(app)
    scheduler.tick(T0)
    # Simulate the dead scheduler's half-done tick T0+10: the job went in, the last tick did not move.
    tick_ms = int((T0 + timedelta(seconds=10)).timestamp() * 1000)
    assert app.broker.queues.enqueue("default", tick_job_id("e10", tick_ms), "t.work", b"\x80", if_absent=True)[1]
    report = scheduler.tick(T0 + timedelta(seconds=10))
    assert report.fired == []
    assert report.skipped == [("e10", T0 + timedelta(seconds=10), "fired elsewhere")]
    assert Store(app).state().last["e10"] == tick_ms
    assert len(queued_ids(redis_client)) == 2


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("skip", []),
        ("once", [T0 + timedelta(minutes=10)]),
        ("all", [T0 + timedelta(minutes=m) for m in range(1, 11)]),
    ],
)
def test_misfire_policy_after_downtime(app: Resq, policy: str, expected: list[datetime]) -> None:
    app.add_periodic("t.work", every=60, name="m", misfire=policy)
    scheduler = Scheduler(app)
    assert scheduler.tick(T0).fired == [("m", T0)]
    # Ten minutes and a half of downtime: ticks 12:01 .. 12:10 were missed.
    report = scheduler.tick(T0 + timedelta(minutes=10, seconds=30))
    assert report.fired == [("m", tick) for tick in expected]
    assert scheduler.tick(T0 + timedelta(minutes=10, seconds=31)).fired == []


def test_skip_still_fires_the_on_time_tick(app: Resq) -> None:
    app.add_periodic("t.work", every=60, name="m", misfire="skip")
    scheduler = Scheduler(app)
    scheduler.tick(T0)
    report = scheduler.tick(T0 + timedelta(minutes=10, milliseconds=200))
    assert report.fired == [("m", T0 + timedelta(minutes=10))]


def test_unique_skips_while_the_previous_run_is_queued(app: Resq, redis_client: redis.Redis) -> None:
    app.add_periodic("t.work", every=60, name="u", unique=True)
    scheduler = Scheduler(app)
    assert scheduler.tick(T0).fired == [("u", T0)]
    report = scheduler.tick(T0 + timedelta(minutes=1))
    assert report.fired == []
    assert report.skipped == [("u", T0 + timedelta(minutes=1), "unique")]
    # The queued run finishes (here: cancelled); the next tick fires again, without catching up.
    first_id = tick_job_id("u", int(T0.timestamp() * 1000))
    assert app.job(first_id).cancel() == "cancelled"
    assert scheduler.tick(T0 + timedelta(minutes=2)).fired == [("u", T0 + timedelta(minutes=2))]
    assert redis_client.get(K.unique_lock("u")) == tick_job_id("u", int(T0.timestamp() * 1000) + 120_000).encode()


def test_pause_skips_ticks_and_resume_does_not_catch_up(app: Resq, redis_client: redis.Redis) -> None:
    app.add_periodic("t.work", every=60, name="p", misfire="all")
    scheduler, store = Scheduler(app), Store(app)
    scheduler.tick(T0)
    assert store.set_paused("p", True)
    paused = scheduler.tick(T0 + timedelta(minutes=3))
    assert paused.fired == []
    assert paused.skipped == [("p", T0 + timedelta(minutes=3), "paused")]
    assert store.set_paused("p", False)
    assert scheduler.tick(T0 + timedelta(minutes=3, seconds=5)).fired == []
    assert scheduler.tick(T0 + timedelta(minutes=4)).fired == [("p", T0 + timedelta(minutes=4))]
    assert len(queued_ids(redis_client)) == 2


def test_add_periodic_persists_across_apps(app: Resq, redis_client: redis.Redis) -> None:
    entry = app.add_periodic("t.work", cron="*/5 * * * *", tz="Europe/Paris", name="persisted", kwargs={"a": 1})
    assert app.periodic_entries["persisted"] == entry
    assert unpack(redis_client.hget(K.cron, "persisted"))["spec"] == {"cron": "*/5 * * * *", "tz": "Europe/Paris"}

    fresh = Resq(app.settings.url)  # a restarted process: same task, no add_periodic call

    @fresh.task(name="t.work")
    def work() -> None: ...

    scheduler = Scheduler(fresh)
    assert scheduler.all_entries()["persisted"] == entry
    assert scheduler.tick(T0).fired == [("persisted", T0)]


def test_a_persisted_entry_for_an_unknown_task_is_left_to_other_schedulers(app: Resq) -> None:
    app.add_periodic("t.work", every=60, name="elsewhere")
    bare = Scheduler(Resq(app.settings.url))
    report = bare.tick(T0)
    assert (report.fired, report.skipped) == ([], [("elsewhere", T0, "unknown task")])
    assert Scheduler(app).tick(T0).fired == [("elsewhere", T0)]  # the tick was not consumed


def test_disabled_entries_never_fire(app: Resq) -> None:
    app.add_periodic("t.work", every=60, name="off", enabled=False)
    report = Scheduler(app).tick(T0)
    assert (report.fired, report.skipped, report.next_wakeup) == ([], [], None)


@pytest.mark.parametrize(
    "options",
    [
        {"cron": "61 * * * *"},
        {"cron": "* * *"},
        {"cron": "0 3 * * *", "tz": "Mars/Olympus_Mons"},
        {"every": 0},
        {"every": 10, "tz": "UTC"},
        {"cron": "0 3 * * *", "every": 10},
        {},
        {"every": 10, "misfire": "sometimes"},
        {"every": 10, "queue": "bad:queue"},
        {"every": 10, "args": "not-a-tuple"},
        {"every": 10, "kwargs": {"x": object()}},
    ],
)
def test_invalid_periodic_fails_at_decoration(app: Resq, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):

        @app.periodic(**options)
        def job() -> None: ...

    with pytest.raises(ConfigError):
        app.add_periodic("t.work", **options)
    assert app.periodic_entries == {}


def test_bare_periodic_and_unknown_tasks_fail(app: Resq) -> None:
    with pytest.raises(ConfigError, match="exactly one of cron= and every="):

        @app.periodic
        def job() -> None: ...

    with pytest.raises(ConfigError, match="unknown task"):
        app.add_periodic("t.nope", every=10)
    entry = PeriodicEntry(name="x", task="t.nope", spec=parse_spec(every=10))
    with pytest.raises(ConfigError, match="unknown task"):
        Scheduler(app, entries=[entry])


def test_periodic_decorator_registers_task_and_entry(app: Resq) -> None:
    @app.periodic(cron="0 9 * * 1-5", tz="Europe/Paris", queue="reports", unique=True, retries=2)
    def weekday_report() -> str:
        return "ok"

    name = weekday_report.name
    assert app.tasks[name] is weekday_report
    assert weekday_report() == "ok"
    assert (weekday_report.queue, weekday_report.options.retries) == ("reports", 2)
    entry = app.periodic_entries[name]
    assert (entry.task, entry.queue, entry.unique, entry.misfire) == (name, "reports", True, "once")
    monday_9_paris = datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    report = Scheduler(app).tick(monday_9_paris)
    assert report.fired == [(name, monday_9_paris.astimezone(UTC))]


def test_schedule_file_entries_fire(app: Resq, tmp_path: Path, redis_client: redis.Redis) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(
        '[nightly]\ntask = "t.work"\ncron = "0 3 * * *"\ntz = "Europe/Paris"\nargs = [1]\nqueue = "low"\n\n'
        '[often]\ntask = "t.work"\nevery = 30\n\n'
        '[off]\ntask = "t.work"\nevery = 30\nenabled = false\n',
        encoding="utf-8",
    )
    scheduler = Scheduler(app, schedule_file=path)
    assert sorted(scheduler.entries) == ["nightly", "off", "often"]
    three_paris = datetime(2026, 1, 6, 3, 0, tzinfo=ZoneInfo("Europe/Paris"))
    report = scheduler.tick(three_paris)
    assert report.fired == [("nightly", three_paris.astimezone(UTC)), ("often", three_paris.astimezone(UTC))]
    assert len(queued_ids(redis_client, "low")) == 1

    path.write_text('[x]\ntask = "t.unknown"\nevery = 30\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown task"):
        Scheduler(app, schedule_file=path)


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
def test_dst_days_fire_once_with_an_injected_clock(app: Resq, day: str) -> None:
    app.add_periodic("t.work", cron="30 2 * * *", tz="Europe/Paris", name="dst")
    scheduler = Scheduler(app)
    start = datetime.fromisoformat(f"{day}T00:00:00+00:00") - timedelta(hours=4)
    fires = []
    for step in range(0, 8 * 60, 5):  # every 5 minutes through the transition night
        fires += scheduler.tick(start + timedelta(minutes=step)).fired
    assert len(fires) == 1
    local = fires[0][1].astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == ((3, 0) if day.endswith("03-29") else (2, 30))


def test_promotes_due_jobs_only_and_reports_the_next_due_time(app: Resq, redis_client: redis.Redis) -> None:
    task = app.tasks["t.work"]
    now = datetime.now(UTC)
    soon = task.enqueue_at(now + timedelta(seconds=30))
    later = task.enqueue_at(now + timedelta(minutes=5))
    scheduler = Scheduler(app)
    before = scheduler.tick(now)
    assert before.promoted == 0
    assert before.next_wakeup == datetime.fromtimestamp(
        int(redis_client.zscore(K.scheduled("default"), soon.id)) / 1000, UTC
    )
    after = scheduler.tick(now + timedelta(seconds=31))
    assert after.promoted == 1
    assert (soon.status(), later.status()) == ("queued", "scheduled")


def test_scheduler_tick_hook_receives_the_report(app: Resq) -> None:
    seen: list[tuple[Scheduler, TickReport]] = []
    app.on("scheduler_tick")(lambda scheduler, report: seen.append((scheduler, report)))
    scheduler = Scheduler(app)
    report = scheduler.tick(T0)
    assert seen == [(scheduler, report)]
