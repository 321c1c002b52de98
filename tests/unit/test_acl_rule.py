"""The least-privilege ACL rule (``resq.broker.acl``) and ``resq acl``: what the rule allows, read without
Redis. ``tests/integration/test_acl.py`` runs everything as a user with this rule against a real server."""

from __future__ import annotations

import re
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from click.testing import CliRunner

from resq.broker.acl import ACL_COMMANDS, acl_commands, acl_rule, acl_setuser, channel_patterns, key_patterns
from resq.broker.keys import Keys
from resq.cli import main
from resq.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Commands a resq user must never be given: they reach beyond the namespace or the server's safety.
DANGEROUS = {
    "keys", "flushdb", "flushall", "config", "debug", "eval", "eval_ro", "function", "script|flush", "shutdown",
    "acl", "monitor", "module", "client|kill", "client|list", "replicaof", "slaveof", "save", "bgsave", "swapdb",
    "migrate", "restore", "sort", "info",
}  # fmt: skip


def every_key(keys: Keys, queue: str = "mail") -> list[str]:
    """Each key and channel name :class:`Keys` builds, for one queue and one job."""
    names = [
        keys.queues, keys.workers, keys.cron, keys.cron_last, keys.cron_paused, keys.control_state,
        keys.stat_by_task, keys.stat_durations, keys.stat("processed"), keys.stat("dead", date(2030, 1, 2)),
        keys.worker("host:1:abc"), keys.unique_lock("nightly"), keys.queue(queue), keys.front(queue),
        keys.job(queue, "01ab"), keys.done(queue, "01ab"), keys.job_prefix(queue) + "01ab",
        keys.done_prefix(queue) + "01ab", keys.scheduled(queue), keys.dead(queue), keys.cancel_requests(queue),
    ]  # fmt: skip
    return names


def allowed(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether Redis's glob match (the same as fnmatch's for these characters) lets ``name`` through."""
    return any(fnmatchcase(name, pattern[1:]) for pattern in patterns)


def test_the_rule_starts_from_nothing_and_adds_the_namespace_and_each_command() -> None:
    rule = acl_rule("resq")
    assert rule.startswith("resetkeys ~{resq}:* ~{resq:* resetchannels &{resq}:* -@all +")
    words = rule.split()
    assert [w for w in words if w.startswith("+")] == [f"+{c}" for c in ACL_COMMANDS]
    assert words.index("-@all") < min(i for i, w in enumerate(words) if w.startswith("+"))
    assert not any(w.startswith(("allkeys", "allchannels", "~*", "&*", "+@")) for w in words)
    assert len(set(ACL_COMMANDS)) == len(ACL_COMMANDS)
    assert not DANGEROUS & set(ACL_COMMANDS)
    assert acl_rule("shop").startswith("resetkeys ~{shop}:* ~{shop:* resetchannels &{shop}:* -@all ")


#: A command a script sends, with its first argument when that is a plain word (a subcommand, maybe).
CALL = r"redis\.p?call\(\s*['\"](\w+)['\"](?:\s*,\s*['\"](\w+)['\"])?"


def test_every_command_of_every_script_is_in_the_rule() -> None:
    scripts = [*REPO_ROOT.glob("resq/broker/lua/*.lua"), *REPO_ROOT.glob("resq_scheduler/lua/*.lua")]
    assert len(scripts) > 10
    calls = [m for path in scripts for m in re.findall(CALL, path.read_text())]
    # A command with subcommands (XGROUP CREATE) is allowed by its subcommand, as the rule names it.
    called = {f"{cmd}|{sub}".lower() if cmd.lower() in ("xgroup", "xinfo") else cmd.lower() for cmd, sub in calls}
    assert {"xadd", "hset", "zadd", "publish"} <= called
    assert called <= set(ACL_COMMANDS), called - set(ACL_COMMANDS)


def test_the_namespace_patterns_hold_every_key_and_channel_of_it_and_none_of_another() -> None:
    keys, channels = key_patterns("resq"), channel_patterns("resq")
    for name in every_key(Keys("resq")):
        assert allowed(name, keys), name
    for channel in (Keys("resq").wakeup, Keys("resq").control, Keys("resq").events):
        assert allowed(channel, channels), channel
    other = Keys("resq2")
    for name in [*every_key(other), *every_key(Keys("resq-staging")), *every_key(Keys("resq.b"))]:
        assert not allowed(name, keys), name
    assert not any(allowed(c, channels) for c in (other.wakeup, other.control, other.events))
    assert allowed(other.queues, ("~{resq*",))  # the pitfall the two patterns avoid


def test_older_redis_gets_no_command_it_lacks_and_bad_input_is_refused() -> None:
    assert "client|setinfo" in acl_commands() and "client|setinfo" not in acl_commands((7, 0))
    assert "+client|setinfo" not in acl_rule("resq", (6, 2)) and "+client|setinfo" in acl_rule("resq", (7, 2))
    assert acl_setuser("app", "s3cret", "resq") == f"ACL SETUSER app reset on >s3cret {acl_rule('resq')}"
    with pytest.raises(ConfigError):
        acl_rule("{resq}")
    with pytest.raises(ConfigError):
        acl_rule("res*")
    for user, password in (("a b", "pw"), ("app", "p w"), ("app", "p@ss"), ("app", "")):
        with pytest.raises(ValueError, match="invalid ACL"):
            acl_setuser(user, password)


def test_resq_acl_prints_the_line_and_a_new_password_each_time() -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["acl"], env={"RESQ_NAMESPACE": None})
    second = runner.invoke(main, ["acl", "--user", "shop-app", "--namespace", "shop", "--redis-version", "7.0"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    line = first.stdout.strip()
    assert re.fullmatch(r"ACL SETUSER resq reset on >[\w-]{20,} " + re.escape(acl_rule("resq")), line), line
    password = line.split()[5][1:]
    assert f"redis://resq:{password}@" in first.stderr
    assert second.stdout.strip().endswith(acl_rule("shop", (7, 0))) and password not in second.stdout
    given = runner.invoke(main, ["acl", "--password", "chosen-pw", "--acl-file"], env={"RESQ_NAMESPACE": None})
    assert given.stdout.strip() == f"user resq on >chosen-pw {acl_rule('resq')}"
    assert "chosen-pw" not in given.stderr
    bad = runner.invoke(main, ["acl", "--namespace", "a:b"])
    assert bad.exit_code == 2 and "invalid namespace" in bad.output


def test_the_line_in_the_security_docs_is_the_one_resq_builds() -> None:
    text = (REPO_ROOT / "docs" / "security.md").read_text()
    assert acl_setuser("resq-app", "CHANGE-ME", "resq") in text.splitlines()
