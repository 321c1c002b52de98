"""Settings of a :class:`resq.Resq` app: defaults, environment, validation."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from resq.errors import ConfigError, did_you_mean

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_URL",
    "KEYS_ENV",
    "NAME_RE",
    "SHARD_SEP",
    "RedisTarget",
    "Settings",
    "encryption_keys",
    "mask_password",
    "parse_redis_url",
    "resolve_encryption_keys",
    "resolve_namespace",
    "resolve_url",
    "validate_name",
]

#: Queue names and namespaces: letters, digits, ``_ . -``; no braces or colons (they shape keys).
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
#: What joins a sharded queue's name and a shard's number: ``ingest#3`` (``@app.task(shards=N)``).
SHARD_SEP = "#"
#: A shard of a queue: its name, ``#`` and its number.
SHARD_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}#[0-9]{1,4}$")


def validate_name(value: str, what: str) -> str:
    """Return ``value`` if it is a valid queue name or namespace (a queue's shard, ``name#3``, too, for
    a queue name), else raise ``ConfigError``."""
    shard = what == "queue name" and isinstance(value, str) and SHARD_RE.fullmatch(value)
    if not shard and (not isinstance(value, str) or not NAME_RE.fullmatch(value)):
        raise ConfigError(f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '.' or '-' (no braces or colons)")
    return value


def redact_names(names: Any, what: str) -> tuple[str, ...]:
    """``names`` as a tuple of argument names, or ``ConfigError`` (a bare string is refused: it would be
    read as its letters)."""
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{what} must be a list of argument names, got {names!r}")
    return tuple(names)


#: Key ids of ``encryption_keys``: 1-32 letters, digits, ``_ . -`` (no ``:`` or ``,``: they shape the
#: variable; at most 32, so that a key written where its id goes is never echoed in a message).
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
#: The environment variable holding the encryption keys: ``id1:base64key,id2:base64key``, current first.
KEYS_ENV = "RESQ_ENCRYPTION_KEYS"
#: How to make a key, for the messages of a bad one.
_KEYGEN = "a new key: python -c 'import resq; print(resq.generate_key())'"


def encryption_keys(value: Any) -> tuple[tuple[str, bytes], ...]:
    """``value`` as ``((key id, 32-byte key), …)``, the current key first, or ``ConfigError`` in one line
    (never showing a key).

    ``value`` is the text ``"id1:base64key,id2:base64key"`` (as ``RESQ_ENCRYPTION_KEYS`` holds it), a
    mapping ``{id: key}`` in order, or a sequence of ``(id, key)`` pairs; each key is 32 raw bytes or
    their urlsafe base64 (44 characters; the padding ``=`` may be left out).
    """
    if isinstance(value, str):
        pairs: list[tuple[Any, Any]] = [_split_item(item) for item in value.split(",") if item.strip()]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        try:
            pairs = [(key_id, key) for key_id, key in value]
        except (TypeError, ValueError):
            raise ConfigError(
                "setting encryption_keys must be 'id:base64key,…', a mapping {id: key} or (id, key) pairs"
            ) from None
    keys = tuple((_key_id(key_id), _key_bytes(key_id, key)) for key_id, key in pairs)
    ids = [key_id for key_id, _ in keys]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"setting encryption_keys names a key id twice ({', '.join(ids)}): each id names one key")
    return keys


def _split_item(item: str) -> tuple[str, str]:
    key_id, colon, key = item.strip().partition(":")
    if not colon:  # the item may be a bare key: never echo it
        raise ConfigError(f"an item of encryption_keys has no id: write id:base64key,… (e.g. k1:<key>); {_KEYGEN}")
    return key_id.strip(), key.strip()


def _key_id(key_id: Any) -> str:
    if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
        shown = repr(key_id) if isinstance(key_id, str) and len(key_id) <= 32 else f"of {len(str(key_id))} characters"
        raise ConfigError(
            f"invalid encryption key id {shown}: use 1-32 letters, digits, '_', '.' or '-' (id:key, the id first)"
        )
    return key_id


def _key_bytes(key_id: str, key: Any) -> bytes:
    if isinstance(key, str):
        try:
            key = base64.b64decode(key + "=" * (-len(key) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"encryption key {key_id!r} is not urlsafe base64; {_KEYGEN}") from None
    if not isinstance(key, bytes):
        raise ConfigError(f"encryption key {key_id!r} must be 32 bytes or their base64, got a {type(key).__name__}")
    if len(key) != 32:
        raise ConfigError(f"encryption key {key_id!r} is {len(key)} bytes: AES-256-GCM takes 32; {_KEYGEN}")
    return key


def resolve_encryption_keys(settings: dict[str, Any]) -> Any:
    """The keys of every entry point: ``encryption_keys`` when given, else ``RESQ_ENCRYPTION_KEYS``,
    else none."""
    return settings["encryption_keys"] if "encryption_keys" in settings else os.environ.get(KEYS_ENV, "")


#: Where resq looks for Redis when neither an url nor ``RESQ_REDIS_URL`` is given.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: The namespace when neither one nor ``RESQ_NAMESPACE`` is given.
DEFAULT_NAMESPACE = "resq"


def resolve_url(url: str | None) -> str:
    """The url of every entry point (``Resq()``, ``default_app()``, the CLI): the one given, else
    ``RESQ_REDIS_URL``, else :data:`DEFAULT_URL`."""
    return url or os.environ.get("RESQ_REDIS_URL") or DEFAULT_URL


def resolve_namespace(namespace: str | None) -> str:
    """The namespace of every entry point (``Resq()``, ``default_app()``, the CLI): the one given, else
    ``RESQ_NAMESPACE``, else :data:`DEFAULT_NAMESPACE`, so producers and workers agree by default."""
    return namespace or os.environ.get("RESQ_NAMESPACE") or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Settings:
    """Everything an app can be configured with; each name is a keyword of :class:`resq.Resq`."""

    url: str = DEFAULT_URL
    namespace: str = DEFAULT_NAMESPACE
    #: largest encoded job accepted by ``.delay()``, in bytes
    max_payload_bytes: int = 8 * 1024 * 1024
    #: how long results and finished job records are kept, in seconds
    result_ttl: float = 86400.0
    #: how many dead jobs each queue keeps at most
    dead_max_jobs: int = 10_000
    #: how long dead jobs are kept, in seconds
    dead_ttl: float = 7 * 86400.0
    #: how many times a job may lose its worker (crash, kill -9) before it is dead ("worker lost")
    max_worker_losses: int = 3
    #: seconds between worker heartbeats; a worker silent for 3 intervals is dead
    heartbeat_interval: float = 3.0
    #: seconds to wait for a TCP connection to Redis
    connect_timeout: float = 2.0
    #: seconds to wait for a reply to a (non-blocking) command
    socket_timeout: float = 5.0
    #: seconds a producer keeps retrying an unreachable Redis before raising BrokerUnavailable
    broker_retry_s: float = 5.0
    #: replicas that must hold a new job before an enqueue returns (``WAIT``; 0: none): what a failover
    #: can lose shrinks to the jobs that no replica had (see ``docs/scaling.md#sentinel``)
    wait_replicas: int = 0
    #: how long one enqueue waits for ``wait_replicas``, in seconds (then it is sent again, until
    #: ``broker_retry_s``)
    wait_timeout: float = 1.0
    #: jobs a worker thread leases per fetch (``resq worker --prefetch``); more saves round trips on
    #: short jobs, but leased jobs wait behind the running one
    prefetch: int | None = None
    #: how many per-day statistics are kept, in days
    stats_days: int = 90
    #: run jobs inline, in the caller, without Redis (for tests; see ``resq.testing.eager``)
    eager: bool = False
    #: argument names whose values every task hides wherever resq shows arguments (CLI, inspector),
    #: next to each task's own ``redact``
    redact: tuple[str, ...] = ()
    #: seal the arguments and results of every task (a task's own ``encrypt`` option wins); see
    #: ``docs/security.md``
    encrypt: bool = False
    #: ``(key id, 32-byte key)`` pairs: the first seals, every one opens (``RESQ_ENCRYPTION_KEYS``;
    #: given as text, a mapping or pairs, see :func:`encryption_keys`); never shown in a repr
    encryption_keys: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        object.__setattr__(self, "redact", redact_names(self.redact, "setting redact"))
        object.__setattr__(self, "encryption_keys", encryption_keys(self.encryption_keys))
        if self.prefetch is not None and (not isinstance(self.prefetch, int) or self.prefetch < 1):
            raise ConfigError(f"setting prefetch must be a positive integer or None (adaptive), got {self.prefetch!r}")
        for name in ("max_payload_bytes", "dead_max_jobs", "max_worker_losses", "stats_days"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"setting {name} must be a positive integer, got {getattr(self, name)!r}")
        if isinstance(self.wait_replicas, bool) or not isinstance(self.wait_replicas, int) or self.wait_replicas < 0:
            raise ConfigError(f"setting wait_replicas must be 0 or a positive integer, got {self.wait_replicas!r}")
        for name in ("eager", "encrypt"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"setting {name} must be True or False, got {getattr(self, name)!r}")
        parse_redis_url(self.url)  # a bad url fails here, in one line, not at the first command
        for name in (
            "result_ttl",
            "dead_ttl",
            "heartbeat_interval",
            "connect_timeout",
            "socket_timeout",
            "broker_retry_s",
            "wait_timeout",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"setting {name} must be a positive number of seconds, got {value!r}")

    @classmethod
    def build(cls, url: str | None = None, namespace: str | None = None, **settings: Any) -> Settings:
        """Settings from keywords; a missing url, namespace and encryption keys follow :func:`resolve_url`,
        :func:`resolve_namespace` and :func:`resolve_encryption_keys` (the environment, then the defaults).

        Raises:
            ConfigError: an unknown setting (with a "did you mean" hint) or an invalid value.
        """
        fields = [f.name for f in dataclasses.fields(cls)]
        for key in settings:
            if key not in fields:
                hint = did_you_mean(key, fields)
                suffix = f"; did you mean {hint!r}?" if hint else f"; known settings: {', '.join(fields)}"
                raise ConfigError(f"unknown setting {key!r}{suffix}")
        settings["encryption_keys"] = resolve_encryption_keys(settings)
        return cls(url=resolve_url(url), namespace=resolve_namespace(namespace), **settings)


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the user info and a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"***@{host}"
    query = "&".join(
        f"{key}=***" if key.lower() in ("password", "sentinel_password") else pair
        for pair in parts.query.split("&")
        if pair
        for key in [pair.split("=", 1)[0]]
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


#: The url schemes resq takes: one Redis, a Sentinel-managed master, a Redis Cluster (``+`` TLS: ``rediss``).
URL_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")
_URL_HINT = (
    "use redis://host:port/db, rediss://…, unix://…, redis+sentinel://host:port,host:port/master/db "
    "or redis+cluster://host:port,host:port"
)


@dataclass(frozen=True)
class RedisTarget:
    """Where an url points (:func:`parse_redis_url`): ``single`` (one Redis: ``url`` as redis-py takes it),
    ``sentinel`` (the master ``service`` that the Sentinels at ``nodes`` name, database ``db``) or
    ``cluster`` (a Redis Cluster that any of ``nodes`` introduces).

    ``username`` and ``password`` are the Redis server's (the url's user info); ``options`` holds the
    query: ``sentinel_password`` (and ``sentinel_username``) for Sentinels that require one."""

    kind: str
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        """The query parameter ``name`` of the url, or None."""
        return dict(self.options).get(name)


def parse_redis_url(url: Any) -> RedisTarget:
    """What ``url`` points at.

    Examples::

        redis://localhost:6379/0
        rediss://user:secret@redis.example.com:6380/0
        redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster/0
        redis+cluster://10.0.0.1:7000,10.0.0.2:7000

    Raises:
        ConfigError: not an url of one of :data:`URL_SCHEMES`, or a Sentinel url without hosts or master
            name, or with a port or database that is not a number.
    """
    if not isinstance(url, str):
        raise ConfigError(f"invalid Redis url {url!r}: {_URL_HINT}")
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in URL_SCHEMES:
        raise ConfigError(f"invalid Redis url {mask_password(url)!r}: {_URL_HINT}")
    if "+" not in scheme:
        return RedisTarget("single", url, tls=scheme == "rediss")
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    segments = [s for s in parts.path.split("/") if s]
    shown = mask_password(url)
    if scheme.endswith("+cluster"):
        return _cluster_target(url, shown, hosts, segments, unquote(user) or None, unquote(password) or None)
    if not hosts or not segments or len(segments) > 2:
        raise ConfigError(f"invalid Sentinel url {shown!r}: {_URL_HINT} (hosts, then the master's name, then the db)")
    try:
        nodes = tuple(_host_port(node, 26379) for node in hosts.split(","))
        db = int(segments[1]) if len(segments) == 2 else 0
    except ValueError:
        raise ConfigError(f"invalid Sentinel url {shown!r}: a port or the db is not a number") from None
    return RedisTarget(
        "sentinel",
        url,
        nodes=nodes,
        service=unquote(segments[0]),
        db=db,
        username=unquote(user) or None,
        password=unquote(password) or None,
        tls=scheme.startswith("rediss"),
        options=tuple(parse_qsl(parts.query)),
    )


def _cluster_target(
    url: str, shown: str, hosts: str, segments: list[str], user: str | None, password: str | None
) -> RedisTarget:
    """A ``redis+cluster://`` url's target: its nodes (port 6379 when left out); a Cluster has only db 0."""
    if not hosts or segments not in ([], ["0"]):
        raise ConfigError(f"invalid Cluster url {shown!r}: {_URL_HINT} (a Redis Cluster has only database 0)")
    try:
        nodes = tuple(_host_port(node, 6379) for node in hosts.split(","))
    except ValueError:
        raise ConfigError(f"invalid Cluster url {shown!r}: a port is not a number") from None
    tls = url.startswith("rediss")
    return RedisTarget("cluster", url, nodes=nodes, username=user, password=password, tls=tls)


def _host_port(node: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a host alone) as ``(host, port)``."""
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        return host, int(rest.removeprefix(":") or default_port)
    host, _, port = node.partition(":")
    if not host:
        raise ValueError(node)
    return host, int(port or default_port)
