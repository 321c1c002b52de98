"""Redis topologies on loopback for the scale-out tests, started from the ``redis-server`` binary: a Sentinel
set (one master, two replicas, three Sentinels) that can fail over for real (SIGKILL the master), and a Redis
Cluster (the suite's ``[cluster]`` runs and the scale-out tests); :func:`client_for` is a test's client of
either kind of url."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypeAlias

import redis
import redis.cluster

from tests.redis_server import RedisServer, _ping, find_free_port

#: The master's name the Sentinels watch.
SERVICE = "mymaster"
#: The url scheme of a Redis Cluster (resq's ``redis+cluster://host:port,host:port``).
CLUSTER_SCHEME = "redis+cluster://"
#: What a test talks to Redis with: one server's client, or a Redis Cluster's.
RedisClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster


def client_for(url: str) -> RedisClient:
    """A test's own client of ``url``: ``redis.Redis`` for one server, a :func:`cluster_client` for a
    ``redis+cluster://`` url."""
    if not url.startswith(CLUSTER_SCHEME):
        return redis.Redis.from_url(url)
    host, _, port = url.removeprefix(CLUSTER_SCHEME).split(",")[0].rpartition(":")
    return cluster_client(host, int(port))


def cluster_client(host: str, port: int) -> redis.cluster.RedisCluster:
    """A Redis Cluster client whose whole-database commands see every master: ``KEYS`` and ``DBSIZE``
    (which redis-py sends to one node) are sent to each master, and ``PUBSUB NUMSUB`` (counted per node)
    to every node, their replies merged; so ``dbsize() == 0`` means the cluster is empty."""
    client = redis.cluster.RedisCluster(host=host, port=port)
    for command in ("KEYS", "DBSIZE"):
        client.command_flags[command] = redis.cluster.RedisCluster.PRIMARIES
    client.command_flags["PUBSUB NUMSUB"] = redis.cluster.RedisCluster.ALL_NODES
    return client


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


class Cluster:
    """A Redis Cluster of 3 masters with a replica each (or ``replicas``) on loopback (``redis-cli --cluster
    create … --cluster-replicas 1``); :meth:`url` is resq's ``redis+cluster://`` url of it."""

    def __init__(self, masters: int = 3, replicas: int = 1) -> None:
        args = (
            "--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--cluster-config-file", "nodes.conf",
            "--repl-diskless-sync-delay", "0",  # a replica syncs at once (the default waits 5 s for others)
        )  # fmt: skip
        self.replicas = replicas
        self.servers = [RedisServer(extra_args=args) for _ in range(masters * (1 + replicas))]
        cli = shutil.which("redis-cli") or "redis-cli"
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        done = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            self.close()
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        SentinelSet._wait(self._ok, "every node to see the cluster ok", 30)
        SentinelSet._wait(self._replicated, "every replica in sync with its master", 30)

    def _replicated(self) -> bool:
        """Every replica's link to its master is up (a replica that never synced cannot take over)."""
        synced = 0
        for server in self.servers:
            client = redis.Redis(port=server.port, socket_timeout=2)
            try:
                info = client.info("replication")
            except redis.RedisError:
                return False
            finally:
                client.close()
            if info.get("role") == "slave":
                if info.get("master_link_status") != "up":
                    return False
                synced += 1
        return synced == len(self.servers) * self.replicas // (1 + self.replicas)

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers[:3])

    def client(self) -> redis.cluster.RedisCluster:
        return cluster_client("127.0.0.1", self.servers[0].port)

    def flush(self) -> None:
        """``FLUSHALL`` on every master (their replicas follow): an empty cluster for the next test."""
        for port in self.masters():
            client = redis.Redis(port=port, socket_timeout=5)
            try:
                client.flushall()
            finally:
                client.close()

    def masters(self) -> dict[int, list[tuple[int, int]]]:
        """Each live master's port -> its ranges of slots (first, last), lowest first."""
        for server in self.servers:
            if not server.running:
                continue
            client = redis.Redis(port=server.port, socket_timeout=2)
            try:
                slots = client.execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            finally:
                client.close()
            found: dict[int, list[tuple[int, int]]] = {}
            for entry in sorted(slots, key=lambda e: int(e[0])):
                found.setdefault(int(entry[2][1]), []).append((int(entry[0]), int(entry[1])))
            return found
        return {}

    def master_of(self, key: str) -> int:
        """The port of the master that serves ``key``."""
        slot = redis.cluster.key_slot(key.encode())
        return next(port for port, ranges in self.masters().items() for low, high in ranges if low <= slot <= high)

    def queues_on_each_master(self, namespace: str = "resq") -> dict[int, str]:
        """One queue name per master (its keys ``{namespace:name}`` on that master)."""
        found: dict[int, str] = {}
        for n in range(1000):
            name = f"q{n}"
            found.setdefault(self.master_of(f"{{{namespace}:{name}}}"), name)
            if len(found) == len(self.masters()):
                break
        return found

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def queue_in_slots(self, low: int, high: int, namespace: str = "resq") -> str:
        """A queue name whose keys' slot is in ``low``..``high``."""
        return next(
            name
            for name in (f"m{n}" for n in range(100_000))
            if low <= redis.cluster.key_slot(f"{{{namespace}:{name}}}".encode()) <= high
        )

    def node_id(self, port: int) -> str:
        client = redis.Redis(port=port, socket_timeout=2)
        try:
            return client.execute_command("CLUSTER", "MYID").decode()
        finally:
            client.close()

    def reshard(self, from_port: int, to_port: int, slots: int) -> subprocess.Popen[str]:
        """Start ``redis-cli --cluster reshard`` moving ``slots`` slots (the first of the source's range,
        with their keys) from one master to another; returns the running process."""
        cli = shutil.which("redis-cli") or "redis-cli"
        return subprocess.Popen(
            [
                cli, "--cluster", "reshard", f"127.0.0.1:{from_port}",
                "--cluster-from", self.node_id(from_port), "--cluster-to", self.node_id(to_port),
                "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    def _ok(self) -> bool:
        """Every live node sees the cluster ok."""
        for server in self.servers:
            if not server.running:
                continue
            client = redis.Redis(port=server.port, socket_timeout=2)
            try:
                if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO").decode():
                    return False
            except redis.RedisError:
                return False
            finally:
                client.close()
        return True

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> None:
        """Wait until a replica serves the slots of the (killed) master ``old_port`` and the cluster is ok."""
        SentinelSet._wait(lambda: old_port not in self.masters(), f"a replica to take over from {old_port}", timeout)
        SentinelSet._wait(self._ok, "the cluster to be ok again", timeout)

    def close(self) -> None:
        for server in self.servers:
            server.cleanup()
