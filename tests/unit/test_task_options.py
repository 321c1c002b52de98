"""``@app.task`` options, validated at decoration time, and what decorating does not do (connect)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest

import resq
from resq import ConfigError, Resq, Task

#: A url nothing is listening on (port 1 needs root to bind): these tests never reach Redis.
NOWHERE = "redis://127.0.0.1:1/0"


@pytest.fixture
def app() -> Resq:
    return Resq(NOWHERE)


def plain(a: int, b: int = 2) -> int:
    return a * b


def test_bare_decoration_and_defaults(app: Resq) -> None:
    t = app.task(plain)
    assert isinstance(t, Task)
    assert t.name == f"{__name__}.plain" == "tests.unit.test_task_options.plain"
    assert t.queue == t.options.queue == "default"
    assert t.options.retries == 0
    assert t.options.retry_on == (Exception,)
    assert t.options.timeout is None
    assert t.options.result_ttl is None
    assert app.tasks[t.name] is t
    assert t.__doc__ == plain.__doc__


def test_decoration_with_options(app: Resq) -> None:
    @app.task(
        name="mail.send",
        queue="mail",
        retries=3,
        backoff="linear",
        retry_on=(KeyError, ValueError),
        timeout=30,
        result_ttl=timedelta(hours=1),
    )
    def send(to: str) -> str:
        return to

    assert send.name == "mail.send"
    assert send.queue == "mail"
    assert send.options.retries == 3
    assert send.options.backoff(2) == 2.0
    assert send.options.retry_on == (KeyError, ValueError)
    assert send.options.timeout == 30.0
    assert send.options.result_ttl == 3600.0
    assert app.tasks["mail.send"] is send


def test_qualname_of_a_nested_function(app: Resq) -> None:
    @app.task
    def inner() -> None: ...

    assert inner.name.endswith("test_qualname_of_a_nested_function.<locals>.inner")


def test_calling_a_task_runs_it_here_without_redis(app: Resq) -> None:
    t = app.task(plain)
    assert t(3) == 6
    assert t(3, b=5) == 15
    assert app._broker is None  # nothing even built a connection


def test_single_exception_type_for_retry_on(app: Resq) -> None:
    t = app.task(retry_on=KeyError)(plain)
    assert t.options.retry_on == (KeyError,)


@pytest.mark.parametrize(
    "backoff", [5, 0.5, timedelta(seconds=2), "fixed", "linear", "exponential", lambda attempt: attempt * 1.0]
)
def test_backoff_specs(app: Resq, backoff: object) -> None:
    t = app.task(backoff=backoff)(plain)
    assert t.options.backoff(1) >= 0


def test_unknown_option_raises_at_decoration_with_a_hint(app: Resq) -> None:
    with pytest.raises(ConfigError, match=r"unknown task option 'retrys'.*did you mean 'retries'"):
        app.task(retrys=3)
    assert app.tasks == {}


def test_a_misspelt_option_names_the_decorator_and_suggests_retries(app: Resq) -> None:
    # The message names @app.task (not an internal stand-in function) and prefers retries to retry_on
    with pytest.raises(ConfigError) as caught:
        app.task(retry=3)
    assert str(caught.value) == "unknown task option 'retry' in @app.task(...); did you mean 'retries'?"
    assert "_probe" not in str(caught.value)


def test_unknown_option_without_close_match_lists_the_options(app: Resq) -> None:
    with pytest.raises(ConfigError, match=r"unknown task option 'colour'.*retry_on"):
        app.task(colour="blue")


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"retries": True},
        {"retries": "3"},
        {"backoff": "sometimes"},
        {"backoff": -2},
        {"retry_on": "ValueError"},
        {"retry_on": (ValueError, 3)},
        {"retry_on": [ValueError]},
        {"retry_on": int},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": "10"},
        {"result_ttl": 0},
        {"queue": "a:b"},
        {"queue": "{q}"},
        {"queue": "has space"},
        {"queue": ""},
        {"name": ""},
        {"name": "   "},
        {"name": 5},
        {"on_failure": "not callable"},
    ],
    ids=repr,
)
def test_invalid_option_values_raise_config_error_at_decoration(app: Resq, options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        app.task(**options)
    assert app.tasks == {}


def test_bad_queue_name_message(app: Resq) -> None:
    with pytest.raises(ConfigError, match=r"invalid queue name 'a:b'"):
        app.task(queue="a:b")


def test_two_functions_with_one_name_are_refused(app: Resq) -> None:
    app.task(name="same")(plain)

    def other() -> None: ...

    with pytest.raises(ConfigError, match="two tasks are named 'same'"):
        app.task(name="same")(other)


def test_decorating_a_task_again_is_refused(app: Resq) -> None:
    t = app.task(plain)
    with pytest.raises(ConfigError, match="already a task"):
        app.task(t)  # type: ignore[arg-type]


def test_enqueue_at_refuses_a_naive_datetime_before_touching_redis(app: Resq) -> None:
    from datetime import datetime

    t = app.task(plain)
    with pytest.raises(ConfigError, match="timezone-aware"):
        t.enqueue_at(datetime(2030, 1, 1, 12, 0), 1)
    assert app._broker is None


def test_apply_async_refuses_bad_job_options_before_touching_redis(app: Resq) -> None:
    from datetime import UTC, datetime

    t = app.task(plain)
    with pytest.raises(ConfigError, match="invalid queue name"):
        t.apply_async((1,), queue="bad:queue")
    with pytest.raises(ConfigError, match="either delay or at"):
        t.apply_async((1,), delay=1, at=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match="negative"):
        t.enqueue_in(-1, 1)
    assert app._broker is None


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket that counts as "Redis": any connection attempt would be waiting in it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def test_no_connection_at_creation_or_decoration(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    app = Resq(f"redis://127.0.0.1:{port}/0")

    @app.task(retries=2, queue="mail")
    def send(to: str) -> None: ...

    app.task(plain)
    app.job("someid")  # a handle alone does not connect either
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_module_level_task_uses_the_default_app() -> None:
    def f() -> int:
        return 1

    t = resq.task(name="tests.unit.module_level_probe")(f)
    try:
        assert t.app is resq.default_app()
        assert resq.default_app().tasks["tests.unit.module_level_probe"] is t
        assert t() == 1
    finally:
        resq.default_app().tasks.pop("tests.unit.module_level_probe", None)


def test_public_api_names() -> None:
    for name in (
        "Resq",
        "task",
        "Job",
        "JobStatus",
        "current_job",
        "Retry",
        "ResqError",
        "ConfigError",
        "EncodeError",
        "PayloadTooLarge",
        "BrokerUnavailable",
        "JobFailed",
        "ResultTimeout",
        "UnknownJob",
    ):
        assert hasattr(resq, name), name
    assert resq.JobStatus.DEAD == "dead"
    assert {s.value for s in resq.JobStatus} == {
        "scheduled",
        "queued",
        "running",
        "succeeded",
        "failed",
        "retrying",
        "dead",
        "cancelled",
        "expired",
        "deferred",
    }
    assert resq.current_job() is None


def _two(a: int, b: int) -> None: ...


def _star(*args: int) -> None: ...


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "fits"),
    [
        (_two, (1, 2), None, True),  # the quick check: as many positional arguments as plain parameters
        (_two, (1,), None, False),
        (_two, (1, 2, 3), None, False),
        (_two, (1,), {"b": 2}, True),  # keywords: bound by the signature
        (_two, (1, 2), {"b": 2}, False),
        (plain, (1,), None, True),  # a default: bound by the signature
        (plain, (1, 2, 3), None, False),
        (_star, (1, 2, 3), None, True),
    ],
)
def test_arguments_are_checked_against_the_signature(
    app: Resq, fn: object, args: tuple[int, ...], kwargs: dict[str, int] | None, fits: bool
) -> None:
    task = app.task(name=f"t.{getattr(fn, '__name__', '')}")(fn)  # type: ignore[call-overload]
    if fits:
        task.check_arguments(args, kwargs)
    else:
        with pytest.raises(resq.ArgumentsError, match="do not match the signature"):
            task.check_arguments(args, kwargs)
