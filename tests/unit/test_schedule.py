"""Periodic entries and the TOML schedule file (no Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from resq.errors import ConfigError
from resq_scheduler import CronSpec, EverySpec, PeriodicEntry, load_schedule_file

SCHEDULE = """
[refresh_cache]
task = "myapp.tasks.refresh"
cron = "*/5 * * * *"
tz = "Europe/Paris"
args = [1, 2]
kwargs = { full = true }
queue = "low"
misfire = "all"
unique = true
enabled = false

[heartbeat]
task = "myapp.tasks.ping"
every = 30
"""

KNOWN = {"myapp.tasks.refresh", "myapp.tasks.ping"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedule.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_schedule_file(tmp_path: Path) -> None:
    entries = load_schedule_file(write(tmp_path, SCHEDULE), known_task=KNOWN.__contains__)
    assert entries == [
        PeriodicEntry(
            name="refresh_cache",
            task="myapp.tasks.refresh",
            spec=CronSpec("*/5 * * * *", "Europe/Paris"),
            args=(1, 2),
            kwargs={"full": True},
            queue="low",
            misfire="all",
            unique=True,
            enabled=False,
        ),
        PeriodicEntry(name="heartbeat", task="myapp.tasks.ping", spec=EverySpec(30)),
    ]
    heartbeat = entries[1]
    defaults = (heartbeat.misfire, heartbeat.unique, heartbeat.enabled, heartbeat.queue)
    assert defaults == ("once", False, True, None)


def test_unknown_key_gets_a_did_you_mean_hint(tmp_path: Path) -> None:
    path = write(tmp_path, '[nightly]\ntask = "t"\ncron = "0 3 * * *"\nmisfires = "all"\n')
    with pytest.raises(ConfigError, match=r"'nightly'.*unknown key 'misfires'.*did you mean 'misfire'"):
        load_schedule_file(path)


def test_unknown_task_names_entry_and_task(tmp_path: Path) -> None:
    path = write(tmp_path, SCHEDULE.replace("myapp.tasks.ping", "myapp.tasks.pong"))
    with pytest.raises(ConfigError, match=r"'heartbeat'.*unknown task 'myapp.tasks.pong'"):
        load_schedule_file(path, known_task=KNOWN.__contains__)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[broken\ntask = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_schedule_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_schedule_file(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('cron = "* * * * *"', "missing required key 'task'"),
        ('task = "t"', "exactly one of cron= and every="),
        ('task = "t"\ncron = "* * * * *"\nevery = 5', "exactly one of cron= and every="),
        ('task = "t"\ncron = "99 * * * *"', "invalid cron expression '99 \\* \\* \\* \\*'"),
        ('task = "t"\ncron = "* * * * *"\ntz = "Nowhere/Land"', "Nowhere/Land"),
        ('task = "t"\nevery = 5\ntz = "UTC"', "tz= only applies"),
        ('task = "t"\nevery = true', "every must be a number"),
        ('task = "t"\nevery = 0', "positive"),
        ('task = "t"\nevery = 5\nmisfire = "never"', "unknown misfire policy 'never'"),
        ('task = "t"\nevery = 5\nargs = 3', "args must be an array"),
        ('task = "t"\nevery = 5\nunique = "yes"', "unique must be true or false"),
    ],
)
def test_invalid_entries_name_the_entry(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, f"[job]\n{body}\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_schedule_file(path)
    assert "'job'" in str(info.value)


def test_top_level_value_is_not_an_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        load_schedule_file(write(tmp_path, 'task = "t"\n'))


@pytest.mark.parametrize(
    "entry",
    [
        PeriodicEntry(
            name="refresh",
            task="myapp.tasks.refresh",
            spec=CronSpec("*/10 * * * * *", "Europe/Paris"),
            args=(1, "a", [2]),
            kwargs={"full": True},
            queue="low",
            misfire="skip",
            unique=True,
            enabled=False,
        ),
        PeriodicEntry(name="heartbeat", task="myapp.tasks.ping", spec=EverySpec(2.5)),
    ],
)
def test_to_dict_from_dict_round_trip(entry: PeriodicEntry) -> None:
    data = entry.to_dict()
    assert PeriodicEntry.from_dict(data) == entry
    # What msgpack gives back: lists instead of tuples.
    assert PeriodicEntry.from_dict({**data, "args": list(entry.args)}) == entry


def test_to_dict_is_plain() -> None:
    entry = PeriodicEntry(name="hb", task="t", spec=EverySpec(30))
    assert entry.to_dict() == {
        "name": "hb",
        "task": "t",
        "spec": {"every": 30.0},
        "args": [],
        "kwargs": {},
        "queue": None,
        "misfire": "once",
        "unique": False,
        "enabled": True,
    }
    cron = PeriodicEntry.from_dict({"name": "c", "task": "t", "spec": {"cron": "0 * * * *", "tz": "UTC"}})
    assert cron.spec == CronSpec("0 * * * *", "UTC")


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x", "task": "t"},
        {"name": "x", "task": "t", "spec": {"every": 5}, "colour": "red"},
        {"name": "x", "task": "t", "spec": {"every": 5, "hourly": True}},
    ],
)
def test_from_dict_rejects_bad_dicts(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        PeriodicEntry.from_dict(data)


def test_entry_validation() -> None:
    with pytest.raises(ConfigError, match="name"):
        PeriodicEntry(name="", task="t", spec=EverySpec(5))
    with pytest.raises(ConfigError, match="misfire"):
        PeriodicEntry(name="x", task="t", spec=EverySpec(5), misfire="twice")


def test_entries_are_hashable() -> None:
    entry = PeriodicEntry(name="x", task="t", spec=CronSpec("* * * * *"), kwargs={"a": [1]})
    assert hash(entry) == hash(PeriodicEntry(name="x", task="t", spec=CronSpec("* * * * *")))
