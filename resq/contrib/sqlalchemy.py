"""SQLAlchemy: enqueue after commit, and the transactional outbox.

After commit: ``app.on_commit = on_commit_of(Session)`` (a ``scoped_session``, or one ``Session``) makes
``task.delay_on_commit(...)`` wait for the session's transaction to commit; a rollback drops the jobs (a
rolled-back savepoint drops only the jobs registered inside it). Jobs are sent after the commit, so a
crash between the commit and Redis loses them: the outbox closes that gap.

The outbox: :func:`enqueue_in_outbox` writes the job (its envelope, encoded by resq's producer: the
``before_enqueue`` hooks ran, encrypted arguments are sealed) as a row of ``resq_outbox`` in the
caller's transaction, so the job exists exactly when the data does. :func:`relay` (``resq outbox relay``)
moves rows to Redis, oldest first, with the row's id as the job's id and ``if_absent`` semantics: a
relay that crashes after enqueueing and before deleting sends the same id again, which creates nothing.
Several relays may run at once: on PostgreSQL each takes other rows (``FOR UPDATE SKIP LOCKED``); on
SQLite a second relay may send the same rows again, which creates nothing either.

Needs the ``sqlalchemy`` extra (``pip install 'resq[sqlalchemy]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, Engine, LargeBinary, MetaData, String, Table, delete, event, select
from sqlalchemy.orm import Session, SessionTransaction, scoped_session, sessionmaker

from resq.clock import due_time_ms, now_ms
from resq.codec import decode_envelope
from resq.errors import ConfigError
from resq.job import new_job_id
from resq.log import get_logger
from resq.producer import enqueue_prepared, prepare
from resq.settings import validate_name

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from resq.app import Resq
    from resq.task import OnCommit, Task

__all__ = [
    "OUTBOX",
    "TABLE",
    "apply_in_outbox",
    "create_outbox",
    "enqueue_in_outbox",
    "metadata",
    "on_commit_of",
    "pending",
    "relay",
    "send",
]

log = get_logger("resq.contrib.sqlalchemy")

#: The outbox table's name.
TABLE = "resq_outbox"
#: The MetaData that holds :data:`OUTBOX` (``metadata.create_all(engine)``, or Alembic's ``target_metadata``).
metadata = MetaData()
#: The outbox: one row per job not yet relayed to Redis.
OUTBOX = Table(
    TABLE,
    metadata,
    #: the job's id (``resq.job.new_job_id()``): the id the relay enqueues it with
    Column("id", String(64), primary_key=True),
    Column("task", String(255), nullable=False),
    Column("queue", String(255), nullable=False),
    #: the job's envelope, encoded by resq (hooks applied, arguments sealed when the task encrypts)
    Column("envelope", LargeBinary, nullable=False),
    #: when to run it (ms since the epoch; 0: as soon as relayed)
    Column("due_ms", BigInteger, nullable=False, default=0),
    Column("created_ms", BigInteger, nullable=False, index=True),
)

#: ``session.info`` key of the callbacks waiting for the commit: ``[(transaction, fn), ...]``.
_PENDING = "resq.on_commit"
#: ``session.info`` key set once the session's listeners are installed.
_LISTENING = "resq.on_commit.listening"


def on_commit_of(target: Session | scoped_session[Any]) -> OnCommit:
    """An on-commit function for ``app.on_commit`` (``task.delay_on_commit``) bound to ``target``: a
    ``scoped_session`` (its current session, per thread or per scope: what web apps use) or one ``Session``.

    A callback registered while the session is in a transaction runs after that transaction commits, and
    never if it rolls back; one registered inside a savepoint (``begin_nested``) is dropped if the savepoint
    rolls back. With no transaction begun, the callback runs at once.

    Raises:
        ConfigError: ``target`` is a ``sessionmaker`` (it has no current session: use ``scoped_session``).
    """
    if isinstance(target, sessionmaker):
        raise ConfigError(
            "on_commit_of needs a Session or a scoped_session, not a sessionmaker (which session would it "
            "watch?): wrap it, on_commit_of(scoped_session(factory))"
        )
    if not isinstance(target, Session | scoped_session):
        raise ConfigError(f"on_commit_of needs a Session or a scoped_session, got {target!r}")

    def on_commit(fn: Callable[[], None]) -> None:
        session = target() if isinstance(target, scoped_session) else target
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is None:
            fn()
            return
        _listen(session)
        session.info.setdefault(_PENDING, []).append((transaction, fn))

    return on_commit


def _listen(session: Session) -> None:
    if session.info.get(_LISTENING):
        return
    session.info[_LISTENING] = True
    event.listen(session, "after_commit", _committed)
    event.listen(session, "after_soft_rollback", _rolled_back)


def _committed(session: Session) -> None:
    """A transaction committed; when the outermost one: run its callbacks, in order (a failing one is logged, the others
    still run: the data is committed either way). A savepoint released fires this too: its callbacks wait
    for the outermost commit."""
    if session.get_nested_transaction() is not None:
        return
    for _, fn in session.info.pop(_PENDING, []):
        try:
            fn()
        except Exception as exc:
            log.error("on_commit_failed", error=f"{type(exc).__name__}: {exc}")


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    """``previous`` rolled back: drop the callbacks registered in it or in a savepoint inside it."""
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [(t, fn) for t, fn in pending if not _within(t, previous)]


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def create_outbox(engine: Engine) -> None:
    """Create the outbox table if it does not exist (or use :data:`metadata` in your migrations)."""
    metadata.create_all(engine, tables=[OUTBOX])


def enqueue_in_outbox(session: Session | Connection, task: Task[Any, Any], /, *args: Any, **kwargs: Any) -> str:
    """Write a job of ``task`` into the outbox, in ``session``'s transaction (the job is relayed to Redis
    once that transaction committed; nothing if it rolls back). Returns the job's id.

    Raises:
        ArgumentsError: the arguments do not match the task's signature (nothing is written).
        Veto, EncodeError, PayloadTooLarge: as for ``task.delay`` (nothing is written).
    """
    return apply_in_outbox(session, task, args, kwargs)


def apply_in_outbox(
    session: Session | Connection,
    task: Task[Any, Any],
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
) -> str:
    """:func:`enqueue_in_outbox` with job options, as ``task.apply_async``; ``delay`` counts from now
    (not from the relay). Returns the job's id."""
    task.check_arguments(args, kwargs, " (nothing was written to the outbox)")
    target = validate_name(queue, "queue name") if queue is not None else task.queue
    due_ms = due_time_ms(delay, at)
    envelope, raw = prepare(task.app, task.name, args, kwargs, target, job_id=new_job_id())
    session.execute(
        OUTBOX.insert().values(
            id=envelope.id, task=envelope.task, queue=envelope.queue, envelope=raw, due_ms=due_ms, created_ms=now_ms()
        )
    )
    return envelope.id


