"""The data-health read models behind the page: edge cases the page tests do not reach."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.db import Database
from services.db.models import DataGap, IngestBatch, JobRun, Source
from services.errors import NotFound
from services.ingest import health_queries

NOW = datetime(2026, 11, 20, 12, 7, tzinfo=UTC)


def _source(db: Database, name: str = "feed") -> int:
    with db.session(write=True) as session:
        source = Source(name=name, kind="csv", expected_cadence_s=900)
        session.add(source)
        session.flush()
        return source.id


def test_a_gap_older_than_the_window_counts_only_its_periods_inside(db: Database) -> None:
    source_id = _source(db)
    start = datetime(2026, 11, 19, 6, 0, tzinfo=UTC)  # 30 h before NOW, on the 15-min grid
    with db.session(write=True) as session:
        session.add(
            DataGap(
                source_id=source_id,
                element_id=None,
                period_start=start,
                period_end=start + timedelta(hours=8),
            )
        )
    with db.session() as session:
        matrix = health_queries.gap_matrix(session, now=NOW)
    # The window opens at 12:07 the day before; the first period inside ends at 12:15.
    assert matrix.cells["missing"].sum() == 8
    assert matrix.cells["bucket"].min() == datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    assert list(matrix.cells["label"].unique()) == ["feed · whole source"]


def test_raw_excerpt_is_bounded_and_survives_a_damaged_payload(db: Database) -> None:
    source_id = _source(db)
    payload = "é".encode() * 5000  # two bytes a character: the cut falls inside a character
    with db.session(write=True) as session:
        good = IngestBatch(
            source_id=source_id,
            raw_format="csv",
            checksum="0" * 64,
            raw=gzip.compress(payload),
            raw_size=len(payload),
        )
        damaged = IngestBatch(
            source_id=source_id, raw_format="csv", checksum="1" * 64, raw=b"not gzip", raw_size=8
        )
        session.add_all([good, damaged])
        session.flush()
        ids = good.id, damaged.id
    with db.session() as session:
        excerpt = health_queries.raw_excerpt(session, batch_id=ids[0], limit=4095)
        broken = health_queries.raw_excerpt(session, batch_id=ids[1])
        with pytest.raises(NotFound):
            health_queries.raw_excerpt(session, batch_id=999_999)
    assert excerpt.shown_bytes == 4095
    assert excerpt.truncated
    assert excerpt.text.startswith("é" * 2047)
    assert excerpt.text.endswith("\ufffd")
    assert (broken.text, broken.total_bytes) == ("", 8)


def test_back_off_ends_once_it_has_been_waited_out(db: Database) -> None:
    with db.session(write=True) as session:
        for minutes in (20, 10):
            session.add(
                JobRun(
                    job_id="ingest.drop_folder",
                    started_at=NOW - timedelta(minutes=minutes),
                    finished_at=NOW - timedelta(minutes=minutes, seconds=-1),
                    status="failed",
                )
            )
        session.add(JobRun(job_id="health.gaps", started_at=NOW, status="running"))
    with db.session() as session:
        states = {s.job_id: s for s in health_queries.job_states(session, now=NOW)}
        later = health_queries.job_states(session, now=NOW - timedelta(minutes=9))
    drop = states["ingest.drop_folder"]
    assert drop.consecutive_failures == 2
    assert drop.backoff_until is None  # two failures wait 2 min; the last was 10 min ago
    assert later[1].backoff_until == NOW - timedelta(minutes=10, seconds=-1) + timedelta(minutes=2)
    assert states["health.gaps"].last_status == "running"
    assert states["health.gaps"].consecutive_failures == 0


def test_quarantine_page_reports_the_total_beyond_its_limit(db: Database) -> None:
    from services.db.models import QuarantinedRecord

    source_id = _source(db)
    with db.session(write=True) as session:
        session.add_all(
            QuarantinedRecord(
                source_id=source_id,
                received_at=NOW - timedelta(minutes=i),
                reason_code="not_numeric",
                reason="value N/A is not a number",
                record={"value": "N/A", "i": i},
            )
            for i in range(5)
        )
    with db.session() as session:
        page = health_queries.quarantine_page(session, limit=2)
        by_source = health_queries.open_quarantine_sources(session, reason_code="not_numeric")
        names = session.scalars(select(Source.name)).all()
    assert page.total == 5
    assert [r.record["i"] for r in page.rows] == [0, 1]
    assert by_source == names == ["feed"]
