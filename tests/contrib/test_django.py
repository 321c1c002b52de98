"""resq.contrib.django: the app built from ``settings.RESQ``, autodiscovery of ``tasks.py``,
``delay_on_commit`` under real SQLite transactions (commit and rollback), ``manage.py resq``, the example
project run end to end by a real worker, and the worker closing stale connections around jobs.

Django's settings are configured once per process (the example's ``shop`` app, SQLite in a temporary
directory); the worker and ``manage.py`` run as real subprocesses against the test's Redis.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

import resq
import resq.contrib.django as resq_django
from resq.contrib.django import integration
from resq.errors import ArgumentsError, ConfigError, UnknownJob
from resq.job import JobStatus
from resq.task import use_on_commit
from tests.conftest import RunWorker
from tests.helpers import BURST_TIMEOUT_S, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "django"
NAMESPACE = "djtest"
#: An app of the project's own, for ``RESQ = {"app": ...}``.
OWN_APP = resq.Resq("redis://127.0.0.1:1/0", namespace="own")

PROBE_TASKS = '''
import asyncio

from asgiref.sync import sync_to_async
from django.db import connection

from resq.contrib.django import task
from shop.models import Order


@task
def connection_open(query: bool) -> bool:
    """Whether this thread held a database connection when the job began; then query (opening one)."""
    was_open = connection.connection is not None
    if query:
        Order.objects.count()
    return was_open


@task
async def count_orders() -> int:
    await asyncio.sleep(0)
    return await sync_to_async(Order.objects.count)()
'''


@pytest.fixture(scope="module")
def django_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Django configured with the example's ``shop`` app on a migrated SQLite file (once per process)."""
    if settings.configured:
        if "resq.contrib.django" not in settings.INSTALLED_APPS:
            pytest.skip("Django was configured by another test module without resq.contrib.django")
        return Path(settings.DATABASES["default"]["NAME"])
    db = tmp_path_factory.mktemp("django") / "db.sqlite3"
    sys.path.insert(0, str(EXAMPLE))
    settings.configure(
        SECRET_KEY="test",
        INSTALLED_APPS=["django.contrib.contenttypes", "resq.contrib.django", "shop"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        RESQ={"url": "redis://127.0.0.1:1/0", "namespace": NAMESPACE, "result_ttl": 120},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return db


@pytest.fixture
def app(django_db: Path, redis_url: str) -> Iterator[resq.Resq]:
    """The Django-built app, pointed at the test's Redis."""
    built = resq_django.get_app()
    built.reconfigure(url=redis_url)
    try:
        yield built
    finally:
        built.reconfigure(url="redis://127.0.0.1:1/0")


def test_settings_build_the_app_and_tasks_are_discovered(django_db: Path) -> None:
    app = resq_django.app
    assert isinstance(app, resq.Resq)
    assert app is resq_django.get_app()
    assert app.settings.namespace == NAMESPACE
    assert app.settings.result_ttl == 120
    assert "shop.tasks.process_order" in app.tasks  # shop/tasks.py, imported by ResqConfig.ready()
    from django.apps import apps

    assert apps.get_app_config("resq").name == "resq.contrib.django"
    assert app.on_commit is not None


def test_invalid_settings_fail_clearly(django_db: Path) -> None:
    with pytest.raises(ConfigError, match="must be a dict"):
        integration._build("redis://x")
    with pytest.raises(ConfigError, match="unknown"):
        integration._build({"url": "redis://127.0.0.1:1/0", "result_tll": 3})
    with pytest.raises(ConfigError, match="not both"):
        integration._build({"app": "tests.contrib.test_django:OWN_APP", "namespace": "x"})
    with pytest.raises(ConfigError, match="not a Resq app"):
        integration._build({"app": "tests.contrib.test_django:NAMESPACE"})
    own = integration._build({"app": "tests.contrib.test_django:OWN_APP"})
    assert own is OWN_APP
    assert own.on_commit is not None
    default = integration._build(None)  # no RESQ: RESQ_REDIS_URL / RESQ_NAMESPACE, as Resq()
    assert default.settings.namespace == resq.Resq().settings.namespace


def test_delay_on_commit_enqueues_at_commit_and_never_on_rollback(app: resq.Resq, redis_client: redis.Redis) -> None:
    from shop.models import Order
    from shop.tasks import process_order

    with transaction.atomic():
        order = Order.objects.create(item="book")
        committed = process_order.delay_on_commit(order.pk)
        with pytest.raises(UnknownJob):
            app.job(committed).status()  # not sent while the transaction is open
    assert app.job(committed).status() is JobStatus.QUEUED

    with pytest.raises(RuntimeError), transaction.atomic():
        doomed = Order.objects.create(item="lamp")
        rolled_back = process_order.delay_on_commit(doomed.pk)
        raise RuntimeError("roll back")
    assert not Order.objects.filter(pk=doomed.pk).exists()
    with pytest.raises(UnknownJob):
        app.job(rolled_back).status()
    assert not [k for k in redis_client.scan_iter() if rolled_back.encode() in k]

    # A nested savepoint that rolls back drops its job; the outer commit sends the others.
    with transaction.atomic():
        kept = process_order.apply_async_on_commit((order.pk,), queue="orders")
        try:
            with transaction.atomic():
                dropped = process_order.delay_on_commit(order.pk)
                raise RuntimeError("inner")
        except RuntimeError:
            pass
    assert app.job(kept).queue == "orders"
    with pytest.raises(UnknownJob):
        app.job(dropped).status()

    # Outside a transaction (autocommit), the job is sent at once, under the id returned.
    now = process_order.delay_on_commit(order.pk)
    assert app.job(now).status() is JobStatus.QUEUED


def test_delay_on_commit_checks_arguments_now_and_needs_an_integration(app: resq.Resq) -> None:
    from shop.tasks import process_order

    with pytest.raises(ArgumentsError, match="nothing will be enqueued"), transaction.atomic():
        process_order.delay_on_commit(1, 2)  # type: ignore[call-arg]

    plain = resq.Resq("redis://127.0.0.1:1/0")

    @plain.task
    def add(a: int, b: int) -> int:
        return a + b

    previous = use_on_commit(None)
    try:
        with pytest.raises(ConfigError, match=r"resq\.contrib\.django"):
            add.delay_on_commit(1, 2)
        pending: list[Any] = []
        plain.on_commit = pending.append  # any integration: a function that keeps the callback
        job_id = add.delay_on_commit(1, 2)
        assert len(pending) == 1 and isinstance(job_id, str)
    finally:
        use_on_commit(previous)
    assert previous is not None  # Django's, installed by the integration for apps of the project's own


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(REPO_ROOT)]),
            "PYTHONUNBUFFERED": "1",
            "RESQ_REDIS_URL": redis_url,
            "RESQ_NAMESPACE": "shop",
            "DJANGO_SETTINGS_MODULE": "mysite.settings",
        }
    )
    env.pop("RESQ_APP", None)
    env.update(extra)
    return env


