"""Fixtures of the chaos suite: the ledger (a ``redis-server`` no fault touches), private Redis servers
to break, the process fleet, and apps pointed at a server; all cleaned up at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resq import Resq
from tests.chaos.harness import Ledger, Procs
from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def ledger_server() -> Iterator[RedisServer]:
    server = RedisServer(databases=1)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def ledger(ledger_server: RedisServer) -> Iterator[Ledger]:
    if not ledger_server.running:
        ledger_server.restart()
    found = Ledger(ledger_server.url(0))
    found.client.flushdb()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """``redis_factory(*extra_args)``: a new private ``redis-server`` (stopped and removed at teardown)."""
    servers: list[RedisServer] = []

    def make(*extra_args: str) -> RedisServer:
        server = RedisServer(databases=1, extra_args=extra_args)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.resume()
            server.cleanup()


@pytest.fixture
def procs(ledger: Ledger, tmp_path: Path, redis_factory: Callable[..., RedisServer]) -> Iterator[Procs]:
    # Asks for redis_factory so that the processes stop before their Redis servers do.
    fleet = Procs(tmp_path, ledger.url)
    try:
        yield fleet
    finally:
        fleet.close()
        for proc in fleet.all:  # shown by pytest only when the test fails
            tail = "\n".join(proc.log().splitlines()[-40:])
            print(f"--- {proc.kind} pid {proc.pid} (exit {proc.popen.returncode}) log tail ---\n{tail}")


@pytest.fixture
def app_for() -> Iterator[Callable[[str], Resq]]:
    """``app_for(url)``: a plain app on ``url`` for the checker (its connections closed at teardown)."""
    made: list[Resq] = []

    def make(url: str) -> Resq:
        app = Resq(url)
        made.append(app)
        return app

    try:
        yield make
    finally:
        for app in made:
            app.broker.close()
