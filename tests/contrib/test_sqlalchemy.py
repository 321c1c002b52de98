"""resq.contrib.sqlalchemy on SQLite (and PostgreSQL when a server and a driver are there): enqueue after
commit (commit, rollback, a savepoint rolled back), the outbox written and rolled back with the data, the
relay (the row's id is the job's id, a row sent twice after a crash makes one job), ``resq outbox relay
--once`` as a subprocess and a real worker running the relayed job, and the doc's example."""

from __future__ import annotations

import importlib.util
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, func, select, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from resq import Resq
from resq.contrib.sqlalchemy import OUTBOX, create_outbox, enqueue_in_outbox, on_commit_of, pending, relay, send
from resq.errors import ConfigError
from resq.ops import Inspector
from tests.apps import outboxapp
from tests.conftest import REPO_ROOT, RunResq, RunWorker
from tests.helpers import burst, read_log

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

data = MetaData()
notes = Table("notes", data, Column("id", Integer, primary_key=True), Column("body", String(80)))


@pytest.fixture
def app(redis_url: str) -> Resq:
    app = Resq(redis_url)

    @app.task(name="notes.index")
    def index(note: int, *, lang: str = "en") -> None: ...

    return app


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    data.create_all(engine)
    create_outbox(engine)
    yield engine
    engine.dispose()


def queued(app: Resq, queue: str = "default") -> list[str]:
    return [j.id for j in Inspector(app).queue_jobs(queue, limit=100)[0]]


def outbox_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(OUTBOX)).scalar_one()


def test_delay_on_commit_waits_for_the_commit_and_a_rollback_drops_it(app: Resq, engine: Engine) -> None:
    scoped = scoped_session(sessionmaker(engine))
    app.on_commit = on_commit_of(scoped)
    index = app.tasks["notes.index"]
    with scoped.begin():
        scoped.execute(notes.insert().values(body="kept"))
        job_id = index.delay_on_commit(1)
        assert queued(app) == []  # not before the commit
    assert queued(app) == [job_id]
    with pytest.raises(RuntimeError), scoped.begin():
        scoped.execute(notes.insert().values(body="lost"))
        index.delay_on_commit(2)
        raise RuntimeError("rolled back")
    scoped.remove()
    assert queued(app) == [job_id]


def test_a_rolled_back_savepoint_drops_only_its_jobs(app: Resq, engine: Engine) -> None:
    session = Session(engine)
    app.on_commit = on_commit_of(session)
    index = app.tasks["notes.index"]
    with session.begin():
        outer = index.delay_on_commit(1)
        savepoint = session.begin_nested()
        index.delay_on_commit(2)
        savepoint.rollback()
        with session.begin_nested():
            inner = index.delay_on_commit(3)
        assert queued(app) == []  # a released savepoint is not a commit
    assert queued(app) == [outer, inner]
    assert index.delay_on_commit(4) in queued(app)  # no transaction begun: at once
    session.close()


def test_a_sessionmaker_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="scoped_session"):
        on_commit_of(sessionmaker())  # type: ignore[arg-type]


def test_the_outbox_row_commits_and_rolls_back_with_the_data_then_relays(app: Resq, engine: Engine) -> None:
    index = app.tasks["notes.index"]
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        session.execute(notes.insert().values(body="lost"))
        enqueue_in_outbox(session, index, 1)
        raise RuntimeError("rolled back")
    assert outbox_rows(engine) == 0
    with Session(engine) as session, session.begin():
        session.execute(notes.insert().values(body="kept"))
        job_id = enqueue_in_outbox(session, index, 2, lang="fr")
    assert outbox_rows(engine) == 1
    assert queued(app) == []  # nothing in Redis until relayed

    assert relay(app, engine) == 1
    assert queued(app) == [job_id]  # the row's id is the job's id
    assert outbox_rows(engine) == 0
    assert Inspector(app).job_info(job_id)["task"] == "notes.index"
    assert relay(app, engine) == 0


