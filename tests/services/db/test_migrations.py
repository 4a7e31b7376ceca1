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


def test_open_incident_twins_from_before_the_dedup_index_are_kept_apart(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from services.db.migrate import alembic_config

    db = connect(database_url)
    with db.engine.begin() as conn:
        cfg = alembic_config(db)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with db.engine.begin() as conn:
        for status in ("triggered", "acknowledged", "resolved"):
            conn.execute(
                text(
                    "INSERT INTO incidents (title, summary, severity, status, origin, "
                    "escalation_position, escalation_round, dedup_key, created_at, simulated) "
                    "VALUES ('t', '', 'sev3', :status, 'heartbeat', 0, 0, 'heartbeat:x', "
                    "CURRENT_TIMESTAMP, false)"
                ),
                {"status": status},
            )
    upgrade_to_head(db)
    with db.engine.connect() as conn:
        keys = conn.execute(text("SELECT id, status, dedup_key FROM incidents ORDER BY id")).all()
    first, second, closed = keys
    # The oldest open one keeps deduplicating; its open twin no longer collides; closed untouched.
    assert first.dedup_key == "heartbeat:x"
    assert second.dedup_key == f"heartbeat:x#dup{second.id}"
    assert closed.dedup_key == "heartbeat:x"
    db.dispose()


MIGRATE_SCRIPT = """
import sys, time
from services.db import connect, upgrade_to_head
db = connect(sys.argv[1])
time.sleep(float(sys.argv[2]) - time.time())  # every process starts migrating together
upgrade_to_head(db)
db.dispose()
"""


def test_processes_starting_together_on_a_new_database_all_migrate_it(database_url: str) -> None:
    # Web workers and the scheduler of a fresh deployment start at once: one migrates, the
    # others wait for it and find nothing to do; none fails on a half-made schema.
    import subprocess
    import sys
    import time

    start = f"{time.time() + 3.0}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_SCRIPT, database_url, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], "\n".join(outputs)
    db = connect(database_url)
    assert current_revision(db) == head_revision(db)
    db.dispose()