def _manage(env: dict[str, str], *args: str, timeout: float = BURST_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), *args],
        env=env,
        cwd=str(EXAMPLE),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


PLACE_ORDERS = """
import json
from shop.views import place_order
committed = place_order("book")
try:
    place_order("lamp", fail=True)
except RuntimeError:
    pass
from shop.tasks import process_order
with __import__("django.db").db.transaction.atomic():
    rolled = process_order.delay_on_commit(12345)
    __import__("django.db").db.transaction.set_rollback(True)
print(json.dumps({"order": committed[0], "job": committed[1], "rolled_back_job": rolled}))
"""


def test_the_example_project_runs_committed_jobs_in_a_manage_py_worker(redis_url: str, tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite3"
    env = _env(redis_url, EXAMPLE_DB=str(db))
    migrated = _manage(env, "migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr

    placed = _manage(env, "shell", "-c", PLACE_ORDERS)
    assert placed.returncode == 0, placed.stderr
    ids = json.loads(placed.stdout.strip().splitlines()[-1])

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, item, processed FROM shop_order ORDER BY id").fetchall()
    assert rows == [(ids["order"], "book", 0)]  # the rolled-back order was never written

    producer = resq.Resq(redis_url, namespace="shop")
    assert producer.job(ids["job"]).status() is JobStatus.QUEUED
    for job_id in (ids["rolled_back_job"],):
        with pytest.raises(UnknownJob):
            producer.job(job_id).status()
    client = redis.Redis.from_url(redis_url)
    try:
        assert not [k for k in client.scan_iter() if ids["rolled_back_job"].encode() in k]
    finally:
        client.close()

    worker = _manage(env, "resq", "worker", "--burst", "-q", "default", "-c", "1", "--no-banner")
    assert worker.returncode == 0, worker.stdout + worker.stderr

    job = producer.job(ids["job"])
    assert job.status() is JobStatus.SUCCEEDED
    assert job.result(timeout=5) == f"processed Order {ids['order']} (book)"
    with sqlite3.connect(db) as conn:
        processed, by = conn.execute(
            "SELECT processed, processed_by FROM shop_order WHERE id = ?", (ids["order"],)
        ).fetchone()
    assert processed == 1 and by is not None and by != os.getpid()  # the ORM, in the worker's process

    stats = _manage(env, "resq", "stats", "--json")
    assert stats.returncode == 0, stats.stdout + stats.stderr
    tasks = _manage(env, "resq", "tasks")
    assert tasks.returncode == 0 and "shop.tasks.process_order" in tasks.stdout, tasks.stdout + tasks.stderr
    usage = _manage(env, "resq", "--help")
    assert usage.returncode == 0 and "worker" in usage.stdout
    scheduler = _manage(env, "resq", "scheduler", "--help")  # resq_scheduler's command, through resq's CLI
    assert scheduler.returncode == 0 and "--schedule" in scheduler.stdout, scheduler.stdout + scheduler.stderr


def test_a_worker_closes_stale_connections_around_jobs(redis_url: str, tmp_path: Path, run_worker: RunWorker) -> None:
    """``resq worker -A resq.contrib.django:app`` (Django set up on first access), CONN_MAX_AGE=0: the
    connection a job opened is closed once it ends, so the next job on that thread starts without one."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "__init__.py").write_text("")
    (probe / "tasks.py").write_text(PROBE_TASKS)
    db = tmp_path / "probe.sqlite3"
    (tmp_path / "probe_settings.py").write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "INSTALLED_APPS = [*INSTALLED_APPS, 'probe']  # noqa: F405\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(db)!r}, 'CONN_MAX_AGE': 0}}}}\n"
    )
    env = _env(redis_url, DJANGO_SETTINGS_MODULE="probe_settings")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    migrated = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), "migrate", "--verbosity", "0"],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=BURST_TIMEOUT_S,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr

    worker = run_worker("resq.contrib.django:app", "-c", "1", "--no-banner", env=env, url=redis_url)
    producer = resq.Resq(redis_url, namespace="shop")
    first = producer.enqueue_many([("probe.tasks.connection_open", (True,))])[0]
    assert first.result(timeout=BURST_TIMEOUT_S) is False
    second = producer.enqueue_many([("probe.tasks.connection_open", (False,))])[0]
    assert second.result(timeout=BURST_TIMEOUT_S) is False  # closed after the first job
    counted = producer.enqueue_many([("probe.tasks.count_orders", ())])[0]
    assert counted.result(timeout=BURST_TIMEOUT_S) == 0  # an async task uses the ORM; the hooks do not break it
    assert worker.poll() is None
    wait_for(lambda: producer.job(counted.id).status() is JobStatus.SUCCEEDED, message="async job succeeded")


def test_connections_are_left_alone_outside_a_worker(app: resq.Resq) -> None:
    """In a test (eager or drained jobs), the hooks do nothing: a transaction in progress survives."""
    from shop.models import Order
    from shop.tasks import process_order

    from resq.testing import eager

    assert integration._in_worker is False
    with transaction.atomic():
        order = Order.objects.create(item="pen")
        with eager(app):
            assert process_order.delay(order.pk).result(timeout=5) == f"processed Order {order.pk} (pen)"
        assert connection.in_atomic_block and connection.connection is not None
    assert Order.objects.get(pk=order.pk).processed


def test_call_command_runs_resq_and_reports_failures(app: resq.Resq, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import CommandError, call_command

    before = os.environ.get("RESQ_APP")
    call_command("resq", "tasks")
    assert "shop.tasks.process_order" in capsys.readouterr().out
    with pytest.raises(CommandError, match="exited with status 2"):
        call_command("resq", "no-such-command")
    assert os.environ.get("RESQ_APP") == before
