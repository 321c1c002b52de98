"""The connection to Redis, the Lua script loader, and the translation of Redis errors into resq's own.

This is where resq meets redis-py. Every other part of :mod:`resq.broker` sends its commands through a
:class:`Connection`; ``resq_scheduler``'s store uses the same connection and loader for its own scripts.

Errors: a lost or refused connection becomes :class:`~resq.errors.BrokerUnavailable`, any other error
Redis answers with becomes :class:`~resq.errors.BrokerError`; no redis-py exception leaves the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import NoScriptError
from redis.retry import Retry as RedisRetry

from resq.broker.keys import Keys
from resq.errors import BrokenKey, BrokerError, BrokerRefused, BrokerUnavailable
from resq.job import TERMINAL_STATUSES, JobStatus
from resq.settings import RedisTarget, Settings, mask_password, parse_redis_url

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:  # the `fast` extra: hiredis packs a command in a third of redis-py's time
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - without hiredis, redis-py packs
    _pack_command = None

__all__ = [
    "CONNECTION_ERRORS",
    "MAX_BLOCK_S",
    "Connection",
    "Part",
    "Pending",
    "Pipeline",
    "ScriptSource",
    "Subscription",
    "as_int",
    "mask_password",
    "publish",
    "raise_first_error",
    "status_of",
    "text",
]


#: How a script names a key of the wrong type (``resq_broken`` in ``_lib.lua``).
_BROKEN_KEY = re.compile(r"WRONGTYPE resq key (?P<key>.+?) holds a \w+, not a \w+")


def refusal_hint(exc: BaseException) -> str | None:
    """What to fix when Redis refused resq for good (credentials, ACL, TLS certificate), else None (an
    outage, or an error of one command)."""
    if isinstance(exc, redis.AuthenticationError):
        return "check the user and password in the url: redis://user:password@host:port/db"
    if isinstance(exc, redis.exceptions.NoPermissionError | redis.exceptions.AuthorizationError):
        return "the ACL user may not run a command or touch a key resq uses: grant it the namespace's keys"
    if isinstance(exc, redis.ConnectionError):
        message = str(exc).upper().replace(" ", "_")
        if "CERTIFICATE_VERIFY_FAILED" in message:
            return "the server's TLS certificate cannot be verified: check ssl_ca_certs in the url, or the certificate"
        if any(alert in message for alert in TLS_ALERTS):
            return (
                "the server refused this client's TLS handshake: set ssl_certfile and ssl_keyfile in the url if "
                "it asks for a client certificate, else check the TLS versions and ciphers both sides allow"
            )
    return None


#: TLS alerts a server sends when it refuses the client's certificate (or the lack of one), or a handshake
#: it cannot agree on: waiting will not change them.
TLS_ALERTS = (
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_BAD_CERTIFICATE",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_HANDSHAKE_FAILURE",
)


#: Errors that mean "Redis is not there right now".
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    # a Redis Cluster while a master fails over or a slot moves: retried like a lost connection
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)
_RETRIED: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, BrokerUnavailable)
#: Upper bound of one blocking call, in seconds; longer waits are made of several (keeps the socket
#: timeout meaningful, so a Redis that stops answering is noticed).
MAX_BLOCK_S = 2.0
#: How often a process looks whether anyone follows the events channel, in seconds.
LISTENERS_EVERY_S = 0.5

T = TypeVar("T")


class ScriptSource:
    """Where the Lua files of one package live: ``<package>/lua/<name>.lua``.

    ``resq`` prepends ``_lib.lua`` (shared helpers) and a line naming the terminal statuses, so that no
    script spells them again; ``header`` is Lua text put before the prelude (``resq``'s: the consumer
    group's name).
    """

    def __init__(self, package: str, names: Sequence[str], prelude: Sequence[str] = (), header: str = "") -> None:
        self.package = package
        self.names = tuple(names)
        self.prelude = tuple(prelude)
        self.header = header

    def source(self, name: str) -> str:
        """The text sent to ``SCRIPT LOAD`` for script ``name``."""
        parts = [_terminal_line(), self.header, *(self._read(p) for p in self.prelude), self._read(f"{name}.lua")]
        return "\n".join(parts)

    def _read(self, file: str) -> str:
        return resources.files(self.package).joinpath("lua", file).read_text(encoding="utf-8")


def _terminal_line() -> str:
    names = ", ".join(f"{status.value} = true" for status in sorted(TERMINAL_STATUSES))
    return f"local RESQ_TERMINAL = {{{names}}}"


class Connection:
    """One app's Redis client (made on first use), its scripts, and the error boundary.

    Args:
        settings: url, timeouts and the retry budget.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: a Redis Cluster: commands are routed by slot (redis-py's cluster client and pipeline), not sent
        #: on one connection
        self.cluster = parse_redis_url(settings.url).kind == "cluster"
        self._client: redis.Redis | None = None
        self._sources: dict[str, ScriptSource] = {}
        self._shas: dict[str, str] = {}
        #: channel -> (monotonic time of the last look, whether anyone listened then)
        self._listened: dict[str, tuple[float, bool]] = {}
        #: each thread's own connection for the hot path (:meth:`_own`), and all of them (to close them)
        self._local = threading.local()
        self._owned: weakref.WeakSet[Any] = weakref.WeakSet()
        #: event loop -> its asyncio client (a client belongs to the loop it was made on)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    @property
    def client(self) -> Any:
        """The redis-py client, for the broker's parts and ``resq_scheduler``'s store only.

        Typed ``Any``: redis-py types replies as unions over its decoding modes; replies are always bytes
        here and the parts decode them.
        """
        if self._client is None:
            self._client = _sync_client(parse_redis_url(self.settings.url), self.settings)
        return self._client

    @property
    def async_client(self) -> Any:
        """The ``redis.asyncio`` client of the running event loop (made on first use in that loop), for
        the broker's ``a…`` methods: producers in ``async`` code (``await task.adelay()``) do not block it."""
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            found = self._async[loop] = _async_client(parse_redis_url(self.settings.url), self.settings)
        return found

    async def ascript(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run script ``name`` on the running loop's client, retrying a lost connection for
        ``broker_retry_s`` (as :meth:`with_retry`, sleeping with ``asyncio.sleep``) and loading the scripts
        again if Redis lost them."""
        limit = time.monotonic() + self.settings.broker_retry_s
        delay = 0.05
        while True:
            try:
                return await self._aevalsha(name, keys, args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if refusal_hint(exc) is not None or time.monotonic() + delay > limit:
                    raise
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 1.0)

    async def _aevalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self.async_client
        if not self._shas:
            await self._aload_scripts(client)
        try:
            return await client.evalsha(self._shas[name], len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or was flushed
            await self._aload_scripts(client)
            return await client.evalsha(self._shas[name], len(keys), *keys, *args)

    async def _aload_scripts(self, client: Any) -> None:
        names = list(self._sources)
        shas = [await client.script_load(self._sources[name].source(name)) for name in names]
        self._shas = dict(zip(names, (text(sha) for sha in shas), strict=True))

    async def aclose(self) -> None:
        """Close the running event loop's ``redis.asyncio`` client (a new one is made on next use)."""
        found = self._async.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.aclose()

    def close(self) -> None:
        """Close the connections of this process (a new pool is made on next use)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        for conn in list(self._owned):
            conn.disconnect()

    def reset_after_fork(self) -> None:
        """Forget connections inherited from a parent process without closing the parent's sockets."""
        self._client = None
        self._owned = weakref.WeakSet()
        self._async = weakref.WeakKeyDictionary()

    def safe_url(self) -> str:
        """The url with its password masked, for messages: ``redis://user:***@host:6379/0``."""
        return mask_password(self.settings.url)

    # -- errors -----------------------------------------------------------------------------------

    def translate(self, exc: Exception) -> Exception:
        """The resq error for a redis-py error (others are returned unchanged). On a Redis Cluster, a lost
        node makes the client read the cluster's slots again (a replica may serve them now)."""
        if self.cluster and isinstance(exc, CONNECTION_ERRORS):
            self.refresh_topology()
        hint = refusal_hint(exc)
        if hint is not None:
            return BrokerRefused(f"Redis at {self.safe_url()} refused resq: {exc} ({hint})")
        if isinstance(exc, CONNECTION_ERRORS):
            return BrokerUnavailable(f"Redis at {self.safe_url()} is unavailable: {exc}")
        broken = _BROKEN_KEY.search(str(exc))
        if broken is not None:
            return BrokenKey(f"Redis refused a command: {exc}", broken["key"])
        if isinstance(exc, redis.RedisError):
            return BrokerError(f"Redis refused a command: {exc}")
        return exc

    def refresh_topology(self) -> None:
        """Read which node serves which slots again (a Redis Cluster's failover or resharding); the
        cluster client does it on ``MOVED``, not when a node is gone. Best effort: the caller retries."""
        if self._client is None or not self.cluster:
            return
        with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException):
            self._client.nodes_manager.initialize()  # type: ignore[attr-defined]

    def with_retry(self, operation: Callable[[], T], deadline_s: float | None = None) -> T:
        """Run ``operation``, retrying a lost connection with capped, jittered backoff.

        Raises:
            BrokerUnavailable: Redis did not answer within ``deadline_s`` (default ``broker_retry_s``).
        """
        limit = time.monotonic() + (self.settings.broker_retry_s if deadline_s is None else deadline_s)
        delay = 0.05
        while True:
            try:
                return operation()
            except _RETRIED as exc:
                if refusal_hint(exc) is not None:
                    raise self.translate(exc) from exc  # waiting will not fix it
                if self.cluster and not isinstance(exc, BrokerUnavailable):
                    self.refresh_topology()
                if time.monotonic() + delay > limit:
                    raise BrokerUnavailable(
                        f"Redis at {self.safe_url()} is unavailable: {exc} (gave up after retrying)"
                    ) from exc
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 1.0)

    # -- scripts ----------------------------------------------------------------------------------

    def add_scripts(self, source: ScriptSource) -> None:
        """Make the scripts of ``source`` callable by name (loaded with the others, in one round trip)."""
        if all(name in self._sources for name in source.names):
            return  # already known (loaded with the others)
        for name in source.names:
            self._sources[name] = source
        self._shas = {}

    def load_scripts(self) -> None:
        """Load every script in one round trip (again after Redis restarted and forgot them); on a Redis
        Cluster, on every master (one call per script, which the cluster client sends to each)."""
        if self.cluster:
            self._shas = {
                name: text(self.client.script_load(source.source(name))) for name, source in self._sources.items()
            }
            return
        pipe = self.client.pipeline(transaction=False)
        names = list(self._sources)
        for name in names:
            pipe.script_load(self._sources[name].source(name))
        self._shas = dict(zip(names, (text(sha) for sha in pipe.execute()), strict=True))

    def eval(self, target: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Queue (on a pipeline) or run (on the client) script ``name``."""
        if not self._shas:
            self.load_scripts()
        if self.cluster and not isinstance(target, _Batch):  # the cluster pipeline sends it to its keys' node
            command = ("EVALSHA", self._shas[name], len(keys), *keys, *args)
            return target.execute_command(*command, **self._routed(command))
        return target.evalsha(self._shas[name], len(keys), *keys, *args)

    def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run script ``name`` now (on this thread's own connection, as :meth:`fast_pipeline` sends);
        reload the scripts once if Redis lost them."""
        return self.fast_pipeline(lambda batch: self.eval(batch, name, keys, args))[0]

    def pipeline(self, build: Callable[[Pipeline], None]) -> list[Any]:
        """Run the commands ``build`` adds in one round trip; reload scripts once if Redis lost them."""

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            build(pipe)
            return list(pipe.execute(raise_on_error=False))

        return self._round_trip(run)

    def listened(self, channel: str, look: bool = True) -> str:
        """``channel`` if anyone subscribes to it, else ``''`` (what scripts take: publish only when
        someone listens). Looked up at most every ``LISTENERS_EVERY_S`` per channel, so a new follower is
        served within that time; a lookup that fails counts as "listened" (publishing is harmless).
        Without ``look`` (``async`` code, which must not wait on a blocking call) an answer that is due
        for a look counts as "listened" instead."""
        now = time.monotonic()
        looked = self._listened.get(channel)
        if not look and (looked is None or now - looked[0] >= LISTENERS_EVERY_S):
            return channel
        if looked is None or now - looked[0] >= LISTENERS_EVERY_S:
            try:
                count = self._subscribers(channel)
            except redis.RedisError:
                count = 1
            looked = (now, count > 0)
            self._listened[channel] = looked
        return channel if looked[1] else ""

    def _subscribers(self, channel: str) -> int:
        """How many clients subscribe to ``channel``; on a Redis Cluster, on every node (``PUBSUB NUMSUB``
        counts a node's own subscribers, and redis-py would ask one node only)."""
        if self.cluster:
            found = self.client.pubsub_numsub(channel, target_nodes=redis.cluster.RedisCluster.ALL_NODES)
        else:
            found = self.client.pubsub_numsub(channel)
        return sum(int(n) for _, n in found)

    def fast_pipeline(self, build: Callable[[Any], None], *, keep_errors: bool = False) -> list[Any]:
        """As :meth:`pipeline`, for the hot path's plain positional commands (scripts, counters, acks):
        packed and sent on this thread's own connection directly, without redis-py's pipeline machinery
        (a third of a short pipeline's cost). With ``keep_errors`` error replies are returned in their
        place (as redis-py exceptions) instead of the first being raised."""

        def run() -> list[Any]:
            batch = _Batch()
            build(batch)
            return self._cluster_send(batch.commands) if self.cluster else self._send(batch.commands)

        return self._round_trip(run, keep_errors=keep_errors)

    def _cluster_send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """``commands`` through the cluster client's pipeline: each sent to the node of its key's slot (in
        one round trip per node), ``MOVED`` and ``ASK`` followed; replies in order, errors in place. A batch
        with a ``WAIT`` (an enqueue with ``wait_replicas``) goes whole to its first key's node, on one
        connection: ``WAIT`` counts the replicas of the writes made on its own connection."""
        if any(command[0] == "WAIT" for command in commands):
            return self._send_to_node(commands)
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command, **self._routed(command))
        return list(pipe.execute(raise_on_error=False))

    def _routed(self, command: tuple[Any, ...]) -> dict[str, Any]:
        """Where the cluster pipeline sends a script call: the node of its first key's slot, named here
        (redis-py would ask Redis for the keys of every ``EVALSHA`` with ``COMMAND GETKEYS``, a round trip
        each). A ``MOVED`` or ``ASK`` reply is followed as for any command: its retry finds the node by
        itself."""
        if command[0] != "EVALSHA" or not int(command[2]):
            return {}
        return {"target_nodes": self.client.nodes_manager.get_node_from_slot(self.client.keyslot(command[3]))}

    def send_later(self, build: Callable[[Any], None]) -> Pending:
        """As :meth:`fast_pipeline`, in two halves: the commands go out now (on a connection of the
        pool), their replies are read by :meth:`Pending.replies`, so the caller can do something else
        while Redis runs them. A lost connection makes the replies come from a retried round trip."""
        if self.cluster:  # the replies come from one round trip per node, made when they are read
            return Pending(self, build, None)
        pool = self.client.connection_pool
        try:
            if not self._shas:
                self.load_scripts()
            conn = pool.get_connection()
        except redis.ConnectionError:  # Redis away (or refusing resq): the replies' round trip retries
            return Pending(self, build, None)
        batch = _Batch()
        build(batch)
        try:
            conn.send_packed_command(_packed(conn, batch.commands))
        except redis.ConnectionError:
            conn.disconnect()
            pool.release(conn)
            return Pending(self, build, None)
        return Pending(self, build, conn, len(batch.commands))

    def _round_trip(self, run: Callable[[], list[Any]], *, keep_errors: bool = False) -> list[Any]:
        """The replies of ``run`` (one round trip), run once more after reloading the scripts if Redis
        lost them; the first error reply is raised (unless ``keep_errors``)."""
        if not self._shas:
            self.load_scripts()
        replies = run()
        if any(isinstance(r, NoScriptError) for r in replies):
            self.load_scripts()  # Redis restarted or was flushed
            replies = run()
        return replies if keep_errors else raise_first_error(replies)

    def _send_to_node(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """``commands`` (a script first: its first key names the slot) on one connection to that slot's node;
        a slot that moved meanwhile reads the slots again and fails like a lost connection (retried)."""
        key = commands[0][3]
        node_client = self.client.get_redis_connection(self.client.get_node_from_key(key))
        pool = node_client.connection_pool
        conn = pool.get_connection()
        try:
            replies = _exchange(conn, commands)
        finally:
            pool.release(conn)
        if any(isinstance(r, redis.exceptions.AskError) for r in replies):  # MOVED too: a subclass
            self.refresh_topology()
            raise redis.ConnectionError(f"the slot of {key!r} moved to another node")
        return replies

    def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        return _exchange(self._own(), commands)

    def _own(self) -> Any:
        """This thread's own connection to send the hot path's commands on: made from the client's pool
        settings on first use (and again for a new client, or in a forked process: a socket is never
        shared with a parent), then kept, so a round trip costs no pool checkout (a quarter of its CPU)."""
        client, local, pid = self.client, self._local, os.getpid()
        if getattr(local, "client", None) is not client or local.pid != pid:
            local.conn, local.client, local.pid = client.connection_pool.make_connection(), client, pid
            self._owned.add(local.conn)
        return local.conn

    def subscribe(self, channel: str) -> Subscription:
        """A pub/sub subscription to ``channel``."""
        return Subscription(self, channel)

    def block_each(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run blocking commands (``XREADGROUP … BLOCK``) of different slots of a Redis Cluster at once, each
        on its own connection to its slot's node, in its own thread; as soon as one answers with something,
        the others are woken (``CLIENT UNBLOCK``: they answer nil, having taken nothing). Returns each
        command's raw reply (None for nil), in order. One blocking call per slot, no polling."""
        if len(commands) == 1:
            return [self._block_one(commands[0], threading.Event(), {})]
        woken = threading.Event()
        blocked: dict[int, tuple[Any, int]] = {}  # thread index -> (node client, client id)
        replies: list[Any] = [None] * len(commands)
        errors: list[BaseException] = []

        def run(index: int) -> None:
            try:
                replies[index] = self._block_one(commands[index], woken, blocked, index)
            except BaseException as exc:
                errors.append(exc)
            if replies[index] is not None or errors:
                woken.set()

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(commands))]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            if woken.wait(0.05):  # one answered: wake the others (again, for one that blocked just after)
                self._unblock(blocked)
                time.sleep(0.002)
        if errors:
            raise errors[0]
        return replies

    def _block_one(
        self, command: tuple[Any, ...], woken: threading.Event, blocked: dict[int, tuple[Any, int]], index: int = 0
    ) -> Any:
        """One blocking command on a connection of its own to the node of its slot (its first stream key)."""
        key = command[command.index("STREAMS") + 1]
        node_client = self.client.get_redis_connection(self.client.get_node_from_key(key))
        pool = node_client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_command("CLIENT", "ID")
            blocked[index] = (node_client, int(conn.read_response()))
            if woken.is_set():  # another read answered before this one blocked
                return None
            conn.send_command(*command)
            return conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        finally:
            blocked.pop(index, None)
            pool.release(conn)

    @staticmethod
    def _unblock(blocked: dict[int, tuple[Any, int]]) -> None:
        """Wake the commands still blocked (each answers nil: it took nothing)."""
        for node_client, client_id in list(blocked.values()):
            with contextlib.suppress(redis.RedisError):
                node_client.execute_command("CLIENT", "UNBLOCK", client_id)


def _options(settings: Settings) -> dict[str, Any]:
    """The connection options of every client resq makes."""
    s = settings
    return {
        "socket_connect_timeout": s.connect_timeout,
        "socket_timeout": s.socket_timeout,
        "socket_keepalive": True,
        "health_check_interval": 30,
    }


def _sentinel_options(target: RedisTarget, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options of a Sentinel url: the Sentinels' own (their password, TLS) and the master's (its
    database, credentials, TLS)."""
    options = _options(settings)
    asked = {"password": target.option("sentinel_password"), "username": target.option("sentinel_username")}
    sentinels = {**options, **{k: v for k, v in asked.items() if v}, **({"ssl": True} if target.tls else {})}
    master = {**options, "db": target.db, "username": target.username, "password": target.password}
    if target.tls:
        master["ssl"] = True
    return sentinels, master


def _cluster_options(target: RedisTarget, settings: Settings) -> dict[str, Any]:
    """The options of a Redis Cluster client: its startup nodes and credentials."""
    options = {k: v for k, v in _options(settings).items() if k != "health_check_interval"}
    return {**options, "username": target.username, "password": target.password, "ssl": target.tls}


def _sync_client(target: RedisTarget, settings: Settings) -> Any:
    """The redis-py client of ``target``: one Redis from its url, the master a set of Sentinels names
    (its connections ask the Sentinels again for the master after a failover), or a Redis Cluster (which
    routes each command to the node of its key's slot, following ``MOVED`` and ``ASK``)."""
    retry = RedisRetry(NoBackoff(), 0)  # resq retries, with its own budget (with_retry)
    if target.kind == "single":
        return redis.Redis.from_url(target.url, retry=retry, **_options(settings))
    if target.kind == "cluster":
        nodes = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
        return redis.cluster.RedisCluster(startup_nodes=nodes, **_cluster_options(target, settings))
    sentinels, master = _sentinel_options(target, settings)
    found = redis.sentinel.Sentinel(list(target.nodes), sentinel_kwargs=sentinels, **master)  # type: ignore[no-untyped-call]
    return found.master_for(target.service, retry=retry)  # type: ignore[no-untyped-call]


def _async_client(target: RedisTarget, settings: Settings) -> Any:
    """:func:`_sync_client` for ``redis.asyncio``."""
    if target.kind == "single":
        return redis.asyncio.Redis.from_url(target.url, **_options(settings))
    if target.kind == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.nodes]
        return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **_cluster_options(target, settings))
    sentinels, master = _sentinel_options(target, settings)
    found = redis.asyncio.sentinel.Sentinel(list(target.nodes), sentinel_kwargs=sentinels, **master)  # type: ignore[no-untyped-call]
    return found.master_for(target.service)


class Pending:
    """The replies of commands sent by :meth:`Connection.send_later`, read on demand (once)."""

    def __init__(self, connection: Connection, build: Callable[[Any], None], conn: Any, count: int = 0) -> None:
        self._connection, self._build, self._conn, self._count = connection, build, conn, count

    def replies(self) -> list[Any]:
        """The replies, in order; the first error reply is raised (as by :meth:`Connection.fast_pipeline`)."""
        c, conn = self._connection, self._conn
        if conn is None:  # the send failed: one retried round trip
            return c.with_retry(lambda: c.fast_pipeline(self._build))
        pool, self._conn = c.client.connection_pool, None
        try:
            replies = [_reply(conn) for _ in range(self._count)]
        except redis.ConnectionError:
            conn.disconnect()
            return c.with_retry(lambda: c.fast_pipeline(self._build))  # ran or not: ids make it idempotent
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        if any(isinstance(r, NoScriptError) for r in replies):
            return c.fast_pipeline(self._build)  # Redis lost the scripts: reloads them and runs again
        return raise_first_error(replies)

    def close(self) -> None:
        """Drop the connection of replies that will not be read (it holds them: no one else may use it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self._connection.client.connection_pool.release(conn)


class _Batch:
    """Collects plain commands for :meth:`Connection.fast_pipeline`: ``batch.incrby(key, 2)`` records
    ``("INCRBY", key, 2)`` (positional arguments only, as the hot path sends them)."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        command = name.upper()

        def record(*args: Any) -> None:
            self.commands.append((command, *args))

        return record


def publish(pipe: Any, channel: str, message: bytes | int) -> None:
    """Queue ``PUBLISH channel message`` on ``pipe`` (a redis-py pipeline) as a plain command: redis-py's
    Redis Cluster pipeline refuses its ``publish()`` method, not the command (a Cluster forwards the
    message to every node itself)."""
    pipe.execute_command("PUBLISH", channel, message)


def raise_first_error(replies: list[Any]) -> list[Any]:
    """``replies``, unless one is an error reply: then the first of them is raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _packed(conn: Any, commands: list[tuple[Any, ...]]) -> list[bytes]:
    """The commands in Redis's protocol, as ``send_packed_command`` takes them."""
    if _pack_command is None:
        return list(conn.pack_commands(commands))
    return [b"".join([_pack_command(command) for command in commands])]


def _exchange(conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` on ``conn`` in one write and read their replies (error replies in place)."""
    try:
        # Connect through the connection's own connect(): a Sentinel-managed one asks the Sentinels for the
        # master there (send_packed_command's implicit connect would go to its default address).
        conn.connect()
        conn.send_packed_command(_packed(conn, commands))
        return [_reply(conn) for _ in commands]
    except BaseException:
        conn.disconnect()  # a reply left unread would be the next caller's; it reconnects on next use
        raise


def _reply(conn: Any) -> Any:
    """One reply, an error reply as its exception (to be raised once every reply is read)."""
    try:
        return conn.read_response()
    except redis.ResponseError as exc:
        return exc


class Subscription:
    """A pub/sub subscription to one channel; read with :meth:`message`.

    Connection errors surface as ``BrokerUnavailable``; the subscription then reconnects on the next read.
    """

    def __init__(self, connection: Connection, channel: str) -> None:
        self._connection = connection
        self.channel = channel
        self._pubsub: Any = None

    def message(self, timeout_s: float = 0.0) -> bytes | None:
        """The next message's payload, waiting up to ``timeout_s`` (0: only what already arrived).

        The subscription's own confirmations are skipped without ending the wait (redis-py hands them
        back as ``None``, which would otherwise cut a wait short the first time).
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            found = self._next(max(deadline - time.monotonic(), 0.0))
            if found is not None and found.get("type") == "message":
                data = found["data"]
                return data if isinstance(data, bytes) else str(data).encode()
            if found is None and time.monotonic() >= deadline:
                return None

    def _next(self, timeout_s: float) -> Any:
        """redis-py's next item (a message, a confirmation, or None), subscribing first if needed."""
        try:
            if self._pubsub is None:
                self._pubsub = self._connection.client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.channel)
            return self._pubsub.get_message(timeout=timeout_s)
        except redis.RedisError as exc:
            self._drop()
            raise self._connection.translate(exc) from exc

    def close(self) -> None:
        """Unsubscribe and close the subscription's connection."""
        self._drop()

    def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(redis.RedisError):  # closing a broken connection must not mask why it broke
                pubsub.close()


class Part:
    """A part of the broker (queues, jobs, workers, stats, admin).

    Every public method of a subclass runs at the error boundary: a redis-py error raised inside it
    leaves as :class:`~resq.errors.BrokerUnavailable` or :class:`~resq.errors.BrokerError`.

    Args:
        connection: the app's connection.
        keys: the app's key names.
    """

    def __init__(self, connection: Connection, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys
        self.settings = connection.settings

    @property
    def _redis(self) -> Any:
        return self.connection.client

    def _set_aside(self, key: str) -> str:
        """Rename ``key`` to ``Keys.broken`` (see ``Admin.set_aside``); "" when it was gone."""
        aside = self.keys.broken(key, int(time.time() * 1000))
        try:
            self._redis.rename(key, aside)
        except redis.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return ""
            raise
        return aside

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and inspect.isfunction(value):
                setattr(cls, name, _at_boundary(value))


def _at_boundary(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a part's method so that redis-py errors leave it as resq errors."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wait(self: Part, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except redis.RedisError as exc:
                raise self.connection.translate(exc) from exc

        return wait
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generate(self: Part, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(self, *args, **kwargs)
            except redis.RedisError as exc:
                raise self.connection.translate(exc) from exc

        return generate

    @functools.wraps(fn)
    def call(self: Part, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise self.connection.translate(exc) from exc

    return call


def status_of(raw: bytes | str | None) -> JobStatus | None:
    """A status read from Redis (None when absent or not a status)."""
    if not raw:
        return None
    try:
        return JobStatus(text(raw))
    except ValueError:
        return None


def as_int(value: Any) -> int:
    """A reply or field as an integer (0 when absent or not a number)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def text(value: bytes | str) -> str:
    """A reply as text (invalid UTF-8 replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
