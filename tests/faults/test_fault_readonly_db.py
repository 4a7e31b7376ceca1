"""A read-only or full database: ingest refuses cleanly and keeps the delivery for later.

Nothing can be stored, not even the raw copy, so the sender's copy is the only one: the
API answers 503 (send again later), the drop folder leaves the file where it is. Once the
database takes writes again the same delivery is ingested and every record is counted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fault_support import private_postgres
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from testkit import (
    drop_postgres_database,
    fresh_postgres_database,
    seeded_database,
    settings_for,
    skip_or_fail_without_postgres,
)

from app import create_app
from services import audit, auth
from services.db import Database, connect
from services.db.models import IngestBatch, Measurement, QuarantinedRecord
from services.ingest.dropfolder import poll_drop_folder
from services.ingest.pipeline import RawNotStored, ingest_records
from services.ingest.sources.telemetry import parse_csv

pytestmark = pytest.mark.xdist_group("faults")

DN = "SubNetwork=North,ManagedElement=RO-{i},EUtranCellFDD=C1"


def delivery(cells: int = 40, bad: int = 3, hour: int = 8) -> bytes:
    """CSV of `cells` good records and `bad` records that are not numbers."""
    stamp = f"2026-11-25T{hour:02d}:00:00Z"
    lines = ["dn,kpi,period_end,value"]
    lines += [f'"{DN.format(i=i)}",prb_util_dl,{stamp},{10 + i}' for i in range(cells)]
    lines += [f'"{DN.format(i=1000 + i)}",prb_util_dl,{stamp},n/a' for i in range(bad)]
    return ("\n".join(lines) + "\n").encode()


def drop_file(folder: Path, name: str, payload: bytes) -> Path:
    path = folder / "feed" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def counts(db: Database) -> tuple[int, int, int]:
    """(measurements, quarantined records, batches) stored."""
    with db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Measurement)) or 0,
            session.scalar(select(func.count()).select_from(QuarantinedRecord)) or 0,
            session.scalar(select(func.count()).select_from(IngestBatch)) or 0,
        )


def assert_refused_then_kept(read_only: Database, folder: Path) -> Path:
    """Both ingest paths refuse with nothing stored, and the dropped file stays put."""
    parsed = parse_csv(delivery(hour=9), name="push")
    with pytest.raises(RawNotStored) as refused:
        ingest_records(read_only, source="push", records=parsed.records, raw=delivery(hour=9))
    assert refused.value.status == 503
    assert "send it again later" in refused.value.message
    path = drop_file(folder, "pm-1.csv", delivery())
    outcome = poll_drop_folder(read_only, folder, settle_seconds=0)
    assert (outcome.files, outcome.deferred, outcome.failed, outcome.accepted) == (1, 1, 0, 0)
    assert path.exists(), "the only copy of the delivery was moved or lost"
    assert not (folder / ".failed").exists()
    return path


def assert_ingested_once(db: Database, folder: Path, path: Path) -> None:
    outcome = poll_drop_folder(db, folder, settle_seconds=0)
    assert (outcome.files, outcome.accepted, outcome.quarantined, outcome.deferred) == (1, 40, 3, 0)
    assert not path.exists()
    assert counts(db) == (40, 3, 1)
    # Polling again finds nothing: the delivery was taken exactly once.
    assert poll_drop_folder(db, folder, settle_seconds=0).files == 0


def test_read_only_sqlite_file_refuses_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "beacon.db"
    url = f"sqlite:///{path}"
    with seeded_database(url) as db, db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path.chmod(0o444)
    # SQLite opens a file it may not write read-only. root ignores file modes, so the URL
    # asks for exactly that, for every user alike.
    read_only = connect(f"sqlite:///file:{path}?mode=ro&uri=true")
    folder = tmp_path / "drop"
    try:
        kept = assert_refused_then_kept(read_only, folder)
    finally:
        read_only.dispose()
        path.chmod(0o644)
    db = connect(url)
    try:
        assert counts(db) == (0, 0, 0)
        assert_ingested_once(db, folder, kept)
    finally:
        db.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_fault_readonly")
    yield url
    drop_postgres_database(url)


def set_read_only(url: str, on: bool) -> None:
    """What a DBA (or a failover onto a standby) does: new sessions cannot write."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        value = "on" if on else "off"
        conn.execute(
            f'ALTER DATABASE "{parsed.database}" SET default_transaction_read_only = {value}'
        )


