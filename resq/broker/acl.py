"""The least-privilege Redis ACL rule for one namespace: its keys, its channels, and the commands resq sends.

Every key resq uses carries the hash tag of its namespace (``{ns}:…``) or of one of its queues
(``{ns:queue}:…``), and every channel is ``{ns}:…`` (:mod:`resq.broker.keys`), so an ACL user limited to
``~{ns}:* ~{ns:*`` and ``&{ns}:*`` can run producers, workers, schedulers and the ``resq`` command line
of that namespace and nothing else. Namespaces may not contain ``{``, ``}``, ``:`` or glob characters
(:func:`resq.settings.validate_name`), so ``{resq}:*`` and ``{resq:*`` never match ``{resq2}``'s keys, as
``{resq*`` would.

:data:`ACL_COMMANDS` is the one list of commands resq sends, the Lua scripts' own included (Redis checks
those against the caller's ACL too); ``tests/unit/test_acl.py`` checks that every command of every script is
in it, and ``tests/integration/test_acl.py`` runs everything as a user with exactly this rule and checks
that Redis denied nothing. ``resq acl`` prints the ``ACL SETUSER`` line.
"""

from __future__ import annotations

import re

from resq.settings import DEFAULT_NAMESPACE, validate_name

__all__ = [
    "ACL_COMMANDS",
    "COMMANDS_SINCE",
    "acl_commands",
    "acl_rule",
    "acl_setuser",
    "channel_patterns",
    "key_patterns",
    "parse_version",
]

#: Every command resq (and redis-py, when it connects) sends, as ACL names (``command|subcommand``).
ACL_COMMANDS: tuple[str, ...] = (
    # connecting: redis-py's handshake (AUTH or HELLO, which Redis allows anyway; SELECT for a url's /db
    # other than 0, CLIENT SETNAME for a url's client_name, CLIENT SETINFO names the library), health checks
    "auth",
    "hello",
    "ping",
    "select",
    "client|setname",
    "client|setinfo",
    # the transition scripts: loaded once, then called by their sha
    "script|load",
    "evalsha",
    # remote control: the last command and its message, in one MULTI/EXEC
    "multi",
    "exec",
    # pub/sub: wake-ups, remote control, lifecycle events (published only while someone listens)
    "publish",
    "subscribe",
    "pubsub|numsub",
    # generic
    "del",
    "exists",
    "expire",
    "pexpire",
    "persist",
    "type",  # scripts check a key's type before they write (a key something else wrote to)
    "rename",  # such a key is set aside under `broken:…`, in the same slot
    "time",  # a rate limit's window runs on Redis's clock
    "wait",  # an enqueue with `wait_replicas`: its jobs are on that many replicas before it returns
    # a Redis Cluster: redis-py reads the slots and the commands' key positions; a worker's blocking read
    # per queue names its connection, and the first to answer wakes the others
    "cluster|slots",
    "command",
    "command|getkeys",
    "client|id",
    "client|unblock",
    "scan",  # `resq stats` on an empty namespace, to name the namespaces that hold queues
    # strings: counters, unique locks of periodic entries
    "get",
    "mget",
    "set",
    "incrby",  # also the Resque family's counters (stat:processed), and the sequence of the jobs taken
    # hashes: job records, worker records, counters by task, periodic entries, control state, joins
    "hdel",
    "hexists",
    "hget",
    "hgetall",
    "hincrby",
    "hmget",
    "hscan",  # the reaper's look for hand-off entries a dead process left (resq/broker/handoff.py)
    "hset",
    "hsetnx",  # a join counts a member and fires a callback once
    # lists: the `done` signal a result() waits on, jobs parked by a concurrency limit
    "rpush",
    "lpop",
    "blmove",
    "lrange",  # the Resque family's delayed jobs: a second's list, read before it is moved
    "ltrim",
    "llen",
    # sets: queue names, cancel requests, paused periodic entries
    "sadd",
    "srem",
    "smembers",
    "smismember",
    # sorted sets: scheduled and dead jobs, the worker registry
    "zadd",
    "zcard",
    "zcount",
    "zrange",
    "zrangebyscore",
    "zrem",
    "zremrangebyscore",  # a rate limit's window
    "zscan",  # the jobs of a paused group, when it resumes
    "zrevrange",
    "zscore",
    # streams: the queues, their consumer group (the leases)
    "xadd",
    "xack",
    "xdel",
    "xlen",
    "xrange",
    "xreadgroup",
    "xpending",
    "xgroup|create",
    "xgroup|delconsumer",
    "xinfo|consumers",
    "xinfo|groups",
)

