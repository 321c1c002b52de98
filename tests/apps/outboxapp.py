"""The SQLAlchemy example of ``docs/sqlalchemy.md`` (the block between the markers is copied there, and
``tests/contrib/test_sqlalchemy.py`` checks the copy): a sign-up that enqueues after commit, one that
writes its job into the outbox, and a task that reads the committed row. ``-A tests.apps.outboxapp:app``;
the database is ``DATABASE_URL`` (a SQLite file in the tests)."""

from __future__ import annotations

# --8<-- [start:example]
import os

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.orm import scoped_session, sessionmaker

from resq import Resq
from resq.contrib.sqlalchemy import create_outbox, enqueue_in_outbox, on_commit_of

app = Resq()
engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///app.db"))
Session = scoped_session(sessionmaker(engine))
app.on_commit = on_commit_of(Session)  # task.delay_on_commit waits for Session's commit

metadata = MetaData()
users = Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(80)))


@app.task
def welcome(user_id: int) -> str:
    try:
        name = Session.execute(select(users.c.name).where(users.c.id == user_id)).scalar_one()
        return f"welcome, {name}"
    finally:
        Session.remove()


def setup() -> None:
    metadata.create_all(engine)
    create_outbox(engine)  # the resq_outbox table (or add resq.contrib.sqlalchemy.metadata to migrations)


def sign_up(name: str) -> int:
    """After commit: sent to Redis once the transaction commits (lost if this process dies in between)."""
    with Session.begin():
        user_id = Session.execute(users.insert().values(name=name)).inserted_primary_key[0]
        welcome.delay_on_commit(user_id)
    return user_id


def sign_up_with_outbox(name: str) -> str:
    """The outbox: the job is a row of this very transaction; `resq outbox relay` sends it to Redis."""
    with Session.begin():
        user_id = Session.execute(users.insert().values(name=name)).inserted_primary_key[0]
        return enqueue_in_outbox(Session(), welcome, user_id)  # the job's id


# --8<-- [end:example]