def pending(connection: Connection, batch: int = 100) -> list[Row[Any]]:
    """Up to ``batch`` outbox rows, oldest first; on PostgreSQL locked for this transaction, skipping rows
    another relay holds."""
    query = select(OUTBOX).order_by(OUTBOX.c.created_ms, OUTBOX.c.id).limit(batch)
    if connection.dialect.name in ("postgresql", "mysql", "mariadb", "oracle"):
        query = query.with_for_update(skip_locked=True)
    return list(connection.execute(query).all())


def send(app: Resq, row: Row[Any]) -> bool:
    """Enqueue one outbox row with its id as the job's id, only if Redis holds no record of that id (so a
    row sent twice, after a relay crashed, creates one job). Returns whether a job was created."""
    envelope = decode_envelope(row.envelope)
    return enqueue_prepared(app, envelope, row.envelope, due_ms=row.due_ms, if_absent=True).created


def relay(app: Resq, engine: Engine, batch: int = 100) -> int:
    """Move up to ``batch`` outbox rows to Redis, oldest first, and delete them, in one database
    transaction. Returns how many rows were relayed (``batch``: call again, more may wait).

    Raises:
        BrokerUnavailable: Redis did not answer (the rows not yet deleted stay, and are sent again).
    """
    with engine.begin() as connection:
        rows = pending(connection, batch)
        created = sum(send(app, row) for row in rows)
        if rows:
            connection.execute(delete(OUTBOX).where(OUTBOX.c.id.in_([row.id for row in rows])))
    if rows:
        log.info("outbox_relayed", rows=len(rows), created=created)
    return len(rows)
