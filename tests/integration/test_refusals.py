"""Redis refusing resq for good (wrong password, an ACL user without a permission) is not an outage: the
worker and the CLI stop at once with one line saying what to fix, instead of retrying for ever."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import RunResq, RunWorker
from tests.helpers import read_log
from tests.redis_server import RedisServer

APP = "tests.apps.runtime:app"
PASSWORD = "s3cret-pass"


@pytest.fixture
def guarded() -> Iterator[RedisServer]:
    """A redis-server that asks for a password, with an ACL user who may touch no resq key."""
    server = RedisServer()
    admin = redis.Redis(port=server.port)
    admin.acl_setuser("outsider", enabled=True, passwords=[f"+{PASSWORD}"], keys=["other:*"], commands=["+@all"])
    admin.config_set("requirepass", PASSWORD)  # after start: the server's readiness check pings without one
    admin.close()
    try:
        yield server
    finally:
        server.cleanup()


def _url(server: RedisServer, auth: str) -> str:
    return f"redis://{auth}127.0.0.1:{server.port}/0"


def _exits(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> tuple[int, str]:
    code = proc.wait(timeout=timeout)  # no retrying for ever: it exits by itself
    return code, read_log(proc)


@pytest.mark.parametrize(
    ("auth", "said"),
    [
        ("", "user and password"),  # no password given
        (":wrong@", "user and password"),  # a wrong one
        (f"outsider:{PASSWORD}@", "ACL user"),  # a user who may not touch resq's keys
    ],
)
def test_a_worker_refused_by_redis_stops_at_once_with_one_line(
    guarded: RedisServer, run_worker: RunWorker, auth: str, said: str
) -> None:
    code, log = _exits(run_worker(APP, "--no-banner", url=_url(guarded, auth)))
    assert code == 2, log
    assert "refused resq" in log and said in log, log
    assert "Traceback" not in log and "redis_unavailable" not in log, log


def test_the_cli_refused_by_redis_says_so_in_one_line(guarded: RedisServer, run_resq: RunResq) -> None:
    code, log = _exits(run_resq("stats", url=_url(guarded, ":wrong@")))
    assert code == 2 and "refused resq" in log and "Traceback" not in log, log
    assert len(log.strip().splitlines()) == 1, log
