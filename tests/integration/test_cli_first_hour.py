"""The command line as a new user meets it in the first hour (issue 9): unknown tasks refused with an app,
``resq tasks``, one-line errors (Redis down, a broken app reference), confirmations, results, paused
workers, ``job cancel``, filtered retries, ``stats --watch``, ``events``, one time format, ``-h``,
``--url``/``--namespace`` everywhere and the namespace hint. Real Redis, click's CliRunner, and real
processes where a terminal, a signal or a worker matters."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import redis
from click.testing import CliRunner, Result

from resq import Resq
from resq.broker import Broker
from resq.cli import main
from resq.clock import now_ms
from resq.ops import Inspector
from resq.ops import inspect as inspect_module
from resq.settings import Settings
from tests.apps import firsthour as firsthour_module
from tests.conftest import REPO_ROOT, RunWorker
from tests.helpers import burst, wait_for

APP = "tests.apps.firsthour:app"
TIME_RE = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b")
MS_TIME_RE = re.compile(r"\d\d:\d\d:\d\d\.\d")


@pytest.fixture
def fh(redis_url: str) -> ModuleType:
    firsthour_module.bind(redis_url)
    return firsthour_module


def resq_env(redis_url: str) -> dict[str, str]:
    env = {**os.environ, "RESQ_REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("RESQ_APP", None)
    return env


def one_error_line(result: Result, code: int) -> str:
    """The single line a failed command prints (no traceback, no usage block)."""
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def field(text: str, label: str) -> str:
    """The value of the ``label`` line of ``resq job``."""
    for line in text.splitlines():
        if line.startswith(label + "  "):
            return line[len(label) :].strip()
    raise AssertionError(f"no {label!r} line in:\n{text}")


# -- enqueue with an app, resq tasks ----------------------------------------------------------------


def test_enqueue_with_an_app_refuses_an_unknown_task(fh: ModuleType, redis_client: redis.Redis, cli: Any) -> None:
    line = one_error_line(cli("enqueue", "-A", APP, "firsthour.ad", "--args", "[1, 2]"), 2)
    assert "unknown task 'firsthour.ad'" in line and "did you mean 'firsthour.add'?" in line
    assert redis_client.keys("*") == []  # nothing enqueued
    known = json.loads(cli("enqueue", "-A", APP, "firsthour.send_mail", "--args", '["a@b.c"]', "--json").output)
    assert known["queue"] == "mail" and known["status"] == "queued"
    # without an app, the name is sent as is: the worker decides (and the help says so)
    assert cli("enqueue", "firsthour.ad").exit_code == 0
    assert "the worker that fetches it decides" in " ".join(cli("enqueue", "-h").output.split())


def test_tasks_lists_the_registered_tasks_with_their_options(cli: Any) -> None:
    data = {t["name"]: t for t in json.loads(cli("tasks", "-A", APP, "--json").output)}
    assert data["firsthour.send_mail"] == {
        "name": "firsthour.send_mail",
        "queue": "mail",
        "retries": 3,
        "backoff": "fixed 30s",
        "timeout": 60,
        "soft_timeout": 50,
        "result_ttl": 3600,
        "periodic": [],
    }
    assert data["firsthour.nightly"]["periodic"] == ["firsthour.nightly"]
    assert data["firsthour.add"]["backoff"] == "exponential 1s (cap 3600s)"
    text = cli("tasks", "-A", APP).output
    assert text.splitlines()[0].split()[:4] == ["TASK", "QUEUE", "RETRIES", "BACKOFF"]
    assert next(c for c in text.splitlines() if c.startswith("firsthour.send_mail")).split()[1:3] == ["mail", "3"]
    assert "which app?" in one_error_line(cli("tasks"), 2)


# -- one line, never a traceback ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("tests.apps.firsthour:ap", "module 'tests.apps.firsthour' has no attribute 'ap' — did you mean 'app'?"),
        ("tests/apps/firsthour.py", "use a dotted module path: -A tests.apps.firsthour"),
        ("tests.apps.firsthour:add", "is not a resq app (it is a Task): use tests.apps.firsthour:app"),
        ("tests.apps.nope", "cannot import app module 'tests.apps.nope'"),
    ],
)
def test_a_bad_app_reference_is_one_line(cli: Any, ref: str, expected: str) -> None:
    assert expected in one_error_line(cli("stats", "-A", ref), 2)


def test_an_app_with_a_syntax_error_is_one_line(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    (tmp_path / "broken_first_hour.py").write_text("from resq import Resq\napp = Resq()\ndef f(:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    line = one_error_line(cli("tasks", "-A", "broken_first_hour"), 2)
    assert "syntax error: broken_first_hour.py, line 3: invalid syntax" in line


REDIS_COMMANDS = [
    ["stats"],
    ["stats", "--watch", "0.1"],
    ["queues"],
    ["workers"],
    ["workers", "pause", "--all"],
    ["job", "0196a4c5e8f1a3b2c4d5e6"],
    ["job", "cancel", "0196a4c5e8f1a3b2c4d5e6"],
    ["enqueue", "firsthour.add"],
    ["events"],
    ["dead", "list"],
    ["dead", "show", "x"],
    ["dead", "retry", "x"],
    ["dead", "retry", "--all", "--task", "firsthour.fail"],
    ["dead", "purge", "-y"],
    ["queue", "clear", "default", "-y"],
    ["scheduled", "list"],
    ["scheduled", "remove", "x"],
    ["scheduled", "run-now", "x"],
    ["cron", "list"],
    ["cron", "run", "firsthour.nightly"],
    ["cron", "pause", "firsthour.nightly"],
    ["cron", "resume", "firsthour.nightly"],
    ["dashboard"],
]


def test_every_command_with_redis_down_says_so_in_one_line(free_port: int) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port}/0"
    for args in REDIS_COMMANDS:
        result = CliRunner().invoke(main, [*args, "-A", APP, "--url", url], env={"RESQ_APP": None})
        assert result.exit_code == 1, (args, result.output)
        (error,) = result.output.strip().splitlines()  # exactly one line, no traceback
        assert error.startswith(f"Error: cannot reach Redis at redis://:***@127.0.0.1:{free_port}/0"), (args, error)
        assert error.endswith("check the url (--url or RESQ_REDIS_URL) and that redis-server is running"), args
        assert "s3cret" not in result.output


def test_on_a_terminal_a_connecting_line_shows_at_once_then_gives_way_to_the_error(free_port: int) -> None:
    url = f"redis://127.0.0.1:{free_port}/0"
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "RESQ_REDIS_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "resq", "stats", "-A", APP],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        env=env,
        cwd=REPO_ROOT,
    )
    os.close(child_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(main_fd)
    assert proc.wait(timeout=30) == 1
    text = seen.decode()
    assert text.index(f"connecting to {url} …") < text.index("\r\x1b[K") < text.index("Error: cannot reach Redis")


# -- destructive commands confirm -------------------------------------------------------------------


def make_dead(fh: ModuleType, run_worker: RunWorker, fails: int = 1, others: int = 0) -> tuple[list[str], list[str]]:
    first = [fh.fail.delay(f"boom {i}").id for i in range(fails)]
    second = [fh.fail_other.delay().id for _ in range(others)]
    burst(run_worker, APP)
    assert Inspector(fh.app).dead_count() == fails + others
    return first, second


def run_on_a_terminal(redis_url: str, args: list[str], answer: str) -> tuple[int, str]:
    """Run ``resq *args`` with a pseudo-terminal as stdin/stdout; answer its question with ``answer``."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "resq", *args],
        env=resq_env(redis_url),
        cwd=str(REPO_ROOT),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    try:
        while b"[y/N]" not in seen:
            seen += os.read(leader, 1024)
        os.write(leader, answer.encode() + b"\n")
        code = proc.wait(timeout=30)
        while True:
            try:
                chunk = os.read(leader, 1024)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    return code, seen.decode(errors="replace")


