"""The msgpack codec and the job envelope: round trips, refusals, limits (no Redis)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgpack
import pytest

from resq import DecodeError, EncodeError, PayloadTooLarge, ResqError
from resq.codec import ENVELOPE_VERSION, Envelope, decode_envelope, encode_envelope, pack, unpack

PARIS_SUMMER = timezone(timedelta(hours=2))

ROUND_TRIPS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    math.inf,
    "",
    "héllo ✓",
    b"",
    b"\x00\xff raw",
    [],
    [1, "two", 3.0, None],
    {},
    {"a": 1, "nested": {"list": [1, {"b": b"x"}]}},
    {1: "int keys survive"},
    datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    datetime(2024, 7, 1, 9, 0, tzinfo=PARIS_SUMMER),
    date(2024, 2, 29),
    Decimal("12.3400"),
    Decimal("-1E+10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.uuid4(),
    [datetime(2030, 1, 1, tzinfo=UTC), {"d": Decimal("0.1"), "u": uuid.UUID(int=7), "day": date(1999, 12, 31)}],
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_round_trip(value: Any) -> None:
    back = unpack(pack(value))
    assert back == value
    assert type(back) is type(value)


def test_aware_datetime_keeps_its_offset() -> None:
    value = datetime(2024, 7, 1, 9, 0, tzinfo=PARIS_SUMMER)
    back = unpack(pack(value))
    assert back.utcoffset() == timedelta(hours=2)
    assert back.tzinfo is not None


def test_date_stays_a_date_not_a_datetime() -> None:
    back = unpack(pack(date(2024, 1, 2)))
    assert type(back) is date


def test_decimal_keeps_exact_digits() -> None:
    back = unpack(pack(Decimal("0.1000000000000000000000000001")))
    assert str(back) == "0.1000000000000000000000000001"


def test_nan_round_trips() -> None:
    assert math.isnan(unpack(pack(math.nan)))


def test_tuples_come_back_as_lists() -> None:
    assert unpack(pack((1, (2, 3)))) == [1, [2, 3]]
    assert unpack(pack({"t": (1,)})) == {"t": [1]}


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(EncodeError, match="naive datetime"):
        pack(datetime(2024, 1, 1, 12, 0))
    with pytest.raises(EncodeError, match="naive"):
        pack({"deep": [datetime(2024, 1, 1)]})


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, frozenset(), 2**64, -(2**63) - 1, complex(1, 2), [lambda: 1], {"k": object()}, {(1, 2): 1}],
    ids=[
        "object",
        "set",
        "frozenset",
        "int-too-big",
        "int-too-small",
        "complex",
        "lambda-in-list",
        "object-in-dict",
        "tuple-key",
    ],
)
def test_unencodable_values_raise_encode_error(value: Any) -> None:
    with pytest.raises(EncodeError) as info:
        pack(value)
    assert isinstance(info.value, ResqError)
    assert isinstance(info.value, TypeError)


def test_encode_error_names_the_type() -> None:
    class Custom:
        pass

    with pytest.raises(EncodeError, match="Custom"):
        pack(Custom())


def test_error_tree() -> None:
    assert issubclass(EncodeError, ResqError)
    assert issubclass(EncodeError, TypeError)
    assert issubclass(DecodeError, ResqError)
    assert issubclass(PayloadTooLarge, ResqError)


@pytest.mark.parametrize(
    "raw", [b"\xc1", b"\x92\x01", b"", b"\xd4\x01"], ids=["reserved", "truncated", "empty", "bad-ext"]
)
def test_unpack_garbage_raises_decode_error_with_raw(raw: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        unpack(raw)
    assert info.value.raw == raw


def test_unknown_extension_type_is_left_as_ext() -> None:
    raw = msgpack.packb(msgpack.ExtType(42, b"abc"))
    assert unpack(raw) == msgpack.ExtType(42, b"abc")


# -- the envelope ----------------------------------------------------------------------------------


def _envelope(**changes: Any) -> Envelope:
    base: dict[str, Any] = {
        "id": "0190abcdef0112233445",
        "task": "pkg.mod.fn",
        "queue": "mail",
        "args": [1, "two", datetime(2024, 1, 1, tzinfo=UTC)],
        "kwargs": {"d": Decimal("1.5")},
        "created_ms": 1_700_000_000_000,
        "meta": {"k": "v"},
    }
    base.update(changes)
    return Envelope(**base)


def test_envelope_round_trip() -> None:
    env = _envelope()
    assert decode_envelope(encode_envelope(env, 1 << 20)) == env


def test_envelope_carries_a_version() -> None:
    data = unpack(encode_envelope(_envelope(), 1 << 20))
    assert data["v"] == ENVELOPE_VERSION == 1


def test_envelope_tuple_args_become_a_list() -> None:
    env = _envelope(args=(1, 2))  # type: ignore[arg-type]
    assert decode_envelope(encode_envelope(env, 1 << 20)).args == [1, 2]


def test_envelope_over_limit_raises_payload_too_large() -> None:
    env = _envelope(args=["x" * 1000])
    size = len(encode_envelope(env, 1 << 20))
    assert encode_envelope(env, size)  # exactly at the limit is accepted
    with pytest.raises(PayloadTooLarge) as info:
        encode_envelope(env, size - 1)
    assert info.value.size == size
    assert info.value.limit == size - 1
    assert "max_payload_bytes" in str(info.value)


def test_envelope_with_unencodable_argument_raises_encode_error() -> None:
    with pytest.raises(EncodeError):
        encode_envelope(_envelope(args=[object()]), 1 << 20)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xc1garbage",
        msgpack.packb([1, 2, 3]),
        msgpack.packb(
            {
                "v": ENVELOPE_VERSION + 1,
                "id": "x",
                "task": "t",
                "queue": "q",
                "args": [],
                "kwargs": {},
                "created_ms": 0,
                "meta": {},
            }
        ),
        msgpack.packb({"v": "1", "id": "x"}),
        msgpack.packb(
            {"v": 1, "id": "x", "task": 5, "queue": "q", "args": [], "kwargs": {}, "created_ms": 0, "meta": {}}
        ),
        msgpack.packb(
            {"v": 1, "id": "x", "task": "t", "queue": "q", "args": {}, "kwargs": {}, "created_ms": 0, "meta": {}}
        ),
        msgpack.packb({"v": 1}),
    ],
    ids=["not-msgpack", "a-list", "newer-version", "string-version", "task-not-str", "args-not-list", "fields-missing"],
)
def test_bad_envelopes_raise_decode_error_and_keep_raw(raw: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(raw)
    assert info.value.raw == raw
