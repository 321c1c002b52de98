"""Encrypted arguments and results: AES-256-GCM seals under keys named by id, so they rotate.

A task with ``encrypt=True`` (or every task of an app with ``encrypt=True``) travels with its
arguments sealed: the producer packs ``[args, kwargs]`` and seals the bytes under its *current* key
(the first of ``encryption_keys``); the envelope keeps ``id``, ``task``, ``queue`` and ``meta`` in
clear, for routing and listing. The worker opens the seal with whichever of its keys has the id the
seal names, and seals the task's result under its own current key; ``job.result()`` opens it.

A seal (a *token*) is ``01 | len(key id) | key id | nonce (12 bytes) | ciphertext and tag (16 bytes)``.
The associated data binds the token's header (so its key id), what it holds (``args`` or ``result``)
and the job's id: a token moved to another job, or from the arguments to the result, fails
authentication. Keys are 32 random bytes, written as urlsafe base64 (:func:`generate_key`).

This is the only module that imports ``cryptography`` (the ``crypto`` extra), and only when a seal is
made or opened: resq works without it until a task asks for encryption.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from resq.codec import Envelope, pack, pack_sealed, sealed_token, unpack
from resq.errors import ConfigError, DecodeError, DecryptError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "NEEDS_CRYPTO",
    "Keyring",
    "generate_key",
    "key_id_of",
    "keyring",
    "open_envelope",
    "open_result",
    "require_crypto",
    "seal_envelope",
    "seal_result",
]

#: What ``encrypt=True`` says without the ``cryptography`` package.
NEEDS_CRYPTO = "encrypt=True needs the crypto extra: pip install 'resq[crypto]'"
#: Where a process without a key is told to put one.
KEY_HINT = (
    "set encryption_keys or RESQ_ENCRYPTION_KEYS (a new key: python -c 'import resq; print(resq.generate_key())')"
)

_FORMAT = 1  # the token format's version, its first byte
_NONCE = 12  # bytes of AES-GCM's nonce
_TAG = 16  # bytes of AES-GCM's authentication tag


def require_crypto() -> None:
    """Raise ``ConfigError`` (:data:`NEEDS_CRYPTO`) unless the ``cryptography`` package can be imported."""
    _cipher_class()


def _cipher_class() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigError(NEEDS_CRYPTO) from None
    return AESGCM


def generate_key() -> str:
    """A new random key (32 bytes) as urlsafe base64, the form ``encryption_keys`` and
    ``RESQ_ENCRYPTION_KEYS`` take."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Keyring:
    """The keys one process holds, in order: the first (``current``) seals, every one opens.

    Args:
        keys: ``(key id, 32-byte key)`` pairs, as ``Settings.encryption_keys`` holds them.
    """

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self._keys = dict(keys)
        self.ids = tuple(key_id for key_id, _ in keys)
        #: the id of the key new seals are made with (None: this process holds no key)
        self.current = self.ids[0] if self.ids else None
        self._ciphers: dict[str, AESGCM] = {}

    def __repr__(self) -> str:
        return f"<Keyring {', '.join(self.ids) or 'empty'}>"  # ids only: never the keys

    def seal(self, plaintext: bytes, purpose: str, job_id: str) -> bytes:
        """A token sealing ``plaintext`` under the current key, bound to ``purpose`` and ``job_id``.

        Raises:
            ConfigError: this process holds no key, or ``cryptography`` is not installed.
        """
        if self.current is None:
            raise ConfigError(f"an encrypted task needs an encryption key and this process holds none: {KEY_HINT}")
        header = _header(self.current)
        nonce = os.urandom(_NONCE)
        sealed = self._cipher(self.current).encrypt(nonce, plaintext, _associated(header, purpose, job_id))
        return header + nonce + sealed

    def open(self, token: bytes, purpose: str, job_id: str, holder: str = "this process") -> bytes:
        """The plaintext a token seals.

        Args:
            token: a token made by :meth:`seal`.
            purpose, job_id: what it must have been sealed for.
            holder: who opens it, for the message (``"this worker"``).

        Raises:
            DecryptError: a malformed token, a key id this keyring lacks, or a failed authentication
                (the token was altered, belongs to another job, or the key under that id differs).
            ConfigError: ``cryptography`` is not installed.
        """
        key_id, nonce, sealed = _parse(token)
        if key_id not in self._keys:
            held = f"it holds: {', '.join(self.ids)}" if self.ids else f"it holds no key: {KEY_HINT}"
            raise DecryptError(f"sealed with key {key_id!r}, which {holder} does not hold ({held})", token, key_id)
        cipher = self._cipher(key_id)  # ConfigError without cryptography, before importing from it
        from cryptography.exceptions import InvalidTag

        try:
            return cipher.decrypt(nonce, sealed, _associated(_header(key_id), purpose, job_id))
        except InvalidTag:
            raise DecryptError(
                f"sealed payload failed authentication under key {key_id!r}: it was altered, belongs to "
                f"another job, or the key named {key_id!r} here is not the one that sealed it",
                token,
                key_id,
            ) from None

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = _cipher_class()(self._keys[key_id])
        return cipher