@pytest.mark.postgres
def test_read_only_postgres_answers_503_and_keeps_the_delivery(pg_url: str, tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=pg_url))
    db: Database = app.server.extensions["beacon"].db
    with db.session(write=True) as session:
        token = auth.create_api_token(
            session,
            name="collector",
            role="operator",
            actor=audit.SYSTEM,
            scopes=["read", "ingest"],
        ).plaintext
    client = app.server.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    folder = tmp_path / "drop"
    # The collector is in use (its token's last-used stamp is fresh, so reading it writes
    # nothing) when the database turns read-only.
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    try:
        set_read_only(pg_url, True)
        db.engine.dispose()  # the setting applies to new sessions
        kept = assert_refused_then_kept(db, folder)
        response = client.post("/api/v1/telemetry?source=push", data=delivery(), headers=headers)
        body = response.get_data(as_text=True)
        assert response.status_code == 503, body
        assert response.get_json()["error"]["code"] == "database_unavailable"
        assert "Traceback" not in body
        assert counts(db) == (0, 0, 0)

        set_read_only(pg_url, False)
        db.engine.dispose()
        assert_ingested_once(db, folder, kept)
        # The API client sends the same delivery again (under another source): all of it lands.
        again = client.post("/api/v1/telemetry?source=push", data=delivery(), headers=headers)
        assert again.status_code == 202, again.get_data(as_text=True)
        summary = again.get_json()
        assert (summary["received"], summary["duplicates"], summary["quarantined"]) == (
            43,
            40,
            3,
        ), summary
    finally:
        set_read_only(pg_url, False)
        db.dispose()


# ---- a full disk --------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(root: Path, size: str = "4m") -> Iterator[Path | None]:
    """A small tmpfs (root only); None when mounting is not permitted here."""
    mount = root / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk with one file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (65536, 4096, 512, 1):  # smaller and smaller, to the last byte
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)
    return filler


def test_disk_full_refuses_and_keeps_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    with tiny_disk(tmp_path) as disk:
        if disk is not None:
            # A real ENOSPC: the database file lives on a 4 MB tmpfs that is filled up.
            url = f"sqlite:///{disk / 'beacon.db'}"
            with seeded_database(url):
                pass
            filler = fill(disk)
            full = connect(url)
            try:
                kept = assert_refused_then_kept(full, folder)
            finally:
                full.dispose()
            filler.unlink()
        else:
            # Without a mount: SQLite's page limit makes it answer exactly as on a full disk
            # (SQLITE_FULL, "database or disk is full").
            url = f"sqlite:///{tmp_path / 'beacon.db'}"
            with seeded_database(url):
                pass
            full = connect(url)
            _cap_pages(full)
            try:
                kept = assert_refused_then_kept(full, folder)
            finally:
                full.dispose()
        db = connect(url)
        try:
            assert counts(db) == (0, 0, 0)
            assert_ingested_once(db, folder, kept)
        finally:
            db.dispose()


def _cap_pages(db: Database) -> None:
    from sqlalchemy import event

    @event.listens_for(db.engine, "connect")
    def _limit(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    db.engine.dispose()


@pytest.mark.postgres
def test_full_postgres_disk_answers_503_and_keeps_the_delivery(tmp_path: Path) -> None:
    # A private cluster whose database lives in a tablespace on a small tmpfs, filled to
    # the last byte: PostgreSQL answers "could not extend file" (SQLSTATE 53100) for every
    # write that needs a new page, as on a full data disk, and carries on serving reads.
    with private_postgres() as cluster, tiny_disk(cluster.root, size="64m") as disk:
        if disk is None:
            pytest.skip("mounting a small disk needs root and mount(8)")
        location = disk / "tablespace"
        location.mkdir()
        shutil.chown(location, user="postgres", group="postgres")
        shutil.chown(disk, user="postgres", group="postgres")
        with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE tiny LOCATION '{location}'")
            conn.execute('CREATE DATABASE "beacon" TABLESPACE tiny')
        url = cluster.url("beacon")
        with seeded_database(url):
            pass
        app = create_app(settings_for(tmp_path / "app", BEACON_DATABASE_URL=url))
        db: Database = app.server.extensions["beacon"].db
        with db.session(write=True) as session:
            token = auth.create_api_token(
                session, name="collector", role="operator", actor=audit.SYSTEM,
                scopes=["read", "ingest"],
            ).plaintext  # fmt: skip
        client = app.server.test_client()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        folder = tmp_path / "drop"
        filler = fill(disk)
        try:
            kept = assert_refused_then_kept(db, folder)
            response = client.post(
                "/api/v1/telemetry?source=push", data=delivery(), headers=headers
            )
            body = response.get_data(as_text=True)
            assert response.status_code == 503, body
            assert response.get_json()["error"]["code"] == "database_unavailable"
            assert "Traceback" not in body
            assert "could not extend file" in cluster.tail()  # it really was a full disk
            assert counts(db) == (0, 0, 0)  # reads still work on a full disk
        finally:
            filler.unlink()
        # Space is back (an operator freed it): the kept file is ingested exactly once.
        assert_ingested_once(db, folder, kept)
        db.dispose()
