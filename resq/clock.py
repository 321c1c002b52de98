"""Time as resq stores it: integer milliseconds since the Unix epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from resq.errors import ConfigError

__all__ = ["due_time_ms", "from_ms", "now_ms", "to_ms", "to_seconds"]


def now_ms() -> int:
    """The current wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_ms(seconds: float) -> int:
    """Seconds to whole milliseconds (rounded up, so a delay is never shortened)."""
    return int(-(-seconds * 1000 // 1))


def from_ms(ms: int) -> datetime:
    """Milliseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_seconds(value: float | int | timedelta) -> float:
    """Seconds from a number or a ``timedelta``."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected seconds (a number) or a timedelta, got {value!r}")
    return float(value)


def due_time_ms(delay: float | timedelta | None, at: datetime | None) -> int:
    """When a job is due, in ms since the epoch, from a delay or an aware datetime (0: now).

    Raises:
        ConfigError: both given, a naive or non-datetime ``at``, or a negative delay.
    """
    if delay is not None and at is not None:
        raise ConfigError("give either delay or at, not both")
    if at is not None:
        if not isinstance(at, datetime):
            raise ConfigError(f"at must be a datetime, got {at!r}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ConfigError(
                f"enqueue_at needs a timezone-aware datetime, got naive {at!r}: "
                "use e.g. datetime(..., tzinfo=timezone.utc)"
            )
        return to_ms(at.timestamp())  # rounded up: a job never becomes due before `at`
    if delay is not None:
        seconds = to_seconds(delay)
        if seconds < 0:
            raise ConfigError(f"delay must not be negative, got {delay!r}")
        return now_ms() + to_ms(seconds) if seconds > 0 else 0
    return 0
