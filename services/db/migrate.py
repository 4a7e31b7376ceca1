"""Apply Alembic migrations programmatically; every start calls upgrade_to_head."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from .engine import Database, sqlite_file

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every Beacon process.
_PG_MIGRATION_LOCK = 0x6265616E


def alembic_config(database: Database) -> Config:
    """Alembic configuration pointing at Beacon's migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return cfg


def upgrade_to_head(database: Database) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    cfg = alembic_config(database)
    with _sqlite_file_lock(database), database.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Session-level lock: two web workers starting together migrate one after the other.
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()


@contextmanager
def _sqlite_file_lock(database: Database) -> Iterator[None]:
    """Migrate a SQLite file one process at a time (PostgreSQL has its advisory lock).

    Without it, processes starting together on a new file (the embedded app and a CLI
    command, or several workers) collide half-way through the schema: "database is
    locked" or "table already exists". The lock file sits next to the database.
    """
    path = sqlite_file(database.url)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".migrate-lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(database: Database) -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config(database)).get_current_head()
