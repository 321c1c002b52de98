"""Small helpers shared by tests: wait on conditions (never fixed sleeps), run burst workers, read worker logs."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tests.conftest import RunWorker

T = TypeVar("T")
#: How long a burst worker may take, in seconds, before the test fails.
BURST_TIMEOUT_S = 60.0


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "",
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Raises ``AssertionError`` (with ``message`` and the last value or exception) after ``timeout`` seconds.
    Exceptions raised by ``predicate`` count as "not yet" (e.g. Redis still restarting).
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            last, last_exc = value, None
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {message or predicate!r} ({detail})")
        time.sleep(interval)


def burst(
    run_worker: RunWorker, app_ref: str, *args: str, env: dict[str, str] | None = None, timeout: float = BURST_TIMEOUT_S
) -> subprocess.Popen[bytes]:
    """Run ``resq worker --burst *args`` for ``app_ref`` until the queues are empty; it must exit 0.

    Returns the finished process (``read_log(proc)`` reads its output); the assertion shows the log.
    """
    proc = run_worker(app_ref, "--burst", *args, env=env)
    code = proc.wait(timeout=timeout)
    assert code == 0, read_log(proc)
    return proc


def read_log(proc: subprocess.Popen[Any]) -> str:
    """The combined stdout/stderr captured so far of a process started by the ``run_worker`` fixture."""
    path: Path | None = getattr(proc, "log_path", None)
    if path is None:
        return ""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of ``text`` (a worker's ``--log-format json`` output)."""
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def stored_envelope(client: Any, queue: str, job_id: str, namespace: str = "resq") -> bytes:
    """A job's envelope as Redis holds it: in its hash, or (while it waits) in its stream entry."""
    from resq.broker.keys import Keys

    keys = Keys(namespace)
    found = client.hget(keys.job(queue, job_id), "envelope")
    if found is None:
        entry = client.hget(keys.job(queue, job_id), "entry")
        found = client.xrange(keys.queue(queue), entry, entry)[0][1][b"envelope"]
    return bytes(found)


def event_subscribers(client: Any, namespace: str = "resq") -> int:
    """How many clients follow the events channel of ``namespace`` (``resq events``, the dashboard)."""
    channel = f"{{{namespace}}}:events"
    return int(dict(client.pubsub_numsub(channel))[channel.encode()])


def follow_events(redis_url: str, client: Any, *args: str) -> subprocess.Popen[str]:
    """``resq events ARGS`` in a subprocess on ``redis_url``, returned once it has subscribed."""
    import os
    import sys

    from tests.conftest import REPO_ROOT

    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("RESQ_APP", None)
    before = event_subscribers(client)
    proc = subprocess.Popen(
        [sys.executable, "-m", "resq", "events", *args],
        env=env,
        cwd=str(REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: event_subscribers(client) > before, message="resq events subscribed")
    return proc
