"""Fixtures shared by the integration tests: the test app modules, each bound to the test's database, and
the ``resq`` command line run in this process against that database."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner, Result

from resq.cli import main
from tests.apps import core as core_module
from tests.apps import obs as obs_module
from tests.apps import paths as paths_module
from tests.apps import sched as sched_module
from tests.topology import RedisClient, client_for


@pytest.fixture
def core(redis_url: str) -> ModuleType:
    """``tests.apps.core`` (issue 2's tasks) bound to this test's database."""
    core_module.bind(redis_url)
    return core_module


@pytest.fixture
def obs(redis_url: str) -> ModuleType:
    """``tests.apps.obs`` (observability tasks) bound to this test's database."""
    obs_module.bind(redis_url)
    return obs_module


@pytest.fixture
def sched(redis_url: str) -> ModuleType:
    """``tests.apps.sched`` (scheduler tasks) bound to this test's database."""
    sched_module.bind(redis_url)
    return sched_module


@pytest.fixture
def paths(redis_url: str) -> Iterator[ModuleType]:
    """``tests.apps.paths`` (the one enqueue and failure paths, fencing) bound to this test's database."""
    paths_module.bind(redis_url)
    yield paths_module
    paths_module.app.broker.close()


@pytest.fixture
def adder(redis_url: str) -> Iterator[Any]:
    """An app with one task, ``add(x, y)`` (named ``add``), the ``default`` queue's group made: for tests of
    the hot path's data (commands, envelopes, fencing) that drive the broker directly."""
    from resq import Resq

    app = Resq(redis_url)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    app.broker.queues.ensure_groups(["default"])
    yield app
    app.broker.close()


@pytest.fixture
def cli(redis_url: str) -> Any:
    """``cli(*args, input=None)``: run ``resq ARGS`` with click's runner on this test's database (no ``-A``
    from the environment)."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            main, list(args), env={"RESQ_REDIS_URL": redis_url, "RESQ_APP": None}, input=input, catch_exceptions=False
        )

    return invoke


@pytest.fixture
def bind_app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``bind_app(app, queues=("default",))``: point a test app module's ``app`` (and the worker
    subprocesses the test starts, through ``RESQ_REDIS_URL``) at this test's database, make its queues'
    groups, and return a client of that database; both are closed after the test."""
    bound: list[Any] = []

    def bind(app: Any, queues: tuple[str, ...] = ("default",)) -> RedisClient:
        monkeypatch.setenv("RESQ_REDIS_URL", redis_url)
        app.reconfigure(url=redis_url)
        app.broker.queues.ensure_groups(list(queues))
        client = client_for(redis_url)
        bound.append((app, client))
        return client

    yield bind
    for app, client in bound:
        client.close()
        app.broker.close()
