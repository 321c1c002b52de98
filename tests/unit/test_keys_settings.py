"""Key names and hash tags; settings, their environment fallbacks and their validation (no Redis)."""

from __future__ import annotations

from datetime import date

import pytest
from redis.crc import key_slot

import resq.app
from resq import ConfigError, Resq, default_app
from resq.broker.keys import Keys
from resq.cli.common import load_app
from resq.errors import did_you_mean
from resq.settings import DEFAULT_URL, Settings, resolve_namespace, validate_name
from resq.task import TASK_OPTIONS

# -- keys ------------------------------------------------------------------------------------------


def test_queue_keys_share_the_queue_hash_tag() -> None:
    k = Keys("resq")
    queue_keys = [
        k.queue("mail"),
        k.job("mail", "abc"),
        k.done("mail", "abc"),
        k.scheduled("mail"),
        k.dead("mail"),
        k.cancel_requests("mail"),
        k.job_prefix("mail") + "x",
        k.done_prefix("mail") + "x",
    ]
    assert all(key.startswith("{resq:mail}:") for key in queue_keys), queue_keys
    assert len({key_slot(key.encode()) for key in queue_keys}) == 1


def test_documented_key_names() -> None:
    k = Keys("resq")
    assert k.queue("default") == "{resq:default}:queue"
    assert k.job("default", "id1") == "{resq:default}:job:id1"
    assert k.scheduled("default") == "{resq:default}:scheduled"
    assert k.dead("default") == "{resq:default}:dead"
    assert k.job_prefix("default") + "id1" == k.job("default", "id1")
    assert k.done_prefix("default") + "id1" == k.done("default", "id1")


def test_namespace_keys_share_the_namespace_hash_tag() -> None:
    k = Keys("myns")
    ns_keys = [
        k.queues,
        k.workers,
        k.cron,
        k.cron_last,
        k.cron_paused,
        k.wakeup,
        k.control,
        k.events,
        k.worker("w1"),
        k.stat("processed"),
        k.stat("processed", date(2024, 1, 2)),
        k.unique_lock("e"),
    ]
    assert all(key.startswith("{myns}:") for key in ns_keys), ns_keys
    assert len({key_slot(key.encode()) for key in ns_keys}) == 1
    assert k.stat("failed", date(2024, 1, 2)) == "{myns}:stat:failed:2024-01-02"


def test_different_queues_may_land_on_different_slots() -> None:
    k = Keys("resq")
    slots = {key_slot(k.queue(f"q{i}").encode()) for i in range(20)}
    assert len(slots) > 1


def test_namespaces_do_not_collide() -> None:
    assert Keys("a").queue("q") != Keys("b").queue("q")
    assert Keys("a").queues != Keys("b").queues


@pytest.mark.parametrize("name", ["default", "mail", "high-priority", "a.b_c-9", "x" * 128])
def test_valid_names(name: str) -> None:
    assert validate_name(name, "queue name") == name


@pytest.mark.parametrize("name", ["", "a:b", "{a}", "a}", "a b", "é", "x" * 129, "a\n", None, 5], ids=repr)
def test_invalid_names(name: object) -> None:
    with pytest.raises(ConfigError, match="invalid queue name"):
        validate_name(name, "queue name")  # type: ignore[arg-type]


def test_invalid_namespace() -> None:
    with pytest.raises(ConfigError, match="namespace"):
        Keys("bad{ns}")
    with pytest.raises(ConfigError, match="namespace"):
        Resq("redis://127.0.0.1:1/0", namespace="a:b")


# -- settings --------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("RESQ_REDIS_URL", raising=False)
    monkeypatch.delenv("RESQ_NAMESPACE", raising=False)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    s = Settings.build()
    assert s.url == DEFAULT_URL == "redis://127.0.0.1:6379/0"
    assert s.namespace == "resq"
    assert s.max_payload_bytes == 8 * 1024 * 1024
    assert s.result_ttl == 86400
    assert s.dead_max_jobs == 10_000
    assert s.dead_ttl == 7 * 86400


def test_url_falls_back_to_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RESQ_REDIS_URL", "redis://127.0.0.1:1/3")
    assert Resq().settings.url == "redis://127.0.0.1:1/3"
    assert Resq("redis://127.0.0.1:2/0").settings.url == "redis://127.0.0.1:2/0"


