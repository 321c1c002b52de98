"""Backoff policies: how long to wait before attempt ``n + 1`` after attempt ``n`` failed.

Pure functions, no Redis. A policy is a callable ``attempt -> seconds`` where ``attempt`` is the number
of the attempt that just failed (1 for the first).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

from resq.clock import to_seconds
from resq.errors import ConfigError

__all__ = ["BACKOFF_NAMES", "BackoffPolicy", "exponential", "fixed", "linear", "make_backoff", "to_seconds"]

BackoffPolicy = Callable[[int], float]

#: Base delay of the named policies, in seconds.
DEFAULT_BASE_S = 1.0
#: Upper bound of the exponential policy, in seconds (one hour).
DEFAULT_CAP_S = 3600.0
BACKOFF_NAMES = ("fixed", "linear", "exponential")


def fixed(base_s: float = DEFAULT_BASE_S) -> BackoffPolicy:
    """Always wait ``base_s`` seconds."""
    return lambda attempt: base_s


def linear(base_s: float = DEFAULT_BASE_S) -> BackoffPolicy:
    """Wait ``base_s * attempt`` seconds."""
    return lambda attempt: base_s * attempt


def exponential(
    base_s: float = DEFAULT_BASE_S, cap_s: float = DEFAULT_CAP_S, rng: random.Random | None = None
) -> BackoffPolicy:
    """Exponential backoff with a cap and full jitter: uniform in ``[0, min(cap, base * 2**(attempt-1))]``.

    Full jitter spreads retries of many jobs that failed together (AWS architecture blog, 2015).
    """
    draw = (rng or random.Random()).uniform

    def policy(attempt: int) -> float:
        ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 60))
        return draw(0.0, ceiling)

    return policy


def make_backoff(spec: float | int | timedelta | str | BackoffPolicy) -> BackoffPolicy:
    """Build a policy from a task's ``backoff`` option.

    Args:
        spec: seconds (fixed delay), a ``timedelta``, one of ``"fixed"``, ``"linear"``,
            ``"exponential"``, or a callable ``attempt -> seconds``.

    Raises:
        ConfigError: an unknown name, a negative delay, or an unusable value.
    """
    if isinstance(spec, str):
        if spec == "fixed":
            return fixed()
        if spec == "linear":
            return linear()
        if spec == "exponential":
            return exponential()
        raise ConfigError(f"unknown backoff {spec!r}: use one of {', '.join(BACKOFF_NAMES)}, seconds or a callable")
    if callable(spec):
        return spec
    seconds = to_seconds(spec)
    if seconds < 0:
        raise ConfigError(f"backoff must not be negative, got {seconds}")
    return fixed(seconds)
