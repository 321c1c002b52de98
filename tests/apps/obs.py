"""The app of the observability and operator tests (``-A tests.apps.obs:app``)."""

from __future__ import annotations

import logging
import os
from typing import Any

from resq import Resq
from tests.topology import client_for

app = Resq()

#: Set this key in Redis to let :func:`needs_fix` succeed.
FIXED = "test:obs:fixed"

user_log = logging.getLogger("user.code")


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's database)."""
    app.reconfigure(url=url)


@app.task(name="obs.add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="obs.fail")
def fail(message: str = "boom") -> None:
    raise ValueError(message)


@app.task(name="obs.chatty")
def chatty(word: str) -> str:
    """Logs through the standard ``logging`` module, as user code does."""
    user_log.info("chatty says %s", word)
    return word


@app.task(name="obs.needs_fix")
def needs_fix() -> str:
    """Fails until :data:`FIXED` is set in Redis (a bug fixed before the dead job is retried)."""
    client: Any = client_for(app.settings.url)
    try:
        if not client.exists(FIXED):
            raise RuntimeError("not fixed yet")
    finally:
        client.close()
    return f"fixed in {os.getpid()}"
