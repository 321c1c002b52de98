"""Formatting and parsing helpers of the operator's commands."""

from __future__ import annotations

import pytest

from resq.cli.common import ago, parse_duration, table, truncate
from resq.errors import ConfigError
from resq.ops import control_message
from resq.ops.metrics import cumulative_buckets


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7 days", "-5s", "1y", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.25, "250ms"),
        (12, "12s"),
        (184, "3m04s"),
        (7500, "2h05m"),
        (273600, "3d04h"),
    ],
)
def test_ago(seconds: float | None, text: str) -> None:
    assert ago(seconds) == text


def test_table_aligns_columns() -> None:
    assert table(["A", "LONGER"], [["xyz", 1], [None, "2"]]).splitlines() == [
        "A    LONGER",
        "xyz  1",
        "     2",
    ]


def test_truncate() -> None:
    assert truncate("a\nb   c", 10) == "a b c"
    assert truncate("x" * 20, 10) == "x" * 9 + "…"


def test_control_message() -> None:
    assert control_message("pause", "*", at_ms=5) == {"cmd": "pause", "target": "*", "at_ms": 5}
    with pytest.raises(ConfigError):
        control_message("restart")


def test_cumulative_buckets() -> None:
    buckets = dict(cumulative_buckets({"5": 2, "100": 1, "+Inf": 1, "count": 4, "sum_ms": 999999}))
    assert buckets["0.005"] == 2 and buckets["0.01"] == 2 and buckets["0.1"] == 3 and buckets["300.0"] == 3
    assert buckets["+Inf"] == 4
