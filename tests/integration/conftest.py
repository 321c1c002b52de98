"""Test-app fixtures shared by the integration tests: each binds a test app module to the test's database."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.apps import core as core_module
from tests.apps import obs as obs_module
from tests.apps import sched as sched_module


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
