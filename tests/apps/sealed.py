"""The app of the encryption tests (``resq worker -A tests.apps.sealed:app``).

``app = Resq()`` reads ``RESQ_REDIS_URL`` and ``RESQ_ENCRYPTION_KEYS``, which each test sets for its
worker; the test process gives the app its own url and keys with :func:`bind`.
"""

from __future__ import annotations

from typing import Any

from resq import Resq

app = Resq()


@app.task(name="sealed.charge", encrypt=True)
def charge(card: str, *, amount: int) -> str:
    """Its card number is in its arguments and in its result: both sealed."""
    return f"charged {amount} to {card}"


@app.task(name="sealed.login", encrypt=True, redact=("password",))
def login(user: str, password: str) -> str:
    """Sealed, and its password redacted once opened."""
    return f"welcome {user}"


def bind(url: str, keys: Any) -> None:
    """Point the app at ``url`` with these encryption keys (the test process's producer, or its worker)."""
    app.reconfigure(url=url, encryption_keys=keys)