def test_dead_purge_asks_on_a_terminal_and_refuses_without_one(
    fh: ModuleType, run_worker: RunWorker, redis_url: str, cli: Any
) -> None:
    make_dead(fh, run_worker, fails=2)
    line = one_error_line(cli("dead", "purge"), 2)
    assert "not confirmed (stdin is not a terminal); pass -y/--yes" in line
    assert Inspector(fh.app).dead_count() == 2  # nothing deleted
    code, seen = run_on_a_terminal(redis_url, ["dead", "purge"], "n")
    assert code == 1 and "Delete the dead jobs (2 dead in all) and their records? [y/N]" in seen
    assert Inspector(fh.app).dead_count() == 2
    code, seen = run_on_a_terminal(redis_url, ["dead", "purge", "-q", "default"], "y")
    assert code == 0 and "purged 2 dead jobs" in seen, seen
    assert Inspector(fh.app).dead_count() == 0


# -- resq job: result, last error, cancel ------------------------------------------------------------


def test_job_shows_the_result_and_labels_the_last_error(fh: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    ok = fh.add.delay(2, 3)
    bad = fh.fail.delay("no luck")
    burst(run_worker, APP)
    shown = cli("job", ok.id).output
    assert field(shown, "result") == "5" and "last error" not in shown
    assert json.loads(cli("job", "--json", ok.id).output)["result"] == 5  # options before the id too
    assert json.loads(cli("job", ok.id, "--json").output)["result"] == 5
    failed = cli("job", bad.id).output
    assert field(failed, "last error") == "ValueError: no luck" and "result" not in failed
    history = failed.split("history (UTC):")[1]
    assert TIME_RE.search(history) and not MS_TIME_RE.search(failed)  # the one time format


def test_job_cancel(fh: ModuleType, run_worker: RunWorker, cli: Any) -> None:
    waiting = fh.add.delay(1, 1)
    later = fh.add.enqueue_in(3600, 1, 2)
    result = cli("job", "cancel", waiting.id)
    assert result.exit_code == 0 and result.output.strip() == f"cancelled {waiting.id}"
    assert waiting.status() == "cancelled"
    assert json.loads(cli("job", "cancel", later.id, "--json").output) == {"id": later.id, "status": "cancelled"}
    done = fh.add.delay(2, 2)
    burst(run_worker, APP)
    assert f"job {done.id} already succeeded: nothing to cancel" in one_error_line(cli("job", "cancel", done.id), 1)
    assert cli("job", "cancel", "nope").exit_code == 1
    assert cli("job", "nope").exit_code == 1


# -- paused workers ----------------------------------------------------------------------------------


def register(broker: Broker, worker_id: str, supervisor: str, started_ms: int) -> None:
    info = {"host": "h", "pid": "1", "supervisor": supervisor, "queues": "default", "started_ms": str(started_ms)}
    broker.workers.register(worker_id, {**info, "current": ""})


def test_paused_is_the_state_the_supervisors_obey(fh: ModuleType, cli: Any) -> None:
    broker = fh.app.broker
    before = now_ms() - 1000
    register(broker, "h:1:a", "h:1:s", before)
    register(broker, "h:1:b", "h:1:s", before)
    register(broker, "h:2:c", "h:2:s", before)
    # a command naming one child pauses its whole supervisor (it forwards to all its children)
    assert cli("workers", "pause", "h:1:b").exit_code == 0
    found = {w["id"]: w for w in json.loads(cli("workers", "--json").output)}
    assert {k: w["paused"] for k, w in found.items()} == {"h:1:a": True, "h:1:b": True, "h:2:c": False}
    assert found["h:1:a"]["state"] == "paused" and found["h:2:c"]["state"] == "idle"
    text = cli("workers").output
    assert text.splitlines()[0].split()[6] == "STATE" and text.splitlines()[1].split()[6] == "PAUSED"
    assert "(2 of 3 paused" in text
    stats = json.loads(cli("stats", "--json").output)
    assert stats["workers"] == 3 and stats["paused"] == 2
    assert "workers: 3 live (2 paused)" in cli("stats").output
    # a newer command for everyone wins; a worker started after a pause did not receive it
    assert cli("workers", "pause", "--all").exit_code == 0
    register(broker, "h:2:d", "h:2:s", now_ms() + 1000)
    found = {w["id"]: w["paused"] for w in json.loads(cli("workers", "--json").output)}
    assert found == {"h:1:a": True, "h:1:b": True, "h:2:c": True, "h:2:d": False}
    assert cli("workers", "resume", "--all").exit_code == 0
    assert json.loads(cli("stats", "--json").output)["paused"] == 0


# -- filtered retries --------------------------------------------------------------------------------


def test_dead_retry_all_filters_by_task_and_error_in_batches(
    fh: ModuleType, run_worker: RunWorker, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    monkeypatch.setattr(inspect_module, "BATCH", 2)  # several pages over 6 dead jobs, most of them kept
    fails, others = make_dead(fh, run_worker, fails=4, others=2)
    result = cli("dead", "retry", "--all", "--error", "KeyError", "--json")
    assert json.loads(result.output.splitlines()[-1]) == {"requeued": 2}
    assert [fh.app.job(i).status() for i in others] == ["queued", "queued"]
    assert {fh.app.job(i).status() for i in fails} == {"dead"}
    none = cli("dead", "retry", "--all", "--task", "firsthour.add", "--json")
    assert json.loads(none.output.splitlines()[-1]) == {"requeued": 0}
    both = cli("dead", "retry", "--all", "--task", "firsthour.fail", "--error", "builtins.ValueError", "--json")
    assert json.loads(both.output.splitlines()[-1]) == {"requeued": 0}  # the stored type is "ValueError"
    by_task = cli("dead", "retry", "--all", "--task", "firsthour.fail", "--error", "ValueError", "--json")
    assert json.loads(by_task.output.splitlines()[-1]) == {"requeued": 4}
    assert Inspector(fh.app).dead_count() == 0
    assert cli("dead", "retry", fails[0], "--task", "firsthour.fail").exit_code == 2


# -- stats --watch, events ---------------------------------------------------------------------------


def test_stats_watch_refreshes_until_ctrl_c(fh: ModuleType, redis_url: str, tmp_path: Path) -> None:
    fh.add.delay(1, 2)
    out = tmp_path / "watch.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "resq", "stats", "--watch", "0.1"],
            env=resq_env(redis_url),
            cwd=str(REPO_ROOT),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: out.read_text().count("resq stats at ") >= 2, message="two frames")
        fh.add.delay(3, 4)
        wait_for(lambda: re.search(r"^default\s+2\s", out.read_text(), re.M), message="a frame with 2 waiting")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    assert "Traceback" not in text and "\x1b[" not in text  # not a terminal: no screen clearing
    assert TIME_RE.search(text.splitlines()[0])


def test_events_say_they_listen_and_line_up(fh: ModuleType, redis_url: str, tmp_path: Path) -> None:
    err = tmp_path / "events.err"
    with open(err, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "resq", "events", "--count", "2"],
            env=resq_env(redis_url),
            cwd=str(REPO_ROOT),
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        wait_for(lambda: "listening for events on redis://" in err.read_text(), message="listening")
        short = fh.add.delay(1, 2)
        long = fh.send_mail.delay("a@b.c")
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    header, lines = err.read_text().splitlines()[1], out.splitlines()
    assert header.split()[:4] == ["TIME", "(UTC)", "EVENT", "JOB"] and len(lines) == 2
    assert TIME_RE.match(lines[0]) and not MS_TIME_RE.search(out)
    columns = [[m.start() for m in re.finditer(r"\S+", line)][:7] for line in lines]  # time is two words
    assert columns[0] == columns[1] and header.index("JOB") == lines[0].index(short.id)  # aligned columns
    assert lines[1].split()[3:6] == [long.id, "firsthour.send_mail", "mail"]


# -- help, --url and --namespace everywhere ----------------------------------------------------------


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
    return found


def test_every_command_that_talks_to_redis_takes_url_and_namespace() -> None:
    missing = [
        " ".join(path)
        for path, command in commands(main)
        if not isinstance(command, click.Group) or path in (("workers",), ("job",))
        if path not in (("tasks",), ("acl",))  # neither talks to Redis: the registry, an ACL rule to copy
        and not {"url", "namespace"} <= {p.name for p in command.params}
    ]
    assert missing == []


def test_help_takes_h_and_shows_whole_summaries(cli: Any) -> None:
    groups = [(), *[path for path, command in commands(main) if isinstance(command, click.Group)]]
    for path in groups:
        result = cli(*path, "-h")
        assert result.exit_code == 0 and "Usage:" in result.output, path
        listing = result.output.split("Commands:", 1)[1]
        assert "..." not in listing and "…" not in listing, (path, listing)
    assert "-y, --yes" in cli("dead", "purge", "-h").output
    assert "--namespace" in cli("scheduled", "list", "-h").output


def test_url_and_namespace_reach_the_worker_and_the_scheduler_commands(
    fh: ModuleType, run_worker: RunWorker, redis_url: str, cli: Any
) -> None:
    other = Inspector(Resq(redis_url, namespace="other"))
    later, _, status = other.enqueue("firsthour.add", [1, 2], delay=3600)
    assert status == "scheduled"
    listed = json.loads(cli("scheduled", "list", "--namespace", "other", "--json").output)
    assert [j["id"] for j in listed] == [later]
    assert json.loads(cli("scheduled", "list", "--json").output) == []  # namespace resq holds nothing
    assert cli("cron", "list", "-A", APP, "--namespace", "other").exit_code == 0
    now, _, _ = other.enqueue("firsthour.add", [2, 3])
    burst(run_worker, APP, "--namespace", "other")  # -A's app, in the namespace given on the command line
    assert other.app.job(now).result(timeout=10) == 5


def test_stats_on_an_empty_namespace_names_the_ones_that_hold_jobs(fh: ModuleType, cli: Any) -> None:
    fh.add.delay(1, 2)
    Inspector(Resq(fh.app.settings.url, namespace="billing")).enqueue("x", [])
    text = cli("stats", "--namespace", "empty").output
    assert "no queues yet in namespace 'empty'; namespaces with resq keys here: 'billing', 'resq'" in text
    assert json.loads(cli("stats", "--namespace", "empty", "--json").output)["other_namespaces"] == ["billing", "resq"]
    assert "other_namespaces" not in json.loads(cli("stats", "--json").output)
    assert Broker(Settings.build(fh.app.settings.url, "x")).admin.namespaces() == ["billing", "resq"]
