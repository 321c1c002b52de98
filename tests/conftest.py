"""Fixtures backed by a real ``redis-server`` (never a fake or mocked Redis).

Fixtures:
- ``redis_server`` (session): the shared :class:`RedisServer` (16 databases).
- ``redis_cluster`` (session): a Redis Cluster of 3 masters and 3 replicas, started on first use.
- ``redis_mode`` (function): ``"single"``, or ``"cluster"`` for the ``[cluster]`` run of a test marked
  ``@pytest.mark.cluster`` (such a test runs twice: ``[single]`` and ``[cluster]``).
- ``redis_url`` (function): ``redis://127.0.0.1:PORT/DB`` of a freshly FLUSHDB'd database on the shared
  server; in cluster mode ``redis+cluster://…`` of the cluster, every master FLUSHALL'd.
- ``redis_client`` (function): a client of ``redis_url`` (``redis.Redis``, or in cluster mode a
  ``redis.cluster.RedisCluster`` whose ``KEYS`` and ``DBSIZE`` see every master), closed afterwards.
- ``private_redis`` (function): a brand-new :class:`RedisServer` of the test's own (kill/pause/restart it).
- ``free_port`` (function): an unused TCP port on 127.0.0.1.
- ``run_resq`` (function): factory ``run_resq(command, *args, app_ref=None, env=None, url=None) -> Popen``
  running any ``python -m resq`` command in its own process group; all stopped at teardown.
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis

from tests.helpers import read_log
from tests.redis_server import RedisServer, find_free_port
from tests.topology import Cluster, RedisClient, client_for

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASES = 16
_db_numbers = itertools.cycle(range(DATABASES))
#: The modes a test marked ``cluster`` runs in, as its ids say (``test_x[single]``, ``test_x[cluster]``).
MODES = ("single", "cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``@pytest.mark.cluster`` that uses ``redis_url`` runs once on the shared server and once
    on the Redis Cluster (the ``redis_mode`` fixture's two params)."""
    if metafunc.definition.get_closest_marker("cluster") and "redis_url" in metafunc.fixturenames:
        metafunc.parametrize("redis_mode", MODES, indirect=True)


@pytest.fixture
def redis_mode(request: pytest.FixtureRequest) -> str:
    """``"single"`` (one ``redis-server``), or ``"cluster"`` in the ``[cluster]`` run of a marked test."""
    return str(getattr(request, "param", "single"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(databases=DATABASES)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """3 masters with a replica each, for the ``[cluster]`` runs of this process (an xdist worker): started
    when the first of them asks, stopped at the end of the session."""
    cluster = Cluster(masters=3, replicas=1)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_url(redis_mode: str, request: pytest.FixtureRequest) -> str:
    if redis_mode == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.url()
    return _fresh_database(request.getfixturevalue("redis_server"))


def _fresh_database(redis_server: RedisServer) -> str:
    """The url of the shared server's next database, flushed (the server restarted or resumed if a test
    left it down or paused)."""
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
def redis_client(redis_url: str) -> Iterator[RedisClient]:
    client = client_for(redis_url)
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


class RunResq(Protocol):
    def __call__(
        self,
        command: str,
        *args: str,
        app_ref: str | None = None,
        env: dict[str, str] | None = None,
        url: str | None = None,
    ) -> subprocess.Popen[bytes]: ...


STOP_GRACE = 10.0


def spawn_resq(command: str, args: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m resq command *args`` from the repository, in its own process group (stop it by group),
    its output to ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "resq", command, *args],
            env=env,
            cwd=str(REPO_ROOT),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


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
def run_resq(redis_url: str, tmp_path: Path) -> Iterator[RunResq]:
    """Factory: ``run_resq(command, *args, app_ref=None, env=None, url=None)`` runs ``python -m resq
    command *args`` in its own process group, output to ``proc.log_path``; all stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []
    counter = itertools.count()

    def start(
        command: str,
        *args: str,
        app_ref: str | None = None,
        env: dict[str, str] | None = None,
        url: str | None = None,
    ) -> subprocess.Popen[bytes]:
        full_env = dict(os.environ)
        pythonpath = [str(REPO_ROOT)]
        if full_env.get("PYTHONPATH"):
            pythonpath.append(full_env["PYTHONPATH"])
        full_env.update(
            {"PYTHONPATH": os.pathsep.join(pythonpath), "PYTHONUNBUFFERED": "1", "RESQ_REDIS_URL": url or redis_url}
        )
        if app_ref is not None:
            full_env["RESQ_APP"] = app_ref
        full_env.update(env or {})
        log_path = tmp_path / f"{command}-{next(counter)}.log"
        proc = spawn_resq(command, args, full_env, log_path)
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
            print(f"--- {proc.args[3]} pid {proc.pid} (exit {proc.returncode}) log tail ---\n{tail}")


@pytest.fixture
def run_worker(run_resq: RunResq) -> RunWorker:
    """Factory: ``run_worker(app_ref, *args, env=None, url=None)`` runs ``python -m resq worker *args``
    with ``RESQ_APP=app_ref``."""

    def start(
        app_ref: str, *args: str, env: dict[str, str] | None = None, url: str | None = None
    ) -> subprocess.Popen[bytes]:
        return run_resq("worker", *args, app_ref=app_ref, env=env, url=url)

    return start


def pytest_report_header(config: Any) -> str:
    return f"resq tests: real redis-server ({REPO_ROOT})"
