"""Fixtures backed by a real ``redis-server`` (never fakeredis, never mocks).

Fixtures:
- ``redis_server`` (session): the shared :class:`RedisServer` (16 databases).
- ``redis_url`` (function): ``redis://127.0.0.1:PORT/DB`` of a freshly FLUSHDB'd database on it.
- ``redis_client`` (function): ``redis.Redis.from_url(redis_url)``, closed afterwards.
- ``private_redis`` (function): a brand-new :class:`RedisServer` of the test's own (kill/pause/restart it).
- ``free_port`` (function): an unused TCP port on 127.0.0.1.
- ``run_worker`` (function): factory ``run_worker(app_ref, *args, env=None, url=None) -> Popen`` that runs
  ``python -m resq worker *args`` in its own process group; every process is stopped at teardown.

This module must not import ``resq`` (tests of the fixtures run before the package exists).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis

from tests.helpers import read_log
from tests.redis_server import RedisServer, find_free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASES = 16
_db_numbers = itertools.cycle(range(DATABASES))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(databases=DATABASES)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if not redis_server.running:
        # A test must never leave the shared server dead, but do not let one mistake fail the rest.
        redis_server.restart()
    redis_server.resume()
    db = next(_db_numbers)
    url = redis_server.url(db)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer(databases=DATABASES)
    try:
        yield server
    finally:
        server.resume()
        server.cleanup()


@pytest.fixture
def free_port() -> int:
    return find_free_port()


class RunWorker(Protocol):
    def __call__(
        self, app_ref: str, *args: str, env: dict[str, str] | None = None, url: str | None = None
    ) -> subprocess.Popen[bytes]: ...


STOP_GRACE = 10.0


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    # The group is the leader's pid (start_new_session=True). Children of a worker that outlive the
    # supervisor stay in the group, so signal the group even when the leader has exited.
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


@pytest.fixture
def run_worker(redis_url: str, tmp_path: Path) -> Iterator[RunWorker]:
    procs: list[subprocess.Popen[bytes]] = []
    counter = itertools.count()

    def start(
        app_ref: str, *args: str, env: dict[str, str] | None = None, url: str | None = None
    ) -> subprocess.Popen[bytes]:
        full_env = dict(os.environ)
        pythonpath = [str(REPO_ROOT)]
        if full_env.get("PYTHONPATH"):
            pythonpath.append(full_env["PYTHONPATH"])
        full_env.update(
            {
                "PYTHONPATH": os.pathsep.join(pythonpath),
                "PYTHONUNBUFFERED": "1",
                "RESQ_APP": app_ref,
                "RESQ_REDIS_URL": url or redis_url,
            }
        )
        if env:
            full_env.update(env)
        log_path = tmp_path / f"worker-{next(counter)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "resq", "worker", *args],
                env=full_env,
                cwd=str(REPO_ROOT),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc.log_path = log_path  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        _stop_processes(procs)
        # Printed output of teardown is shown by pytest only when the test fails.
        for proc in procs:
            tail = "\n".join(read_log(proc).splitlines()[-60:])
            print(f"--- worker pid {proc.pid} (exit {proc.returncode}) log tail ---\n{tail}")


def pytest_report_header(config: Any) -> str:
    return f"resq tests: real redis-server ({REPO_ROOT})"
