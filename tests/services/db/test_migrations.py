"""The schema: migrations apply on SQLite and PostgreSQL and match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.db import connect, upgrade_to_head
from services.db.migrate import current_revision, head_revision
from services.db.models import Base


def test_migrations_apply_twice_and_match_models(database_url: str) -> None:
    db = connect(database_url)
    assert current_revision(db) is None
    upgrade_to_head(db)
    upgrade_to_head(db)  # a restart with nothing to do
    assert current_revision(db) == head_revision(db)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = connect(f"sqlite:///{tmp_path / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_times_come_back_as_utc_on_both_databases(database_url: str) -> None:
    from datetime import datetime, timedelta, timezone

    from services.db.models import Source

    db = connect(database_url)
    upgrade_to_head(db)
    berlin_noon = datetime(2026, 3, 29, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    with db.session(write=True) as session:
        session.add(Source(name="s", kind="csv", watermark=berlin_noon))
    with db.session() as session:
        stored = session.query(Source).one().watermark
    db.dispose()
    assert stored == berlin_noon
    assert stored.utcoffset() == timedelta(0)