#: Commands of :data:`ACL_COMMANDS` that older Redis versions lack (an ACL rule naming an unknown command is
#: refused): redis-py sends ``CLIENT SETINFO`` on every connection, and ignores the error of a Redis that
#: has no such command.
COMMANDS_SINCE: dict[str, tuple[int, int]] = {"client|setinfo": (7, 2)}

#: What a user name or password may hold here: no spaces (the line is split on them), nothing a shell or
#: ``redis-cli`` reads differently, and nothing a ``redis://user:password@host`` url must escape.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.~-]{1,256}$")


def key_patterns(namespace: str = DEFAULT_NAMESPACE) -> tuple[str, ...]:
    """The key patterns of ``namespace``: its own keys ``{ns}:*`` and its queues' keys ``{ns:<queue>}:*``."""
    ns = validate_name(namespace, "namespace")
    return (f"~{{{ns}}}:*", f"~{{{ns}:*")


def channel_patterns(namespace: str = DEFAULT_NAMESPACE) -> tuple[str, ...]:
    """The pub/sub channel pattern of ``namespace`` (``{ns}:wakeup``, ``{ns}:control``, ``{ns}:events``)."""
    ns = validate_name(namespace, "namespace")
    return (f"&{{{ns}}}:*",)


def parse_version(text: str) -> tuple[int, int]:
    """``"7.0"`` or ``"7.0.15"`` as ``(7, 0)``.

    Raises:
        ValueError: not a version.
    """
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\s*", text)
    if match is None:
        raise ValueError(f"invalid Redis version {text!r}: use MAJOR.MINOR, e.g. 7.2")
    return int(match[1]), int(match[2])


def acl_commands(redis_version: tuple[int, int] | None = None) -> tuple[str, ...]:
    """:data:`ACL_COMMANDS` that ``redis_version`` knows (all of them when None: the newest Redis)."""
    if redis_version is None:
        return ACL_COMMANDS
    return tuple(c for c in ACL_COMMANDS if COMMANDS_SINCE.get(c, (0, 0)) <= redis_version)


def acl_rule(
    namespace: str = DEFAULT_NAMESPACE, redis_version: tuple[int, int] | None = None, resque: str | None = None
) -> str:
    """The ACL rules that give a user exactly what resq needs in ``namespace``, and nothing else.

    The rules start from nothing (``resetkeys``, ``resetchannels``, ``-@all``), so they can follow any
    ``ACL SETUSER <user> on ><password>`` or ``user <user> on ><password>`` line of an ACL file::

        resetkeys ~{resq}:* ~{resq:* resetchannels &{resq}:* -@all +auth +hello … +xinfo|groups

    Args:
        namespace: the app's namespace.
        redis_version: ``(major, minor)`` of the Redis the rule is for, when older than 7.2 (a rule that
            names a command the server lacks is refused); None: the newest.
        resque: also the keys of this Resque namespace (``~resque:*``: ``app.resque``, ``--resque-queues``,
            ``resq scheduler --resque``; ``docs/resque.md``); None: not.

    Raises:
        ConfigError: ``namespace`` is not a valid namespace.
    """
    keys, channels = key_patterns(namespace), channel_patterns(namespace)
    if resque is not None:
        keys = (*keys, f"~{resque}:*")
    commands = " ".join(f"+{command}" for command in acl_commands(redis_version))
    return f"resetkeys {' '.join(keys)} resetchannels {' '.join(channels)} -@all {commands}"


def acl_setuser(
    user: str,
    password: str,
    namespace: str = DEFAULT_NAMESPACE,
    redis_version: tuple[int, int] | None = None,
    resque: str | None = None,
) -> str:
    """The ``ACL SETUSER`` line that creates (or resets) ``user`` with ``password`` and :func:`acl_rule`.

    ``reset`` first, so that running it again replaces whatever the user could do before.

    Raises:
        ValueError: the user name or password holds spaces or characters a shell would read differently.
    """
    for what, value in (("user name", user), ("password", password)):
        if not _TOKEN_RE.fullmatch(value):
            raise ValueError(f"invalid ACL {what} {value!r}: use letters, digits and _.~- only")
    return f"ACL SETUSER {user} reset on >{password} {acl_rule(namespace, redis_version, resque)}"