@functools.lru_cache(maxsize=16)
def keyring(keys: tuple[tuple[str, bytes], ...]) -> Keyring:
    """The :class:`Keyring` of these keys (one per distinct tuple, shared by the process's threads)."""
    return Keyring(keys)


os.register_at_fork(after_in_child=keyring.cache_clear)  # a forked child builds its own ciphers


def key_id_of(token: bytes) -> str:
    """The id of the key a token names (``"?"`` for a malformed one); never raises."""
    try:
        return _parse(token)[0]
    except DecryptError:
        return "?"


def seal_envelope(envelope: Envelope, keys: Keyring) -> Envelope:
    """``envelope`` with its arguments sealed under the current key (``args``/``kwargs`` emptied).

    Raises:
        EncodeError: an argument has no msgpack form.
        ConfigError: no key, or no ``cryptography``.
    """
    if keys.current is None:
        raise ConfigError(f"task {envelope.task!r} is encrypted but this process holds no encryption key: {KEY_HINT}")
    token = keys.seal(pack([envelope.args, envelope.kwargs]), "args", envelope.id)
    return replace(envelope, args=[], kwargs={}, sealed=token)


def open_envelope(envelope: Envelope, job_id: str, keys: Keyring, holder: str = "this process") -> Envelope:
    """``envelope`` with its sealed arguments opened (an envelope in clear comes back as it is).

    Args:
        envelope: a decoded envelope.
        job_id: the id of the job it was delivered as (a token sealed for another job fails).
        keys: the keys to open it with.
        holder: who opens it, for the message.

    Raises:
        DecryptError: see :meth:`Keyring.open`.
        DecodeError: the opened bytes are not ``[args, kwargs]``.
    """
    if envelope.sealed is None:
        return envelope
    plain = keys.open(envelope.sealed, "args", job_id, holder)
    value = unpack(plain)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], list) and isinstance(value[1], dict)):
        raise DecodeError("sealed arguments are not [args, kwargs]", plain)
    return replace(envelope, args=value[0], kwargs=value[1], sealed=None)


def seal_result(encoded: bytes, job_id: str, keys: Keyring) -> bytes:
    """An encoded result sealed under the current key, as the job hash's ``result`` field holds it.

    Raises:
        ConfigError: no key, or no ``cryptography``.
    """
    return pack_sealed(keys.seal(encoded, "result", job_id))


def open_result(value: Any, job_id: str, keys: Keyring, holder: str = "this process") -> Any:
    """A decoded ``result`` field's value: opened when it is sealed, else as it is.

    Raises:
        DecryptError: see :meth:`Keyring.open`.
        DecodeError: the opened bytes are not msgpack.
    """
    token = sealed_token(value)
    return value if token is None else unpack(keys.open(token, "result", job_id, holder))


def _header(key_id: str) -> bytes:
    raw = key_id.encode()
    return bytes((_FORMAT, len(raw))) + raw


def _associated(header: bytes, purpose: str, job_id: str) -> bytes:
    return b"resq\x00" + header + purpose.encode() + b"\x00" + job_id.encode()


def _parse(token: Any) -> tuple[str, bytes, bytes]:
    """``(key id, nonce, ciphertext and tag)`` of a token.

    Raises:
        DecryptError: not a token of this format.
    """
    if not isinstance(token, bytes) or len(token) < 2 or token[0] != _FORMAT:
        raise DecryptError("sealed payload is malformed (not a resq seal of format 1)", _as_bytes(token))
    end = 2 + token[1]
    if len(token) < end + _NONCE + _TAG:
        raise DecryptError("sealed payload is malformed (truncated)", token)
    try:
        key_id = token[2:end].decode()
    except UnicodeDecodeError:
        raise DecryptError("sealed payload is malformed (its key id is not UTF-8)", token) from None
    return key_id, token[end : end + _NONCE], token[end + _NONCE :]


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else b""
