"""Settings of a :class:`resq.Resq` app: defaults, environment, validation."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from resq.errors import ConfigError, did_you_mean

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_URL",
    "NAME_RE",
    "Settings",
    "resolve_namespace",
    "resolve_url",
    "validate_name",
]

#: Queue names and namespaces: letters, digits, ``_ . -``; no braces or colons (they shape keys).
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def validate_name(value: str, what: str) -> str:
    """Return ``value`` if it is a valid queue name or namespace, else raise ``ConfigError``."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ConfigError(f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '.' or '-' (no braces or colons)")
    return value


def redact_names(names: Any, what: str) -> tuple[str, ...]:
    """``names`` as a tuple of argument names, or ``ConfigError`` (a bare string is refused: it would be
    read as its letters)."""
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{what} must be a list of argument names, got {names!r}")
    return tuple(names)


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

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        object.__setattr__(self, "redact", redact_names(self.redact, "setting redact"))
        if self.prefetch is not None and (not isinstance(self.prefetch, int) or self.prefetch < 1):
            raise ConfigError(f"setting prefetch must be a positive integer or None (adaptive), got {self.prefetch!r}")
        for name in ("max_payload_bytes", "dead_max_jobs", "max_worker_losses", "stats_days"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"setting {name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.eager, bool):
            raise ConfigError(f"setting eager must be True or False, got {self.eager!r}")
        if not isinstance(self.url, str) or self.url.partition("://")[0] not in ("redis", "rediss", "unix"):
            raise ConfigError(f"invalid Redis url {self.url!r}: use redis://host:port/db, rediss://… or unix://…")
        for name in (
            "result_ttl",
            "dead_ttl",
            "heartbeat_interval",
            "connect_timeout",
            "socket_timeout",
            "broker_retry_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"setting {name} must be a positive number of seconds, got {value!r}")

    @classmethod
    def build(cls, url: str | None = None, namespace: str | None = None, **settings: Any) -> Settings:
        """Settings from keywords; a missing url and namespace follow :func:`resolve_url` and
        :func:`resolve_namespace` (the environment, then the defaults).

        Raises:
            ConfigError: an unknown setting (with a "did you mean" hint) or an invalid value.
        """
        fields = [f.name for f in dataclasses.fields(cls)]
        for key in settings:
            if key not in fields:
                hint = did_you_mean(key, fields)
                suffix = f"; did you mean {hint!r}?" if hint else f"; known settings: {', '.join(fields)}"
                raise ConfigError(f"unknown setting {key!r}{suffix}")
        return cls(url=resolve_url(url), namespace=resolve_namespace(namespace), **settings)
