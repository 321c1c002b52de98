"""When periodic entries fire: cron and every-N-seconds specs, and the misfire policies.

Everything here is pure (no Redis, no clock): callers pass the moments in, which is what lets the
scheduler be tested with an injected clock.

Time zones and DST:
    A :class:`CronSpec` is evaluated by croniter on a ``zoneinfo``-aware start, so wall-clock fields
    mean local time in ``tz``. On the two DST transition days croniter behaves as follows (checked for
    ``30 2 * * *`` in Europe/Paris, 2026-03-29 and 2026-10-25):

    * spring forward (02:00 → 03:00): 02:30 does not exist; croniter moves the tick to 03:00 local
      (01:00 UTC), so a fixed-time entry fires once that day, at 03:00. Expressions with a wildcard hour
      (``30 * * * *``) simply have no tick in the missing hour.
    * fall back (03:00 → 02:00): 02:30 happens twice and croniter yields *both* instants (00:30 and
      01:30 UTC). Like Vixie cron, a spec whose hour field is fixed (no ``*``) drops the second
      occurrence, so ``30 2 * * *`` fires once, at the first 02:30 (CEST, 00:30 UTC). A spec with a
      wildcard hour keeps both, so ``0 * * * *`` fires every real hour (25 times that day).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from resq.errors import ConfigError

__all__ = [
    "DEFAULT_ALL_CAP",
    "DEFAULT_FIRST_GRACE_S",
    "MISFIRE_POLICIES",
    "CronSpec",
    "EverySpec",
    "Spec",
    "due_ticks",
    "next_fires",
    "parse_spec",
    "previous_at_or_before",
]

MISFIRE_POLICIES: tuple[str, ...] = ("skip", "once", "all")
"""What an entry does about ticks missed while no scheduler ran."""

DEFAULT_ALL_CAP = 100
"""How many missed ticks the ``all`` policy replays at most."""

DEFAULT_FIRST_GRACE_S = 1.0
"""How late (seconds) a tick may be seen and still count as fired on time."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# croniter knows these too, but normalising them here lets the DST rule below read the hour field.
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _require_aware(moment: datetime, what: str = "moment") -> None:
    """Raise ConfigError for a naive datetime: a naive moment has no defined instant."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(f"{what} must be a timezone-aware datetime, got naive {moment.isoformat()}")


def _load_zone(tz: str) -> ZoneInfo:
    """Return the ZoneInfo for ``tz``, or raise ConfigError naming it."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        # ValueError covers malformed keys such as "" or "../x", which never reach the tz database.
        raise ConfigError(f"unknown time zone {tz!r} (expected an IANA name such as 'Europe/Paris')") from exc


def _croniter_fields(expr: str) -> list[str]:
    """Split a resq cron expression into croniter's field order (seconds last).

    resq accepts 5 fields, or 6 with the seconds *first*; croniter wants the seconds last.
    """
    text = _ALIASES.get(expr.strip().lower(), expr)
    fields = text.split()
    if len(fields) == 5:
        return fields
    if len(fields) == 6:
        return [*fields[1:], fields[0]]
    raise ConfigError(
        f"invalid cron expression {expr!r}: expected 5 fields (minute hour day month weekday) "
        f"or 6 with seconds first, got {len(fields)}"
    )


