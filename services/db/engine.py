"""Engine and session handling for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InternalError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "beacon_write"


@dataclass(frozen=True)
class Database:
    """One database: an engine plus read and write session factories."""

    url: str
    engine: Engine
    _reader: sessionmaker[Session]
    _writer: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        factory = self._writer if write else self._reader
        session = factory()
        try:
            yield session
            if write:
                session.commit()
            # A read session just closes: closing (unlike rollback) keeps loaded objects
            # usable after the block, and ends the transaction all the same.
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def database_unavailable(exc: BaseException) -> bool:
    """True when the database, not the request or the data, failed: unreachable, restarting,
    read-only or full. Such failures pass by themselves, so callers answer "try again later"
    (503) or keep the work for a retry; a data error (a constraint, a value out of a
    column's range) would fail the same way again.
    """
    if not isinstance(exc, DBAPIError):
        return False
    # OperationalError: connection refused or cut, server shutting down, disk full, SQLite
    # read-only or locked; InternalError: PostgreSQL's read-only transaction.
    return exc.connection_invalidated or isinstance(exc, OperationalError | InternalError)


def connect(url: str, *, echo: bool = False) -> Database:
    """Create the engine for `url`, tuned for its dialect."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, echo=echo)
    else:
        # pre_ping survives a database restart without surfacing stale-connection errors.
        engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10)
    writer_engine = engine.execution_options(**{WRITE_OPTION: True})
    return Database(
        url=url,
        engine=engine,
        _reader=sessionmaker(bind=engine, expire_on_commit=False),
        _writer=sessionmaker(bind=writer_engine, expire_on_commit=False),
    )


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL creates and owns; None for other databases, memory,
    and URI filenames (`file:…?mode=ro&uri=true`, which name an existing file as is)."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take over BEGIN from pysqlite so write transactions can start IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY when
        # another writer committed in between; IMMEDIATE takes the write lock up front
        # (waiting on busy_timeout) so read-then-write units of work are safe.
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
