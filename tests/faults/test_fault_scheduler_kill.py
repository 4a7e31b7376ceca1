"""A `beacon scheduler` killed (SIGKILL) while it ingests, then restarted: nothing lost or doubled.

The scheduler takes files from a drop folder. It is killed while a batch is being
processed; the restarted scheduler finishes that batch from its raw copy and ingests the
rest. Every delivered record ends up exactly once: accepted and stored, or quarantined.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_support import beacon_env, start_beacon, stop, tail, wait_until, write_drop_files
from sqlalchemy import func, select
from testkit import drop_postgres_database, fresh_postgres_database, skip_or_fail_without_postgres

from services.db import Database, connect
from services.db.models import IngestBatch, Measurement, QuarantinedRecord

pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.timeout(180), pytest.mark.postgres]

FILES = 4
CELLS = 400
PERIODS = 60  # 24,000 records per file: about a second of work each
BAD_EVERY = 97  # every 97th value is not a number: quarantined as not_numeric
STOP_S = 90  # a clean stop waits for the running jobs


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database: the production setup of `beacon scheduler`."""
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_fault_kill")
    yield url
    drop_postgres_database(url)


def batches(db: Database) -> list[IngestBatch]:
    with db.session() as session:
        return list(session.scalars(select(IngestBatch).order_by(IngestBatch.id)))


def test_scheduler_killed_mid_batch_loses_and_doubles_nothing(
    database_url: str, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    valid, invalid = write_drop_files(
        drop / "feed", files=FILES, cells=CELLS, periods=PERIODS, bad_every=BAD_EVERY
    )
    env = beacon_env(
        tmp_path / "data", database_url, BEACON_DROP_DIR=str(drop), BEACON_DROP_POLL_S="5"
    )
    log = tmp_path / "scheduler.log"
    db = connect(database_url)
    try:
        first = start_beacon(["scheduler"], env, log)
        try:
            # Kill once a later batch is mid-way: earlier files are done, the rest untouched.
            def second_batch_processing() -> bool:
                rows = batches(db)
                return len(rows) >= 2 and rows[-1].status == "processing"

            wait_until(second_batch_processing, timeout=90, every=0.05)
        except BaseException:
            stop(first, sig=signal.SIGKILL)
            raise
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        interrupted = [b.id for b in batches(db) if b.status == "processing"]
        assert interrupted, "the kill came too late: no batch was mid-way"
        assert sorted(p.name for p in (drop / "feed").iterdir())  # files still waiting

        # The same command again, no manual step: the standby logic takes the expired lease.
        second = start_beacon(["scheduler"], env, log)
        try:
            wait_until(lambda: not any((drop / "feed").iterdir()), timeout=120, every=0.5)
            wait_until(lambda: all(b.status == "done" for b in batches(db)), timeout=30, every=0.5)
        finally:
            assert stop(second) == 0, tail(log)

        rows = batches(db)
        with db.session() as session:
            stored = session.scalar(select(func.count()).select_from(Measurement))
            keys = session.scalar(
                select(func.count()).select_from(
                    select(Measurement.element_id, Measurement.kpi_id, Measurement.period_end)
                    .distinct()
                    .subquery()
                )
            )
            quarantined = session.scalar(select(func.count()).select_from(QuarantinedRecord))
            record = QuarantinedRecord.record
            refused_key = record["dn"].as_string() + "|" + record["period_end"].as_string()
            quarantined_keys = session.scalar(select(func.count(func.distinct(refused_key))))
    finally:
        db.dispose()

    # One batch per file: the interrupted one was finished, not ingested a second time.
    assert len(rows) == FILES, [(b.id, b.status, b.received) for b in rows]
    assert all(b.status == "done" for b in rows)
    assert set(interrupted) <= {b.id for b in rows}
    for batch in rows:
        assert batch.received == batch.accepted + batch.duplicates + batch.quarantined
    # Count conservation over the whole delivery: accepted + quarantined = delivered.
    assert sum(b.accepted for b in rows) == valid
    assert sum(b.quarantined for b in rows) == invalid
    assert sum(b.received for b in rows) == valid + invalid
    # And in the tables: every record once, no duplicate row, no doubled refusal.
    assert stored == keys == valid
    assert quarantined == quarantined_keys == invalid
    assert sorted(p.name for p in (drop / ".done").rglob("*.csv")) == [
        f"pm-{i:02d}.csv" for i in range(FILES)
    ]