@dataclass(frozen=True)
class CronSpec:
    """A cron expression evaluated in a time zone.

    Args:
        expr: 5 fields (``"*/5 * * * *"``) or 6 with the seconds first (``"*/10 * * * * *"``);
            ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and ``@yearly`` are accepted too.
        tz: the IANA time zone the fields are read in.

    Raises:
        ConfigError: the expression is invalid or never fires, or the time zone is unknown.
    """

    expr: str
    tz: str = "UTC"
    _croniter_expr: str = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _once_in_fold: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expr, str):
            raise ConfigError(f"cron expression must be a string, got {type(self.expr).__name__}")
        fields = _croniter_fields(self.expr)
        zone = _load_zone(self.tz)
        croniter_expr = " ".join(fields)
        # Frozen dataclass: derived fields are set once here and never change.
        object.__setattr__(self, "_croniter_expr", croniter_expr)
        object.__setattr__(self, "_zone", zone)
        # croniter index 1 is the hour in both 5- and 6-field forms (seconds are moved last).
        object.__setattr__(self, "_once_in_fold", "*" not in fields[1])
        self._validate()

    def _validate(self) -> None:
        """Build one iterator and take one step: catches bad fields and never-firing dates (Feb 30)."""
        try:
            croniter(self._croniter_expr, datetime(2000, 1, 1, tzinfo=self._zone)).get_next(datetime)
        except (CroniterError, ValueError, KeyError) as exc:
            raise ConfigError(f"invalid cron expression {self.expr!r}: {exc}") from exc

    def _iter(self, moment: datetime) -> croniter:
        return croniter(self._croniter_expr, moment.astimezone(self._zone))

    def _is_repeat(self, tick: datetime) -> bool:
        """Whether ``tick`` is the second occurrence of a wall-clock time on a fall-back day."""
        if not self._once_in_fold:
            return False
        local = tick.astimezone(self._zone)
        return local.fold == 1 and local.replace(fold=0).astimezone(UTC) != tick

    def next_after(self, moment: datetime) -> datetime:
        """Return the first fire time strictly after ``moment``.

        Args:
            moment: an aware datetime.

        Returns:
            An aware UTC datetime.

        Raises:
            ConfigError: ``moment`` is naive.
        """
        _require_aware(moment)
        it = self._iter(moment)
        tick = it.get_next(datetime).astimezone(UTC)
        while self._is_repeat(tick):  # at most a handful of steps: only inside the repeated hour
            tick = it.get_next(datetime).astimezone(UTC)
        return tick

    def previous_before(self, moment: datetime) -> datetime:
        """Return the last fire time strictly before ``moment``, as an aware UTC datetime."""
        _require_aware(moment)
        it = self._iter(moment)
        tick = it.get_prev(datetime).astimezone(UTC)
        while self._is_repeat(tick):
            tick = it.get_prev(datetime).astimezone(UTC)
        return tick

    def previous_at_or_before(self, moment: datetime) -> datetime:
        """Return the last fire time at or before ``moment``, as an aware UTC datetime."""
        prev = self.previous_before(moment)
        # Going back then forward does not depend on how croniter rounds sub-second starts.
        successor = self.next_after(prev)
        return successor if successor <= moment else prev


