"""Backoff policies: fixed, linear, exponential with cap and full jitter, callables (no Redis)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from resq import ConfigError
from resq.retry import DEFAULT_CAP_S, exponential, fixed, linear, make_backoff, to_seconds


def test_fixed() -> None:
    policy = fixed(2.5)
    assert [policy(n) for n in (1, 2, 10)] == [2.5, 2.5, 2.5]


def test_linear() -> None:
    policy = linear(2.0)
    assert [policy(n) for n in (1, 2, 3, 10)] == [2.0, 4.0, 6.0, 20.0]


def test_exponential_is_full_jitter_under_a_growing_ceiling() -> None:
    policy = exponential(base_s=1.0, cap_s=1000.0, rng=random.Random(7))
    for attempt in range(1, 9):
        ceiling = 2.0 ** (attempt - 1)
        draws = [policy(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws), attempt
        # Full jitter: spread over the whole range, not bunched at the ceiling.
        assert min(draws) < ceiling * 0.1
        assert max(draws) > ceiling * 0.9


def test_exponential_is_capped() -> None:
    policy = exponential(base_s=1.0, cap_s=30.0, rng=random.Random(1))
    draws = [policy(attempt) for attempt in (6, 10, 100, 10_000) for _ in range(100)]
    assert all(0.0 <= d <= 30.0 for d in draws)
    assert max(draws) > 25.0


def test_exponential_is_reproducible_with_a_seeded_rng() -> None:
    a = exponential(rng=random.Random(42))
    b = exponential(rng=random.Random(42))
    assert [a(n) for n in range(1, 20)] == [b(n) for n in range(1, 20)]
    # The draw is uniform over [0, base * 2**(attempt-1)], taken from the given rng.
    c = exponential(base_s=1.0, cap_s=DEFAULT_CAP_S, rng=random.Random(42))
    assert c(3) == random.Random(42).uniform(0.0, 4.0)


def test_exponential_huge_attempt_does_not_overflow() -> None:
    policy = exponential(rng=random.Random(3))
    assert 0.0 <= policy(10**9) <= DEFAULT_CAP_S


def test_make_backoff_names() -> None:
    assert make_backoff("fixed")(5) == 1.0
    assert make_backoff("linear")(3) == 3.0
    exp = make_backoff("exponential")
    assert all(0.0 <= exp(n) <= min(DEFAULT_CAP_S, 2.0 ** (n - 1)) for n in range(1, 30))


@pytest.mark.parametrize("spec, expected", [(3, 3.0), (0.25, 0.25), (0, 0.0), (timedelta(minutes=2), 120.0)])
def test_make_backoff_seconds_is_a_fixed_delay(spec: float | timedelta, expected: float) -> None:
    policy = make_backoff(spec)
    assert policy(1) == policy(7) == expected


def test_make_backoff_callable_is_used_as_is() -> None:
    def custom(attempt: int) -> float:
        return attempt * 10.0

    assert make_backoff(custom) is custom
    assert make_backoff(custom)(4) == 40.0


@pytest.mark.parametrize(
    "spec", ["exponentially", "", "Fixed", -1, -0.5, timedelta(seconds=-1), None, True, [1]], ids=repr
)
def test_make_backoff_refuses_bad_specs(spec: object) -> None:
    with pytest.raises(ConfigError):
        make_backoff(spec)  # type: ignore[arg-type]


def test_unknown_backoff_name_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="fixed, linear, exponential"):
        make_backoff("geometric")


def test_to_seconds() -> None:
    assert to_seconds(2) == 2.0
    assert to_seconds(timedelta(milliseconds=1500)) == 1.5
    for bad in ("1", None, True):
        with pytest.raises(ConfigError):
            to_seconds(bad)  # type: ignore[arg-type]
