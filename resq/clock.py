"""Time as resq stores it: integer milliseconds since the Unix epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["from_ms", "now_ms", "to_ms"]


def now_ms() -> int:
    """The current wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_ms(seconds: float) -> int:
    """Seconds to whole milliseconds (rounded up, so a delay is never shortened)."""
    return int(-(-seconds * 1000 // 1))


def from_ms(ms: int) -> datetime:
    """Milliseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
