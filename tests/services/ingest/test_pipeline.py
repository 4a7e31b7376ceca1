"""The ingest pipeline on SQLite and PostgreSQL: nothing lost, nothing invented."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from testkit import seeded_database

from services import audit
from services.db import Database
from services.db.models import (
    Element,
    IngestBatch,
    Measurement,
    PeriodCount,
    QuarantinedRecord,
    Source,
)
from services.ingest import pipeline

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
CELL2 = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C2"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        yield database


def frame(*rows: tuple[str, str, datetime | str | None, object]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dn", "kpi", "period_end", "value"])


def ingest(db: Database, records: pd.DataFrame, *, at: datetime = NOW) -> pipeline.BatchSummary:
    return pipeline.ingest_records(db, source="test-feed", records=records, received_at=at)


def current_values(db: Database) -> dict[tuple[str, str], float]:
    with db.session() as session:
        rows = session.execute(
            select(Element.dn, Measurement.period_end, Measurement.value)
            .join(Element, Element.id == Measurement.element_id)
            .where(Measurement.superseded.is_(False))
        ).all()
    return {(dn, period.isoformat()): value for dn, period, value in rows}


def test_every_record_lands_in_exactly_one_bucket(db: Database) -> None:
    t = NOW - timedelta(minutes=15)
    records = frame(
        (CELL, "prb_util_dl", t, 42.5),
        (CELL, "prb_util_ul", t, "17.25"),
        ("", "prb_util_dl", t, 3.0),
        (CELL, "prb_util_dl", None, 3.0),
        (CELL, "prb_util_dl", NOW + timedelta(hours=1), 3.0),
        (CELL, "prb_util_dl", NOW - timedelta(days=500), 3.0),
        (CELL, "pmVendorCounterX", t, 3.0),
        (CELL, "active_users", t, None),
        (CELL, "active_users", t, "N/A"),
        (CELL, "rrc_setup_sr", t, 140.0),
        (CELL, "dl_throughput_mbps", t, float("inf")),
    )
    summary = ingest(db, records)
    assert summary.received == 11
    assert summary.accepted == 2
    assert summary.quarantined == 9
    assert summary.received == summary.accepted + summary.duplicates + summary.quarantined
    assert summary.reasons == {
        "missing_dn": 1,
        "bad_timestamp": 1,
        "future_timestamp": 1,
        "too_old": 1,
        "unknown_counter": 1,
        "missing_value": 1,
        "not_numeric": 2,
        "out_of_range": 1,
    }
    with db.session() as session:
        kept = session.scalars(select(QuarantinedRecord)).all()
        assert len(kept) == 9
        by_code = {q.reason_code: q for q in kept}
        assert by_code["unknown_counter"].record["kpi"] == "pmVendorCounterX"
        assert "pmVendorCounterX" in by_code["unknown_counter"].reason
        assert by_code["out_of_range"].field == "value"
        assert "140" in by_code["out_of_range"].reason
        batch = session.get(IngestBatch, summary.batch_id)
        assert batch.status == "done"
        assert batch.received == 11
        assert batch.quarantined == 9


def test_raw_batch_is_kept_verbatim_with_checksum(db: Database) -> None:
    raw = b"dn,kpi,period_end,value\nX,prb_util_dl,2026-11-20T11:45:00Z,1\n"
    records = frame((CELL, "prb_util_dl", NOW - timedelta(minutes=15), 1.0))
    summary = pipeline.ingest_records(
        db, source="csv-drop", records=records, raw=raw, raw_format="csv", received_at=NOW
    )
    with db.session() as session:
        batch = session.get(IngestBatch, summary.batch_id)
        assert pipeline.read_raw(batch) == raw
        assert batch.raw_size == len(raw)
        assert len(batch.checksum) == 64


def test_same_key_same_value_is_a_duplicate(db: Database) -> None:
    t = NOW - timedelta(minutes=15)
    first = ingest(db, frame((CELL, "prb_util_dl", t, 50.0), (CELL, "prb_util_dl", t, 50.0)))
    assert (first.accepted, first.duplicates) == (1, 1)
    again = ingest(db, frame((CELL, "prb_util_dl", t, 50.0)))
    assert (again.accepted, again.duplicates, again.corrections) == (0, 1, 0)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Measurement)) == 1


def test_same_key_new_value_is_an_audited_correction(db: Database) -> None:
    t = NOW - timedelta(minutes=15)
    ingest(db, frame((CELL, "prb_util_dl", t, 50.0)))
    fixed = ingest(db, frame((CELL, "prb_util_dl", t, 55.0)), at=NOW + timedelta(minutes=1))
    assert (fixed.accepted, fixed.corrections) == (1, 1)
    assert current_values(db) == {(CELL, t.isoformat()): 55.0}
    with db.session() as session:
        revisions = session.execute(
            select(Measurement.revision, Measurement.superseded, Measurement.value).order_by(
                Measurement.revision
            )
        ).all()
        assert [tuple(r) for r in revisions] == [(0, True, 50.0), (1, False, 55.0)]
        event = audit.search(session, action="ingest.correction")[0]
        assert event.after["corrections"] == 1
        assert event.after["examples"][0]["old"] == 50.0
        assert event.after["examples"][0]["new"] == 55.0


def test_corrections_inside_one_batch_keep_the_latest(db: Database) -> None:
    t = NOW - timedelta(minutes=15)
    summary = ingest(
        db,
        frame(
            (CELL, "prb_util_dl", t, 10.0),
            (CELL, "prb_util_dl", t, 11.0),
            (CELL, "prb_util_dl", t, 11.0),
            (CELL, "prb_util_dl", t, 12.0),
        ),
    )
    assert (summary.accepted, summary.duplicates, summary.corrections) == (3, 1, 2)
    assert current_values(db) == {(CELL, t.isoformat()): 12.0}


def test_data_older_than_watermark_minus_lateness_is_late(db: Database) -> None:
    periods = [NOW - timedelta(minutes=15 * k) for k in range(12, 0, -1)]
    ingest(db, frame(*[(CELL, "prb_util_dl", p, 1.0) for p in periods[4:]]))
    # One hour of allowed lateness: 2 h 45 min behind the watermark is late, 30 min is not.
    summary = ingest(
        db,
        frame((CELL2, "prb_util_dl", periods[0], 2.0), (CELL2, "prb_util_dl", periods[9], 2.0)),
    )
    assert summary.late == 1
    with db.session() as session:
        late = session.scalars(select(Measurement).where(Measurement.late.is_(True))).all()
        assert [m.period_end for m in late] == [periods[0]]
        source = session.scalar(select(Source).where(Source.name == "test-feed"))
        assert source.watermark == periods[-1]


def test_lateness_inside_one_large_batch_follows_arrival_order(db: Database) -> None:
    later = NOW - timedelta(minutes=15)
    earlier = NOW - timedelta(hours=5)
    summary = ingest(
        db, frame((CELL, "prb_util_dl", later, 1.0), (CELL2, "prb_util_dl", earlier, 1.0))
    )
    assert summary.late == 1


def test_unknown_element_is_registered_as_new(db: Database) -> None:
    dn = "SubNetwork=South,ManagedElement=SITE-0999,NRCellDU=N7"
    records = frame((dn, "prb_util_dl", NOW - timedelta(minutes=15), 1.0))
    records["vendor"] = "Nokia"
    records["sw_version"] = "SRAN24A"
    summary = ingest(db, records)
    assert summary.new_elements == 1
    with db.session() as session:
        element = session.scalar(select(Element).where(Element.dn == dn))
    assert element.is_new
    assert (element.element_type, element.domain, element.region) == ("cell", "RAN", "South")
    assert (element.vendor, element.sw_version) == ("Nokia", "SRAN24A")


def test_period_counts_add_up(db: Database) -> None:
    t = NOW - timedelta(minutes=15)
    ingest(db, frame((CELL, "prb_util_dl", t, 1.0), (CELL2, "prb_util_dl", t, 1.0)))
    ingest(db, frame((CELL, "prb_util_ul", t, 1.0), (CELL, "prb_util_dl", t, 1.0)))
    with db.session() as session:
        counts = session.scalars(select(PeriodCount)).all()
    assert [(c.period_end, c.accepted) for c in counts] == [(t, 3)]


def test_failed_processing_keeps_the_raw_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "_process", explode)
    with pytest.raises(RuntimeError):
        ingest(db, frame((CELL, "prb_util_dl", NOW - timedelta(minutes=15), 1.0)))
    with db.session() as session:
        batch = session.scalars(select(IngestBatch)).one()
        assert batch.status == "failed"
        assert "disk on fire" in batch.error
        assert pipeline.raw_records(batch)["dn"].tolist() == [CELL]
        assert session.scalar(select(func.count()).select_from(Measurement)) == 0


def test_random_mixtures_conserve_counts(db: Database) -> None:
    """Randomised batches with every defect mixed in: the books always balance."""
    rng = np.random.default_rng(3)
    kpis = ["prb_util_dl", "prb_util_ul", "active_users", "not_a_kpi"]
    totals = {"received": 0, "accepted": 0, "duplicates": 0, "quarantined": 0}
    for batch_no in range(6):
        rows = []
        for _ in range(60):
            period = NOW - timedelta(minutes=15 * int(rng.integers(1, 20)))
            value: object = float(rng.uniform(-5, 120))
            if rng.random() < 0.1:
                value = rng.choice(["N/A", "", None])
            dn = CELL if rng.random() < 0.5 else CELL2
            rows.append((dn if rng.random() > 0.05 else "", str(rng.choice(kpis)), period, value))
        summary = ingest(db, frame(*rows), at=NOW + timedelta(seconds=batch_no))
        assert summary.received == summary.accepted + summary.duplicates + summary.quarantined
        for key in totals:
            totals[key] += getattr(summary, key)
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Measurement))
        quarantined = session.scalar(select(func.count()).select_from(QuarantinedRecord))
    assert stored == totals["accepted"]
    assert quarantined == totals["quarantined"]
    assert totals["received"] == 360


def test_oversized_names_are_refused_not_fatal(db: Database) -> None:
    """A DN or version longer than the columns hold refuses the record, not the batch."""
    t = NOW - timedelta(minutes=15)
    records = frame(("x" * 600, "prb_util_dl", t, 1.0), (CELL, "prb_util_dl", t, 2.0))
    records["sw_version"] = ["1.0", "v" * 80]
    records.loc[0, "sw_version"] = "1.0"
    summary = ingest(db, records)
    assert summary.reasons == {"dn_too_long": 1, "attribute_too_long": 1}
    assert summary.received == summary.accepted + summary.duplicates + summary.quarantined


def test_late_data_and_corrections_mark_periods_for_reevaluation(db: Database) -> None:
    from services.db.models import ReevaluationMark

    periods = [NOW - timedelta(minutes=15 * k) for k in range(12, 0, -1)]
    ingest(db, frame(*[(CELL, "prb_util_dl", p, 1.0) for p in periods[4:]]))
    with db.session() as session:
        assert session.scalars(select(ReevaluationMark)).all() == []
    ingest(db, frame((CELL2, "prb_util_dl", periods[0], 2.0)))  # late
    ingest(db, frame((CELL, "prb_util_dl", periods[-1], 9.0)))  # correction, not late
    with db.session() as session:
        marks = {
            m.period_end: (m.reason, m.records) for m in session.scalars(select(ReevaluationMark))
        }
    assert marks == {periods[0]: ("late", 1), periods[-1]: ("correction", 1)}