@dataclass(frozen=True)
class EverySpec:
    """Fire every ``seconds``, at whole multiples of ``seconds`` since the Unix epoch.

    Aligning on the epoch rather than on start-up means every scheduler computes the same ticks.

    Args:
        seconds: the period, > 0 (microsecond resolution).

    Raises:
        ConfigError: ``seconds`` is not a positive finite number.
    """

    seconds: float

    def __post_init__(self) -> None:
        value = self.seconds
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"every must be a number of seconds or a timedelta, got {value!r}")
        if not math.isfinite(value) or round(value * 1_000_000) < 1:
            raise ConfigError(f"every must be a positive number of seconds (>= 1 µs), got {value!r}")
        object.__setattr__(self, "seconds", float(value))

    @property
    def _step_us(self) -> int:
        return round(self.seconds * 1_000_000)

    def _tick(self, index: int) -> datetime:
        return _EPOCH + timedelta(microseconds=index * self._step_us)

    def _index_at_or_before(self, moment: datetime) -> int:
        # Integer microseconds keep the arithmetic exact, whatever the distance from the epoch.
        _require_aware(moment)
        return ((moment - _EPOCH) // _MICROSECOND) // self._step_us

    def next_after(self, moment: datetime) -> datetime:
        """Return the first tick strictly after ``moment``, as an aware UTC datetime.

        Raises:
            ConfigError: ``moment`` is naive.
        """
        return self._tick(self._index_at_or_before(moment) + 1)

    def previous_before(self, moment: datetime) -> datetime:
        """Return the last tick strictly before ``moment``, as an aware UTC datetime."""
        tick = self.previous_at_or_before(moment)
        return self._tick(self._index_at_or_before(moment) - 1) if tick == moment else tick

    def previous_at_or_before(self, moment: datetime) -> datetime:
        """Return the last tick at or before ``moment``, as an aware UTC datetime."""
        return self._tick(self._index_at_or_before(moment))


Spec = CronSpec | EverySpec
"""Either kind of schedule; both offer ``next_after``, ``previous_before`` and ``previous_at_or_before``."""


def parse_spec(cron: str | None = None, every: float | timedelta | None = None, tz: str | None = None) -> Spec:
    """Build a spec from the arguments of ``@app.periodic`` or a schedule-file entry.

    Args:
        cron: a cron expression (5 fields, or 6 with the seconds first).
        every: a period in seconds, or a ``timedelta``.
        tz: the time zone of ``cron`` (default ``"UTC"``); not allowed with ``every``.

    Returns:
        A :class:`CronSpec` or an :class:`EverySpec`.

    Raises:
        ConfigError: not exactly one of ``cron`` and ``every``, ``tz`` with ``every``, or an invalid value.
    """
    if (cron is None) == (every is None):
        raise ConfigError("give exactly one of cron= and every=")
    if every is not None:
        if tz is not None:
            raise ConfigError("tz= only applies to cron= entries (every= ticks are aligned on the epoch)")
        seconds = every.total_seconds() if isinstance(every, timedelta) else every
        return EverySpec(seconds)
    assert cron is not None  # for mypy: guaranteed by the exactly-one check
    return CronSpec(cron, "UTC" if tz is None else tz)


def previous_at_or_before(spec: Spec, moment: datetime) -> datetime:
    """Return the last tick of ``spec`` at or before ``moment``, as an aware UTC datetime."""
    return spec.previous_at_or_before(moment)


def next_fires(spec: Spec, after: datetime, count: int = 3) -> list[datetime]:
    """Return the next ``count`` fire times strictly after ``after`` (for ``resq cron list``)."""
    fires: list[datetime] = []
    moment = after
    for _ in range(count):
        moment = spec.next_after(moment)
        fires.append(moment)
    return fires


def _ticks_back(spec: Spec, newest: datetime, floor: datetime | None, limit: int) -> list[datetime]:
    """Walk back from ``newest`` (a tick) through ticks > ``floor``, at most ``limit``; oldest first."""
    ticks: list[datetime] = []
    tick = newest
    while len(ticks) < limit and (floor is None or tick > floor):
        ticks.append(tick)
        tick = spec.previous_before(tick)
    ticks.reverse()
    return ticks


def _check_policy(misfire: str, cap: int, first_grace_s: float) -> None:
    if misfire not in MISFIRE_POLICIES:
        raise ConfigError(f"unknown misfire policy {misfire!r}: expected one of {', '.join(MISFIRE_POLICIES)}")
    if cap < 1:
        raise ConfigError(f"misfire cap must be >= 1, got {cap}")
    if first_grace_s < 0:
        raise ConfigError(f"first_grace_s must be >= 0, got {first_grace_s}")


def due_ticks(
    spec: Spec,
    last_tick: datetime | None,
    now: datetime,
    misfire: str = "once",
    cap: int = DEFAULT_ALL_CAP,
    first_grace_s: float = DEFAULT_FIRST_GRACE_S,
) -> list[datetime]:
    """Return the ticks an entry should fire at ``now``, oldest first.

    The missed ticks are those ``t`` with ``last_tick < t <= now``. A tick at most ``first_grace_s`` old
    is on time, not a misfire. The work is bounded by ``cap`` steps whatever the downtime.

    Args:
        spec: the entry's schedule.
        last_tick: the last tick fired, or ``None`` if the entry never fired. A never-fired entry fires
            only the latest tick, and only if it is on time: the past before it is not replayed.
        now: the current time (aware).
        misfire: ``"skip"`` fires only the on-time ticks; ``"once"`` fires the latest missed tick once,
            standing for all of them; ``"all"`` fires each missed tick, the newest ``cap`` of them.
        cap: the most ticks ``"all"`` (and ``"skip"``) returns.
        first_grace_s: how late a tick may be and still count as on time.

    Returns:
        The ticks to fire, as aware UTC datetimes, oldest first; the last one is the new ``last_tick``.

    Raises:
        ConfigError: unknown policy, ``cap < 1``, negative grace, or a naive datetime.
    """
    _check_policy(misfire, cap, first_grace_s)
    _require_aware(now, "now")
    if last_tick is not None:
        _require_aware(last_tick, "last_tick")
    latest = spec.previous_at_or_before(now)
    if last_tick is not None and latest <= last_tick:
        return []  # nothing new (or a clock that went backwards)
    on_time = now - timedelta(seconds=first_grace_s)
    if last_tick is None:
        return [latest] if latest >= on_time else []
    if misfire == "once":
        return [latest]
    if misfire == "all":
        return _ticks_back(spec, latest, last_tick, cap)
    # skip: only the ticks still on time; the floor is whichever of last_tick and the grace edge is later.
    if latest < on_time:
        return []
    floor = max(last_tick, on_time - _MICROSECOND)
    return _ticks_back(spec, latest, floor, cap)
