"""Flow control of one job, fixed at enqueue: its priority, the concurrency and rate limits it counts
against, and its expiry. Plain data, decided in Lua where it matters (``resq/broker/lua/start.lua``).

A job's :class:`Flow` travels with it: in its job hash (fields ``priority`` and ``flow``) and in every
stream entry made for it (field ``flow``), so the worker that leases the entry names every key the start
script touches without a read first (each script declares its keys; see ``docs/flow-control.md``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from resq.codec import pack, unpack
from resq.errors import ConfigError, DecodeError

__all__ = ["GROUP_LEVEL", "MAX_PRIORITY", "Flow", "limit_key", "parse_rate", "validate_group", "validate_priority"]

#: Priorities run from 0 (the default) to this; a higher one runs first within its queue.
MAX_PRIORITY = 9
#: The level (in a queue's levels set and its streams) of the jobs of groups, served after its priorities.
GROUP_LEVEL = MAX_PRIORITY + 1
#: The longest concurrency or rate key (the part a key function returns), in characters.
MAX_KEY_CHARS = 200
#: Units of a rate limit's window, in ms.
RATE_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


def validate_priority(value: Any, where: str = "priority") -> int:
    """``value`` as a priority (0 to ``MAX_PRIORITY``).

    Raises:
        ConfigError: not an integer in range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY:
        raise ConfigError(f"{where} must be an integer from 0 to {MAX_PRIORITY} (higher runs first), got {value!r}")
    return value


def validate_group(value: Any) -> str:
    """``value`` as a group name: text of 1 to ``MAX_KEY_CHARS`` characters.

    Raises:
        ConfigError: anything else.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_CHARS:
        raise ConfigError(f"group must be a non-empty string of {MAX_KEY_CHARS} characters at most, got {value!r}")
    return value


def parse_rate(text: Any) -> tuple[int, int]:
    """A rate limit such as ``"100/m"``, ``"10/s"`` or ``"5/10s"``: ``(starts, window in ms)``.

    Raises:
        ConfigError: any other spelling (the message shows the accepted ones).
    """
    found = _RATE.match(text) if isinstance(text, str) else None
    starts = int(found.group(1)) if found else 0
    if not found or starts < 1:
        raise ConfigError(f"rate_limit must look like '100/m' (starts per s, m, h or d, or per '10s'), got {text!r}")
    return starts, int(found.group(2) or 1) * RATE_UNITS_MS[found.group(3)]


def limit_key(task: str, fn: Any, arguments: dict[str, Any], what: str) -> str:
    """The key a job of ``task`` counts against: the task's name, then ``:`` and what ``fn`` returns for
    the job's arguments, passed by name (when the task has a key function): ``lambda user_id, **_:
    user_id`` picks one argument however the call passed it.

    Raises:
        ConfigError: the key function failed or returned an empty or overlong key (nothing is enqueued).
    """
    if fn is None:
        return task
    try:
        value = fn(**arguments)
    except Exception as exc:
        raise ConfigError(f"{what} of {task} failed for these arguments: {type(exc).__name__}: {exc}") from exc
    key = str(value)
    if not key or len(key) > MAX_KEY_CHARS or value is None:
        raise ConfigError(
            f"{what} of {task} must return a non-empty key of {MAX_KEY_CHARS} characters at most, got {value!r}"
        )
    return f"{task}:{key}"


@dataclass(frozen=True)
class Flow:
    """What a job counts against, and until when it may start."""

    #: 0 to ``MAX_PRIORITY``; higher runs first within its queue
    priority: int = 0
    #: the concurrency key and how many of its jobs may run at once (None: no limit)
    concurrency_key: str | None = None
    concurrency: int = 0
    #: the rate key, how many starts its window allows, and the window (ms) (None: no limit)
    rate_key: str | None = None
    rate: int = 0
    rate_window_ms: int = 0
    #: when the job expires if not started by then (ms since the epoch; 0: never)
    expires_ms: int = 0
    #: the group it belongs to (fair queuing between the groups of a queue; None: no group)
    group: str | None = None

    @property
    def gated(self) -> bool:
        """Whether the start script must look at a limit or an expiry (else it runs as before)."""
        return self.concurrency_key is not None or self.rate_key is not None or self.expires_ms > 0

    def packed(self) -> bytes:
        """The form kept in the job hash and in stream entries (b"" when nothing is gated)."""
        if not self.gated and self.group is None:
            return b""
        fields: dict[str, Any] = {}
        if self.group is not None:
            fields["g"] = self.group
        if self.concurrency_key is not None:
            fields["c"] = [self.concurrency_key, self.concurrency]
        if self.rate_key is not None:
            fields["r"] = [self.rate_key, self.rate, self.rate_window_ms]
        if self.expires_ms:
            fields["x"] = self.expires_ms
        return pack(fields)

    @classmethod
    def unpacked(cls, raw: bytes | None) -> Flow:
        """The flow of a stream entry's ``flow`` field (no flow for b"", None or an unreadable value: the
        job then starts as an ungated one)."""
        if not raw:
            return NO_FLOW
        try:
            fields = unpack(raw)
            concurrency = fields.get("c") or [None, 0]
            rate = fields.get("r") or [None, 0, 0]
            return cls(
                concurrency_key=concurrency[0],
                concurrency=int(concurrency[1]),
                rate_key=rate[0],
                rate=int(rate[1]),
                rate_window_ms=int(rate[2]),
                expires_ms=int(fields.get("x") or 0),
                group=fields.get("g"),
            )
        except (DecodeError, AttributeError, TypeError, ValueError, IndexError):
            return NO_FLOW


#: The flow of a job with no priority, no limit and no expiry.
NO_FLOW = Flow()


def expiry_ms(created_ms: int, expires_in_s: float | None, expires_at_ms: int | None) -> int:
    """When a job created at ``created_ms`` expires: ``expires_at_ms``, or ``expires_in_s`` after its
    creation (0: never)."""
    if expires_at_ms:
        return expires_at_ms
    if expires_in_s is None or not math.isfinite(expires_in_s):
        return 0
    return created_ms + int(expires_in_s * 1000)
