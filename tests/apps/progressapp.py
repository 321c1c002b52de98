"""The app of the progress tests (``resq worker -A tests.apps.progressapp:app``).

``pages`` reports ``0.42`` with the note ``page 3 of 7``, then waits until the test pushes to
:data:`GATE` (so the test reads the progress while the job runs), then reports ``1.0`` and returns.
``tight`` reports progress in a tight loop (the throttle's case) and ``once`` reports once and returns
(for tests that run jobs in their own process: ``resq.testing.drain`` or eager mode); ``refused`` tries
a report and says what it raised.
"""

from __future__ import annotations

import time
from typing import Any

import resq
from resq import Resq
from tests.topology import client_for

app = Resq()

#: The list ``pages`` waits on (BLPOP) before it finishes.
GATE = "test:progress:gate"
QUEUE = "progress"


def bind(url: str) -> None:
    """Point the app at ``url`` (the test process's database)."""
    app.reconfigure(url=url)


def _job() -> resq.Job[Any]:
    job = resq.current_job()
    assert job is not None, "called outside a job"
    return job


@app.task(name="progress.pages", queue=QUEUE, retries=0)
def pages(wait_s: float = 30.0) -> str:
    job = _job()
    job.progress(0.42, note="page 3 of 7")
    client = client_for(app.settings.url)
    try:
        opened = client.blpop([GATE], timeout=wait_s)
    finally:
        client.close()
    job.progress(1.0, note="done")
    return "opened" if opened else "timed out"


@app.task(name="progress.tight", queue=QUEUE, retries=0)
def tight(calls: int) -> dict[str, float]:
    """``calls`` reports with one note and a fraction below 1.0, then one with a new note, then 1.0;
    returns how long the loop took (seconds)."""
    job = _job()
    began = time.monotonic()
    for i in range(calls):
        job.progress(i / (calls * 2), note="looping")
    elapsed = time.monotonic() - began
    job.progress(0.5, note="new note")
    job.progress(1.0, note="new note")
    return {"elapsed_s": elapsed}


@app.task(name="progress.once", queue=QUEUE, retries=0)
def once(fraction: float, note: str | None = None) -> str:
    _job().progress(fraction, note=note)
    return "reported"


@app.task(name="progress.refused", queue=QUEUE, retries=0)
def refused(fraction: Any, note: Any = None) -> str:
    """Reports ``fraction`` (with ``note``, or without a fraction when ``fraction`` is None) from inside
    the running job; returns the ``ConfigError``'s message, or ``"accepted"``."""
    job = _job()
    try:
        if fraction is None:
            job.progress(None, note=note)
        else:
            job.progress(fraction, note=note)
    except resq.ConfigError as exc:
        return str(exc)
    return "accepted"
