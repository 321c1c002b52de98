"""The msgpack wire format: a versioned job envelope and the values it carries.

Arguments, results and errors travel as msgpack. Beyond msgpack's own types (None, bool, int, float,
str, bytes, list, dict), four extension types carry tz-aware ``datetime``, ``date``, ``Decimal`` and
``UUID``. Tuples come back as lists. Nothing is ever pickled: a payload names a task, it never carries
code.

A sealed value (``resq.sealing``: encrypted arguments and results) travels as an opaque token: in an
envelope's ``sealed`` field (its ``args`` and ``kwargs`` are then absent), or as extension type 5 for
a sealed result. This module only carries tokens; ``resq.sealing`` makes and opens them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgpack

from resq.errors import DecodeError, EncodeError, PayloadTooLarge

__all__ = [
    "ENVELOPE_VERSION",
    "Envelope",
    "decode_envelope",
    "decode_event",
    "encode_envelope",
    "pack",
    "pack_sealed",
    "sealed_token",
    "shown",
    "unpack",
    "unpack_bytes",
]

#: The version written into every envelope; decoders refuse a newer one.
ENVELOPE_VERSION = 1

_EXT_DATETIME = 1  # ISO 8601 text of an aware datetime
_EXT_DATE = 2  # ISO 8601 text of a date
_EXT_DECIMAL = 3  # str(Decimal)
_EXT_UUID = 4  # the 16 raw bytes
_EXT_SEALED = 5  # a sealed result: the token of resq.sealing (left undecoded, as an ExtType)


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise EncodeError(f"naive datetime {value!r} cannot be sent: give it a tzinfo (e.g. UTC)")
        return msgpack.ExtType(_EXT_DATETIME, value.isoformat().encode())
    if isinstance(value, dt.date):
        return msgpack.ExtType(_EXT_DATE, value.isoformat().encode())
    if isinstance(value, Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(value).encode())
    if isinstance(value, uuid.UUID):
        return msgpack.ExtType(_EXT_UUID, value.bytes)
    if isinstance(value, int):
        raise EncodeError(f"cannot encode integer {value}: integers must fit in 64 bits (use str or Decimal)")
    raise EncodeError(
        f"cannot encode value of type {type(value).__qualname__}: resq payloads carry None, bool, int, "
        "float, str, bytes, list, dict, aware datetime, date, Decimal and UUID"
    )


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        value = dt.datetime.fromisoformat(data.decode())
        if value.utcoffset() is None:  # the format carries aware datetimes only (pack refuses naive ones)
            raise ValueError(f"naive datetime {value.isoformat()!r} in a datetime extension")
        return value
    if code == _EXT_DATE:
        return dt.date.fromisoformat(data.decode())
    if code == _EXT_DECIMAL:
        return Decimal(data.decode())
    if code == _EXT_UUID:
        return uuid.UUID(bytes=data)
    return msgpack.ExtType(code, data)


def pack(value: Any) -> bytes:
    """Encode one value.

    Raises:
        EncodeError: the value (or something inside it) has no msgpack form.
    """
    try:
        raw: bytes = msgpack.packb(value, default=_default, use_bin_type=True, datetime=False)
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode value: {exc}") from exc
    try:
        unpack(raw)  # ~1 µs for a typical job: msgpack packs some values it cannot read back
    except DecodeError as exc:
        raise EncodeError(
            f"cannot encode value: it would not decode back ({exc.__cause__ or exc}); "
            "dict keys must be scalars, not tuples, lists or dicts"
        ) from exc
    return raw


def unpack_bytes(raw: bytes) -> Any:
    """Decode msgpack written by a Lua script (whose strings are all msgpack ``str``, binary ones
    included): every string comes back as bytes.

    Raises:
        DecodeError: the bytes are not valid msgpack.
    """
    try:
        return msgpack.unpackb(raw, raw=True, strict_map_key=False)
    except Exception as exc:  # msgpack raises many unrelated types on garbage
        raise DecodeError(f"cannot decode payload: {type(exc).__name__}: {exc}", raw) from exc


def pack_sealed(token: bytes) -> bytes:
    """The encoded form of a sealed value (a result of an encrypted task): extension type 5."""
    raw: bytes = msgpack.packb(msgpack.ExtType(_EXT_SEALED, token))
    return raw


def sealed_token(value: Any) -> bytes | None:
    """The token of a decoded sealed value (see :func:`pack_sealed`), or None for any other value."""
    if isinstance(value, msgpack.ExtType) and value.code == _EXT_SEALED:
        token: bytes = value.data
        return token
    return None


def unpack(raw: bytes) -> Any:
    """Decode one value encoded by :func:`pack`.

    Raises:
        DecodeError: the bytes are not a valid payload (``raw`` keeps them).
    """
    try:
        return msgpack.unpackb(raw, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many unrelated types on garbage
        raise DecodeError(f"cannot decode payload: {type(exc).__name__}: {exc}", raw) from exc


@dataclass(frozen=True)
class Envelope:
    """What a job carries on the wire: which task, its arguments, and job options."""

    id: str
    task: str
    queue: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    created_ms: int = 0
    #: options that travel with the job (e.g. per-job overrides set by hooks)
    meta: dict[str, Any] = field(default_factory=dict)
    #: the arguments sealed (``resq.sealing`` token of ``[args, kwargs]``); ``args`` and ``kwargs`` are
    #: then empty until a process holding the key opens it. None: the arguments travel in clear.
    sealed: bytes | None = None


def encode_envelope(envelope: Envelope, max_bytes: int) -> bytes:
    """Encode an envelope, refusing payloads over ``max_bytes``.

    Raises:
        EncodeError: an argument has no msgpack form.
        PayloadTooLarge: the encoded job is over ``max_bytes``.
    """
    # A sealed envelope carries no ``args`` or ``kwargs`` in clear, so a resq that predates sealing refuses
    # the job (a malformed envelope) instead of running it without its arguments.
    arguments: dict[str, Any] = (
        {"args": list(envelope.args), "kwargs": envelope.kwargs}
        if envelope.sealed is None
        else {"sealed": envelope.sealed}
    )
    data = {
        "v": ENVELOPE_VERSION,
        "id": envelope.id,
        "task": envelope.task,
        "queue": envelope.queue,
        **arguments,
        "created_ms": envelope.created_ms,
        "meta": envelope.meta,
    }
    raw = pack(data)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(len(raw), max_bytes)
    return raw


def decode_envelope(raw: bytes) -> Envelope:
    """Decode an envelope written by :func:`encode_envelope`.

    Raises:
        DecodeError: not msgpack, not an envelope, or a newer version (``raw`` keeps the bytes).
    """
    data = unpack(raw)
    if not isinstance(data, dict):
        raise DecodeError(f"payload is a {type(data).__name__}, not a job envelope", raw)
    version = data.get("v")
    if not isinstance(version, int) or version > ENVELOPE_VERSION:
        raise DecodeError(f"unsupported envelope version {version!r} (this resq reads {ENVELOPE_VERSION})", raw)
    try:
        return Envelope(
            id=_typed(data, "id", str),
            task=_typed(data, "task", str),
            queue=_typed(data, "queue", str),
            **_arguments(data),
            created_ms=_typed(data, "created_ms", int),
            meta=_typed(data, "meta", dict),
        )
    except TypeError as exc:
        raise DecodeError(f"malformed job envelope: {exc}", raw) from exc


def _arguments(data: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a decoded envelope: ``args`` and ``kwargs``, or a ``sealed`` token (and then none
    in clear)."""
    if data.get("sealed") is None:
        return {"args": _typed(data, "args", list), "kwargs": _typed(data, "kwargs", dict)}
    if "args" in data or "kwargs" in data:
        raise TypeError("a sealed envelope carries no 'args' or 'kwargs' in clear")
    return {"sealed": _typed(data, "sealed", bytes)}


def _typed(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise TypeError(f"field {key!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def shown(value: Any) -> str:
    """``str(value)`` of a decoded value, which may nest deeper than ``str`` goes (msgpack reads 1024
    levels): then a placeholder, never a ``RecursionError``."""
    try:
        return str(value)
    except RecursionError:
        return "(a value nested too deep to show)"


def decode_event(raw: bytes) -> dict[str, Any]:
    """A lifecycle event written by the transition scripts (a msgpack map); never raises."""
    try:
        value = unpack(raw)
    except DecodeError:
        return {"event": "?", "raw": repr(raw)}
    if isinstance(value, dict):
        return value
    try:
        shown = repr(value)
    except RecursionError:  # msgpack reads up to 1024 nested levels, repr fewer
        shown = repr(raw)
    return {"event": "?", "raw": shown}
