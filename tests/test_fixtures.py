"""The test infrastructure itself: a real Redis, clean databases, kill/restart/pause."""

from __future__ import annotations

import pytest
import redis
import redis.cluster

from tests.helpers import wait_for
from tests.redis_server import RedisServer
from tests.topology import Cluster, RedisClient


def test_server_answers(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    assert redis_client.ping() is True
    assert redis_server.port != 6379
    assert redis_server.url(3) == f"redis://127.0.0.1:{redis_server.port}/3"


@pytest.mark.parametrize("run", [1, 2])
def test_database_is_clean(redis_client: redis.Redis, run: int) -> None:
    # Whichever of the two runs first leaves a key behind; the other must not see it.
    assert redis_client.dbsize() == 0
    redis_client.set("leftover", run)
    assert redis_client.dbsize() == 1


@pytest.mark.cluster
@pytest.mark.parametrize("run", [1, 2])
def test_a_cluster_marked_test_runs_in_each_mode_on_a_clean_database(
    redis_mode: str, redis_url: str, redis_client: RedisClient, request: pytest.FixtureRequest, run: int
) -> None:
    # Whichever run of a mode comes first leaves keys behind (on every master of the cluster): the other
    # must not see them, and KEYS and DBSIZE count them all.
    assert request.node.name.endswith(f"[{redis_mode}-{run}]")
    assert redis_client.dbsize() == 0
    names = [f"leftover:{n}" for n in range(30)]
    for name in names:
        redis_client.set(name, run)
    assert redis_client.dbsize() == 30
    assert sorted(k.decode() for k in redis_client.keys("leftover:*")) == sorted(names)
    if redis_mode == "single":
        assert isinstance(redis_client, redis.Redis) and redis_url.startswith("redis://")
        return
    assert isinstance(redis_client, redis.cluster.RedisCluster) and redis_url.startswith("redis+cluster://")
    cluster: Cluster = request.getfixturevalue("redis_cluster")
    assert len({cluster.master_of(name) for name in names}) == 3  # the keys are on every master


def test_private_redis_kill_and_restart(private_redis: RedisServer) -> None:
    client = redis.Redis.from_url(private_redis.url(), socket_timeout=1)
    try:
        assert client.ping()
        private_redis.kill()
        assert not private_redis.running
        with pytest.raises(redis.ConnectionError):
            client.ping()
        private_redis.restart()
        fresh = redis.Redis.from_url(private_redis.url(), socket_timeout=1)
        try:
            assert fresh.ping()
        finally:
            fresh.close()
        # The old client reconnects on its own once the server is back.
        wait_for(client.ping, timeout=5, message="old client reconnects")
    finally:
        client.close()


def test_private_redis_pause_and_resume(private_redis: RedisServer) -> None:
    client = redis.Redis.from_url(private_redis.url(), socket_timeout=0.5)
    try:
        assert client.ping()
        private_redis.pause()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        private_redis.resume()
        wait_for(client.ping, timeout=5, message="client works after resume")
    finally:
        client.close()


def test_wait_for_times_out_with_message() -> None:
    with pytest.raises(AssertionError, match="never true"):
        wait_for(lambda: False, timeout=0.2, message="never true")
