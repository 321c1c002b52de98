"""Redis topologies on loopback for the scale-out tests, started from the ``redis-server`` binary: a Sentinel
set (one master, two replicas, three Sentinels) that can fail over for real (SIGKILL the master)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.redis_server import RedisServer, _ping, find_free_port

#: The master's name the Sentinels watch.
SERVICE = "mymaster"


class Sentinel:
    """One ``redis-server --sentinel`` process on 127.0.0.1 watching ``master_port``."""

    def __init__(self, master_port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="resq-sentinel-"))
        self.port = find_free_port()
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    "protected-mode no",
                    f"dir {self.dir}",
                    f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2",
                    f"sentinel down-after-milliseconds {SERVICE} 1000",
                    f"sentinel failover-timeout {SERVICE} 4000",
                    f"sentinel parallel-syncs {SERVICE} 1",
                ]
            )
            + "\n"
        )
        binary = shutil.which("redis-server") or "redis-server"
        with open(self.dir / "sentinel.log", "ab") as log:
            self.proc = subprocess.Popen(
                [binary, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 10
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sentinel on port {self.port} did not start: {self.log_tail()}")
            time.sleep(0.02)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / "sentinel.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelSet:
    """A master, two replicas and three Sentinels (quorum 2), all on loopback; :meth:`url` is resq's
    ``redis+sentinel://`` url of it."""

    def __init__(self) -> None:
        self.master = RedisServer()
        self.replicas = [RedisServer(extra_args=("--replicaof", "127.0.0.1", str(self.master.port))) for _ in range(2)]
        self.servers = [self.master, *self.replicas]
        self.sentinels = [Sentinel(self.master.port) for _ in range(3)]
        self._wait(lambda: self._known(), "the Sentinels to see both replicas and each other")

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/{db}"

    def master_port(self) -> int:
        """The port of the master the Sentinels name now."""
        client = self.sentinels[0].client()
        try:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)
        finally:
            client.close()

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; returns it (it stays down until restarted)."""
        killed = self.server(self.master_port())
        killed.kill()
        return killed

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until the Sentinels name a new master and it accepts writes; returns its port."""
        self._wait(lambda: self.master_port() != old_port, "a replica to be promoted", timeout)
        port = self.master_port()
        self._wait(lambda: _role(port) == "master", "the new master to take writes", timeout)
        return port

    def _known(self) -> bool:
        client = self.sentinels[0].client()
        try:
            replicas = client.sentinel_slaves(SERVICE)
            peers = client.sentinel_sentinels(SERVICE)
        except redis.RedisError:
            return False
        finally:
            client.close()
        online = [r for r in replicas if "s_down" not in str(r.get("flags", ""))]
        return len(online) == 2 and len(peers) == 2

    @staticmethod
    def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.cleanup()


def _role(port: int) -> str:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        return str(client.info("replication").get("role"))
    except redis.RedisError:
        return "down"
    finally:
        client.close()