def test_namespace_falls_back_to_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RESQ_NAMESPACE", "envns")
    assert Settings.build().namespace == "envns"
    assert Settings.build(namespace="given").namespace == "given"


def test_every_entry_point_reads_the_namespace_the_same_way(clean_env: pytest.MonkeyPatch) -> None:
    # Given no namespace anywhere, each entry point uses "resq"
    clean_env.setattr(resq.app, "_default", None)
    assert [a.settings.namespace for a in (Resq(), default_app(), load_app(None))] == ["resq"] * 3
    # Given RESQ_NAMESPACE, a producer's Resq(), the default app and the CLI's app all use it
    clean_env.setenv("RESQ_NAMESPACE", "envns")
    clean_env.setattr(resq.app, "_default", None)
    assert [a.settings.namespace for a in (Resq(), default_app(), load_app(None))] == ["envns"] * 3
    # And a namespace given in code wins over the environment (positional url, as before)
    assert Resq("redis://127.0.0.1:1/0", namespace="given").settings.namespace == "given"
    assert resolve_namespace(None) == "envns"
    assert resolve_namespace("given") == "given"


def test_a_misspelt_url_or_namespace_keyword_gets_a_hint() -> None:
    # namespace is keyword-only, so a typo of it lands among the settings: the hint still finds it
    with pytest.raises(ConfigError, match=r"unknown setting 'namespce'; did you mean 'namespace'\?"):
        Resq("redis://127.0.0.1:1/0", namespce="billing")
    with pytest.raises(ConfigError, match=r"unknown setting 'ulr'; did you mean 'url'\?"):
        Resq(ulr="redis://127.0.0.1:1/0")


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("retry", "retries"),  # a plural, not the longer name it is a prefix of (difflib picks retry_on)
        ("retrys", "retries"),
        ("retry_onn", "retry_on"),
        ("soft_time", "soft_timeout"),
        ("timout", "timeout"),
        ("Queue", "queue"),
        ("colour", None),
    ],
)
def test_did_you_mean(word: str, expected: str | None) -> None:
    assert did_you_mean(word, TASK_OPTIONS) == expected


def test_settings_are_taken_as_keywords() -> None:
    app = Resq("redis://127.0.0.1:1/0", namespace="ns1", result_ttl=60, dead_max_jobs=5, max_payload_bytes=100)
    assert (app.settings.namespace, app.settings.result_ttl) == ("ns1", 60)
    assert (app.settings.dead_max_jobs, app.settings.max_payload_bytes) == (5, 100)


def test_unknown_setting_raises_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'result_tll'.*did you mean 'result_ttl'"):
        Resq("redis://127.0.0.1:1/0", result_tll=5)


def test_unknown_setting_without_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'zzz'.*max_payload_bytes"):
        Resq("redis://127.0.0.1:1/0", zzz=1)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_payload_bytes": 0},
        {"max_payload_bytes": -5},
        {"max_payload_bytes": 1.5},
        {"dead_max_jobs": 0},
        {"result_ttl": 0},
        {"result_ttl": -1},
        {"result_ttl": "1d"},
        {"dead_ttl": True},
        {"heartbeat_interval": 0},
        {"socket_timeout": None},
    ],
    ids=repr,
)
def test_invalid_setting_values(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Resq("redis://127.0.0.1:1/0", **settings)


def test_reconfigure_keeps_other_settings_and_validates() -> None:
    app = Resq("redis://127.0.0.1:1/0", dead_max_jobs=3)
    app.reconfigure(url="redis://127.0.0.1:2/0")
    assert app.settings.url == "redis://127.0.0.1:2/0"
    assert app.settings.dead_max_jobs == 3
    with pytest.raises(ConfigError):
        app.reconfigure(nope=1)


def test_job_ids_of_one_process_never_meet_and_a_forked_child_draws_its_own_prefix() -> None:
    import os

    from resq.job import new_job_id

    ids = [new_job_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)
    assert len({i[12:18] for i in ids}) == 1  # one prefix per process
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)  # time-sortable
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(writer, new_job_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(reader, 64).decode()
    assert child[12:18] != ids[0][12:18]  # its own prefix (the same by chance: 1 in 16 million)
