"""Engine and sessions. One :class:`Database` per app, kept in ``app.extensions``."""

from __future__ import annotations

import select
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, any_, bindparam, create_engine, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from .files import private_dir, private_file


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # The database holds phone numbers: private to the service's user (persistence.files).
            private_dir(Path(parsed.database).parent)
            if not Path(parsed.database).exists():
                private_file(parsed.database)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            # In WAL mode NORMAL stays consistent and loses nothing when the process
            # dies; only an OS crash or power cut can drop the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Take the write lock at BEGIN: two writers then queue on busy_timeout
            # instead of failing on a read-to-write lock upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **kwargs)
    _check_on_checkout(engine)
    return engine


# Connections kept for autocommit sessions (the access guard, the intake), and as many
# more under load.
AUTOCOMMIT_POOL = 5

# A pooled connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0


def _check_on_checkout(engine: Engine) -> None:
    """Hand out only live connections, as ``pool_pre_ping`` does, without a round trip per
    checkout. A server that ends a connection (a restart, a failover, pg_terminate_backend)
    sends its goodbye and closes the socket, so the idle connection's socket becomes
    readable: only then, or after ``IDLE_PING_SECONDS`` unused (a firewall may drop an idle
    connection without a word), is it pinged. A ping that finds the server gone
    invalidates the pool, as pre-ping does, and the pool connects again. A busy web
    process takes a connection back within milliseconds: its requests pay a poll() of the
    socket instead of a SELECT 1 (one round trip of the five or six a key press needs)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None:
            return  # a new connection
        if time.monotonic() - idle_since < IDLE_PING_SECONDS and not _readable(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError(f"connection lost while idle in the pool: {error}") from error
            raise


def _readable(dbapi_connection: Any) -> bool:
    """Whether the server sent anything to a connection nobody is using (its goodbye, or
    the end of the stream): an idle connection is never sent anything else."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True  # no socket any more: let the ping say so


def dialect_insert(session: Session) -> Any:
    """The ``insert`` of the session's dialect, which has ``on_conflict_do_*`` on both
    PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert
    return sqlite_insert


def among(session: Session, column: ColumnElement[Any] | InstrumentedAttribute[Any],
          values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``. On PostgreSQL ``column = ANY(array)``: one parameter however
    many values, so the statement's text stays short and the same from batch to batch
    (psycopg parses the text of every statement it has not seen, and an IN list of 500
    values is a new, long text at each size)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


class Database:
    def __init__(self, url: str, phone_hash_key: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Every session carries the phone-hash key (SIPAS_PHONE_HASH_KEY, never stored in
        # the database) so that opt-out and recent-call lookups also match purged numbers
        # (services/phone_match.py).
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False,
                                            info={"phone_hash_key": phone_hash_key})
        # On PostgreSQL, connections whose statements each commit on their own (see
        # autocommit), from a pool of their own: connections switched to autocommit and
        # back at each checkout cost more than the round trips they spare.
        self.autocommit_engine: Engine | None = None
        if self.engine.dialect.name == "postgresql":
            self.autocommit_engine = make_engine(url, isolation_level="AUTOCOMMIT", pool_size=AUTOCOMMIT_POOL,
                                                 max_overflow=AUTOCOMMIT_POOL)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A fresh session in one transaction: committed on success, rolled back on error."""
        with self.session_factory() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection for work that needs no transaction around it: reads that need not
        see one snapshot, and writes of one statement each (atomic on their own). On
        PostgreSQL each statement commits by itself, which spares a request the BEGIN and
        COMMIT round trips (and the ORM session, which such work does not need); on SQLite,
        which takes its write lock at BEGIN, it is one transaction, as ``begin`` gives.
        ``session(connection)`` puts an ORM session on it where one is needed."""
        if self.autocommit_engine is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self.autocommit_engine.connect() as conn:
            yield conn

    def session(self, connection: Connection) -> Session:
        """An ORM session on ``connection`` (within its transaction, if it has one: the
        session neither commits nor rolls it back)."""
        return self.session_factory(bind=connection)

    @contextmanager
    def cluster_lock(self, name: str) -> Iterator[bool]:
        """Try to take a cluster-wide lock for a job that must run on one worker at a time
        (a PostgreSQL session advisory lock); yields whether this process holds it. SQLite
        runs one worker, so the lock is always granted there."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = zlib.crc32(f"sipas:{name}".encode())
        with self.engine.connect() as conn:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.autocommit_engine is not None:
            self.autocommit_engine.dispose()