def test_a_row_sent_twice_after_a_crash_makes_one_job(app: Resq, engine: Engine) -> None:
    index = app.tasks["notes.index"]
    with engine.begin() as connection:
        first = enqueue_in_outbox(connection, index, 1)
        second = enqueue_in_outbox(connection, index, 2)
    with engine.begin() as connection:  # a relay that enqueued and died before deleting
        rows = pending(connection)
        assert [r.id for r in rows] == [first, second]  # oldest first
        assert send(app, rows[0]) is True
    assert outbox_rows(engine) == 2
    assert relay(app, engine, batch=1) == 1  # the same id again: no second job
    assert relay(app, engine, batch=10) == 1
    assert queued(app) == [first, second]
    assert outbox_rows(engine) == 0


def test_outbox_relay_once_then_a_worker_runs_the_job(
    tmp_path: Path, redis_url: str, run_resq: RunResq, run_worker: RunWorker
) -> None:
    db = f"sqlite:///{tmp_path / 'example.db'}"
    env = {"DATABASE_URL": db}
    outboxapp.app.reconfigure(url=redis_url)
    outboxapp.engine = create_engine(db)
    outboxapp.Session.configure(bind=outboxapp.engine)
    try:
        outboxapp.setup()
        job_id = outboxapp.sign_up_with_outbox("ada")
        assert queued(outboxapp.app) == []
        with outboxapp.engine.connect() as connection:
            (row,) = pending(connection)
        proc = run_resq("outbox", "relay", "--db", db, "--once", app_ref="tests.apps.outboxapp:app", env=env)
        assert proc.wait(timeout=30) == 0, read_log(proc)
        assert "relayed 1 job" in read_log(proc)
        assert queued(outboxapp.app) == [job_id]
        burst(run_worker, "tests.apps.outboxapp:app", env=env)
        assert outboxapp.app.job(job_id).result(timeout=10) == "welcome, ada"
        assert send(outboxapp.app, row) is False  # relayed again after it finished: not run again
        assert queued(outboxapp.app) == []

        user_id = outboxapp.sign_up("grace")  # after commit
        (after_commit,) = queued(outboxapp.app)
        burst(run_worker, "tests.apps.outboxapp:app", env=env)
        assert outboxapp.app.job(after_commit).result(timeout=10) == "welcome, grace"
        assert user_id == 2
    finally:
        outboxapp.Session.remove()
        outboxapp.engine.dispose()


def test_outbox_relay_reports_a_bad_db_url_in_one_line(redis_url: str) -> None:
    from click.testing import CliRunner

    from resq.cli import main

    result = CliRunner().invoke(main, ["outbox", "relay", "--url", redis_url, "--db", "nosuchdb://x", "--once"])
    assert result.exit_code == 2, result.output
    assert "--db 'nosuchdb://x'" in result.output


def test_the_docs_carry_the_example_that_runs() -> None:
    source = (REPO_ROOT / "tests/apps/outboxapp.py").read_text()
    example = source.split("# --8<-- [start:example]\n")[1].split("# --8<-- [end:example]")[0].strip()
    assert example in (REPO_ROOT / "docs/sqlalchemy.md").read_text()


def _postgres() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    if importlib.util.find_spec("psycopg") is None:
        return "no PostgreSQL driver (psycopg) in this environment"
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}"
    return None


@pytest.mark.skipif(_postgres() is not None, reason=_postgres() or "")
def test_relay_on_postgresql_skips_rows_another_relay_holds(app: Resq) -> None:
    # A schema of the test's own: the server and its database belong to the machine's other users.
    schema = f"resq_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        create_outbox(engine)
        index = app.tasks["notes.index"]
        with engine.begin() as connection:
            ids = [enqueue_in_outbox(connection, index, n) for n in range(3)]
        with engine.begin() as holder:  # another relay holds the oldest row
            assert [r.id for r in pending(holder, batch=1)] == ids[:1]
            assert relay(app, engine) == 2
            holder.execute(text("select 1"))
        assert relay(app, engine) == 1
        assert sorted(queued(app)) == sorted(ids)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()
