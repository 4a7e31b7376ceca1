"""Freshness, gaps, drift and replay: the data-health services on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, update
from testkit import seeded_database

from services import audit, kv
from services.db import Database
from services.db.models import (
    CounterMapping,
    DataGap,
    DataHealthEvent,
    IngestBatch,
    Kpi,
    Measurement,
    QuarantinedRecord,
    Source,
)
from services.errors import InvalidInput, NotFound
from services.ingest import drift, gaps, health
from services.ingest.pipeline import ingest_records
from services.ingest.replay import replay_quarantine, replay_stuck_batches

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
CELLS = [f"SubNetwork=North,ManagedElement=SITE-{i:04d},EUtranCellFDD=C1" for i in range(4)]
STEP = timedelta(minutes=15)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        yield database


def deliver(
    db: Database,
    period: datetime,
    cells: list[str],
    *,
    at: datetime | None = None,
    source: str = "feed",
    kpi: str = "prb_util_dl",
    value: float = 10.0,
    vendor: str = "Nokia",
    sw: str = "SRAN23B",
) -> None:
    frame = pd.DataFrame(
        {
            "dn": cells,
            "kpi": kpi,
            "period_end": period,
            "value": value,
            "vendor": vendor,
            "sw_version": sw,
        }
    )
    ingest_records(
        db, source=source, records=frame, received_at=at or period + timedelta(minutes=2)
    )


def test_stale_source_raises_and_resolves_an_event(db: Database) -> None:
    deliver(db, T0, CELLS)
    with db.session(write=True) as session:
        assert health.update_staleness(session, now=T0 + timedelta(minutes=10)) == []
        changes = health.update_staleness(session, now=T0 + timedelta(hours=2))
    assert changes == ["feed went stale"]
    with db.session() as session:
        event = session.scalars(select(DataHealthEvent)).one()
        assert event.kind == "stale"
        assert "silent for 118 min" in event.summary
        assert session.scalar(select(Source.status)) == "stale"
    deliver(db, T0 + 8 * STEP, CELLS, at=T0 + timedelta(hours=2, minutes=5))
    with db.session(write=True) as session:
        changes = health.update_staleness(session, now=T0 + timedelta(hours=2, minutes=6))
    assert changes == ["feed delivers again"]
    with db.session() as session:
        assert session.scalars(select(DataHealthEvent)).one().resolved_at is not None


def test_gaps_are_found_extended_and_filled(db: Database) -> None:
    # Six periods; SITE-0002 misses periods 3 and 4; nothing at all arrives in period 5.
    for k in range(6):
        cells = [c for c in CELLS if not (k in (3, 4) and "0002" in c)]
        if k != 5:
            deliver(db, T0 + k * STEP, cells)
    deliver(db, T0 + 6 * STEP, CELLS)
    now = T0 + 6 * STEP + timedelta(hours=1, minutes=1)  # all closed (1 h lateness)
    with db.session(write=True) as session:
        kv.set_value(session, "gaps.cursor.1", T0.isoformat())
        scan = gaps.scan_gaps(session, now=now)
    assert scan.gaps_opened == 2
    assert scan.gaps_extended == 1
    with db.session() as session:
        found = session.scalars(select(DataGap).order_by(DataGap.period_start)).all()
    element_gap, source_gap = found
    assert (element_gap.period_start, element_gap.period_end) == (T0 + 3 * STEP, T0 + 4 * STEP)
    assert element_gap.element_id is not None
    assert source_gap.element_id is None
    assert source_gap.period_start == T0 + 5 * STEP
    # Late data fills the element gap: both missing periods arrive.
    deliver(db, T0 + 3 * STEP, [CELLS[2]], at=now)
    deliver(db, T0 + 4 * STEP, [CELLS[2]], at=now)
    with db.session(write=True) as session:
        assert gaps.scan_gaps(session, now=now).gaps_filled == 1
        assert session.get(DataGap, element_gap.id).filled_at is not None
        assert session.get(DataGap, source_gap.id).filled_at is None


def test_new_software_version_with_other_counters_is_schema_drift(db: Database) -> None:
    deliver(db, T0, CELLS[:2], kpi="prb_util_dl", sw="SRAN23B")
    deliver(db, T0, CELLS[2:], kpi="prb_util_ul", sw="SRAN24A")
    with db.session() as session:
        event = session.scalars(select(DataHealthEvent)).one()
    assert event.kind == "schema_drift"
    assert event.sw_version == "SRAN24A"
    assert event.details["appeared"] == ["prb_util_ul"]
    assert event.details["vanished"] == ["prb_util_dl"]


def test_counter_appearing_after_learning_and_vanishing(db: Database) -> None:
    deliver(db, T0, CELLS, kpi="prb_util_dl")
    deliver(db, T0 + STEP, CELLS, kpi="prb_util_dl", at=T0 + timedelta(minutes=20))
    deliver(db, T0 + 8 * STEP, CELLS, kpi="prb_util_ul", at=T0 + timedelta(hours=2))
    with db.session() as session:
        appeared = session.scalars(select(DataHealthEvent)).one()
    assert appeared.details["appeared"] == ["prb_util_ul"]
    deliver(db, T0 + 16 * STEP, CELLS, kpi="prb_util_ul", at=T0 + timedelta(hours=4, minutes=5))
    with db.session(write=True) as session:
        events = drift.vanished_counters(session, now=T0 + timedelta(hours=4, minutes=6))
    assert events
    assert events[0].details["vanished"] == ["prb_util_dl"]


def test_out_of_range_surge_after_an_update_is_value_drift(db: Database) -> None:
    cells = [f"SubNetwork=East,ManagedElement=SITE-{i:04d},EUtranCellFDD=C1" for i in range(30)]
    deliver(db, T0, cells, kpi="dl_throughput_mbps", value=120.0, sw="SRAN23B")
    deliver(db, T0, cells, kpi="dl_throughput_mbps", value=120_000.0, sw="SRAN24A", source="feed2")
    with db.session(write=True) as session:
        events = drift.value_drift(session, now=T0 + timedelta(minutes=5))
    assert len(events) == 1
    assert events[0].kind == "value_drift"
    assert "outside the valid range" in events[0].summary
    with db.session(write=True) as session:
        assert drift.value_drift(session, now=T0 + timedelta(minutes=6)) == []  # no repeat


def test_versions_far_apart_are_value_drift(db: Database) -> None:
    cells = [f"SubNetwork=East,ManagedElement=SITE-{i:04d},EUtranCellFDD=C1" for i in range(60)]
    deliver(db, T0, cells[:30], kpi="active_users", value=100.0, sw="SRAN23B")
    deliver(db, T0, cells[30:], kpi="active_users", value=1000.0, sw="SRAN24A")
    with db.session(write=True) as session:
        events = drift.value_drift(session, now=T0 + timedelta(minutes=5))
    assert {e.sw_version for e in events} == {"SRAN23B", "SRAN24A"}
    assert all("10x" in e.summary for e in events)


def test_quarantine_replay_after_adding_a_mapping(db: Database) -> None:
    frame = pd.DataFrame(
        {
            "dn": CELLS,
            "kpi": "RRU.PrbTotDl",
            "period_end": T0,
            "value": ["41", "42", "43", "44"],
            "vendor": "Nokia",
        }
    )
    first = ingest_records(db, source="pm", records=frame, received_at=T0 + timedelta(minutes=2))
    assert first.reasons == {"unknown_counter": 4}
    actor = audit.Actor("eng", "engineer")
    with pytest.raises(InvalidInput):
        replay_quarantine(db, actor=actor)
    with db.session(write=True) as session:
        kpi_id = session.scalar(select(Kpi.id).where(Kpi.name == "prb_util_dl"))
        session.add(CounterMapping(vendor="*", counter="RRU.PrbTotDl", kpi_id=kpi_id, scale=1.0))
    outcome = replay_quarantine(db, actor=actor, reason_code="unknown_counter")
    assert (outcome.selected, outcome.replayed, outcome.batch.accepted) == (4, 4, 4)
    with db.session() as session:
        statuses = session.scalars(select(QuarantinedRecord.status)).all()
        stored = session.scalar(select(func.count()).select_from(Measurement))
        event = audit.search(session, action="quarantine.replay")[0]
    assert statuses == ["replayed"] * 4
    assert stored == 4
    assert event.after["accepted"] == 4
    with pytest.raises(NotFound):
        replay_quarantine(db, actor=actor, reason_code="unknown_counter")


def test_interrupted_batch_is_replayed_idempotently(db: Database) -> None:
    deliver(db, T0, CELLS)
    with db.session(write=True) as session:
        # As if the process died mid-batch: raw stored, records not committed.
        session.execute(update(IngestBatch).values(status="processing"))
        session.execute(Measurement.__table__.delete())
    done = replay_stuck_batches(db, now=T0 + timedelta(hours=1))
    assert [s.accepted for s in done] == [4]
    again = replay_stuck_batches(db, now=T0 + timedelta(hours=2))
    assert again == []
    with db.session() as session:
        batch = session.scalars(select(IngestBatch)).one()
        assert batch.status == "done"
        assert batch.received == batch.accepted + batch.duplicates + batch.quarantined
        assert session.scalar(select(func.count()).select_from(Measurement)) == 4


def test_a_stray_counter_in_one_record_is_not_schema_drift(db: Database) -> None:
    deliver(db, T0, CELLS, kpi="prb_util_dl")
    frame = pd.DataFrame(
        {
            "dn": CELLS + CELLS[:1],
            "kpi": ["prb_util_dl"] * 4 + ["kpi_x"],
            "period_end": T0 + timedelta(hours=3),
            "value": 1.0,
            "vendor": "Nokia",
            "sw_version": "SRAN23B",
        }
    )
    ingest_records(db, source="feed", records=frame, received_at=T0 + timedelta(hours=3))
    with db.session() as session:
        assert session.scalars(select(DataHealthEvent)).all() == []
