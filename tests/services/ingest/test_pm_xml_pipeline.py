"""PM XML files through the ingest pipeline on SQLite and PostgreSQL: stored or quarantined."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from test_pm_xml import BILLION_LAUGHS, CELL, CELL2, meas_info, pm_file
from test_pm_xml_samples import FILES, MAPPER, MAPPING
from testkit import seeded_database

from services.audit import SYSTEM
from services.db import Database
from services.db.models import (
    CounterMapping,
    Element,
    IngestBatch,
    Kpi,
    Measurement,
    QuarantinedRecord,
    utcnow,
)
from services.ingest.pipeline import BatchSummary, ingest_records
from services.ingest.records import ParsedPayload
from services.ingest.replay import replay_quarantine
from services.ingest.sources.pm_xml import parse_pm_xml

SAMPLE_RECEIVED = datetime(2018, 10, 2, 12, 20, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        yield database


def map_counters(db: Database, mapping: Mapping[str, str], *, vendor: str = "*") -> None:
    """Counter -> KPI rows in counter_mappings."""
    with db.session(write=True) as session:
        kpis = {k.name: k.id for k in session.scalars(select(Kpi))}
        for counter, kpi in mapping.items():
            session.add(CounterMapping(vendor=vendor, counter=counter, kpi_id=kpis[kpi], scale=1.0))


def ingest(
    db: Database, payload: bytes, *, at: datetime = RECEIVED, name: str = "f.xml"
) -> tuple[ParsedPayload, BatchSummary]:
    """Parse and ingest one file; asserts that every record is counted once."""
    parsed = parse_pm_xml(payload, name=name)
    summary = ingest_records(
        db,
        source="oss-pm",
        records=parsed.records,
        rejected=parsed.rejected,
        raw=payload,
        raw_format="pm-xml",
        received_at=at,
        source_kind="pm_xml",
    )
    assert summary.received == parsed.received
    assert summary.received == summary.accepted + summary.duplicates + summary.quarantined
    return parsed, summary


def stored(db: Database) -> dict[tuple[str, str], tuple[float, bool]]:
    """(dn, kpi) -> (value, suspect) of current measurements."""
    with db.session() as session:
        rows = session.execute(
            select(Element.dn, Kpi.name, Measurement.value, Measurement.suspect)
            .join(Element, Element.id == Measurement.element_id)
            .join(Kpi, Kpi.id == Measurement.kpi_id)
            .where(Measurement.superseded.is_(False))
        ).all()
    return {(dn, kpi): (value, suspect) for dn, kpi, value, suspect in rows}


def quarantined(db: Database) -> list[QuarantinedRecord]:
    with db.session() as session:
        return list(session.scalars(select(QuarantinedRecord).order_by(QuarantinedRecord.id)))


def test_sample_counters_mapped_to_kpis_are_stored(db: Database) -> None:
    map_counters(db, {"a": "prb_util_dl", "b": "prb_util_ul", "c": "active_users"})
    payload = (MAPPING / "32.435/meas_type_and_r/test.xml").read_bytes()
    _, summary = ingest(db, payload, at=SAMPLE_RECEIVED)
    assert (summary.accepted, summary.quarantined, summary.new_elements) == (3, 0, 1)
    assert stored(db) == {
        ("some measObjLdn", "prb_util_dl"): (86.0, False),
        ("some measObjLdn", "prb_util_ul"): (67.0, False),
        ("some measObjLdn", "active_users"): (14.0, False),
    }
    with db.session() as session:
        element = session.scalar(select(Element).where(Element.dn == "some measObjLdn"))
        batch = session.scalar(select(IngestBatch))
        period = session.scalar(select(Measurement.period_end))
    assert element is not None
    assert (element.vendor, element.sw_version) == ("FooBar Ltd", "r0.1")
    assert batch is not None
    assert (batch.raw_format, batch.received, batch.accepted) == ("pm-xml", 3, 3)
    assert period is not None
    assert period.replace(tzinfo=UTC) == datetime(2018, 10, 2, 12, 15, tzinfo=UTC)


def test_the_same_file_twice_is_all_duplicates(db: Database) -> None:
    map_counters(db, {"a": "prb_util_dl", "b": "prb_util_ul", "c": "active_users"})
    payload = (MAPPING / "28.532/meas_results/test.xml").read_bytes()
    ingest(db, payload, at=SAMPLE_RECEIVED)
    _, again = ingest(db, payload, at=SAMPLE_RECEIVED)
    assert (again.accepted, again.duplicates) == (0, 3)


def test_unmapped_counters_are_quarantined_as_unknown_counter(db: Database) -> None:
    payload = (MAPPER / "csit/tests/filesprocessingconfigpmmapper/assets/ABigFile.xml").read_bytes()
    parsed, summary = ingest(db, payload, at=datetime(2000, 3, 1, 12, 30, tzinfo=UTC))
    assert summary.reasons == {"unknown_counter": 72}
    assert summary.accepted == 0
    kept = {q.record["counter"] for q in quarantined(db)}
    assert "succTCHSeizures2.bin8" in kept
    assert kept == set(parsed.records["kpi"])


def test_every_rule_ends_in_the_right_bucket(db: Database) -> None:
    map_counters(db, {"a": "prb_util_dl", "b.bin0": "prb_util_ul", "c": "active_users"})
    info = meas_info(
        {CELL: ["42.5", "10,20,30", "NIL"], CELL2: ["", "5,6", "7"]}, suspect={CELL: "true"}
    )
    xml = pm_file(info).replace(b'<r p="3">7</r>', b'<r p="3">7</r><r p="9">1</r>')
    _, summary = ingest(db, xml)
    assert summary.received == 10
    assert summary.accepted == 4
    assert summary.reasons == {
        "missing_value": 2,  # NIL and a blank value of mapped counters
        "unknown_counter": 3,  # unmapped histogram bins
        "unknown_counter_position": 1,
    }
    cell, cell2 = f"SubNetwork=North,{CELL}", f"SubNetwork=North,{CELL2}"
    assert stored(db) == {
        (cell, "prb_util_dl"): (42.5, True),
        (cell, "prb_util_ul"): (10.0, True),
        (cell2, "prb_util_ul"): (5.0, False),
        (cell2, "active_users"): (7.0, False),
    }
    by_reason = {q.reason_code: q for q in quarantined(db)}
    position = by_reason["unknown_counter_position"]
    assert (position.field, position.record["p"], position.record["dn"]) == ("p", "9", cell2)


def test_unmapped_bins_can_be_replayed_after_mapping(db: Database) -> None:
    # Replay runs at the current time, so the period must be recent.
    now = utcnow()
    end = (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ingest(db, pm_file(meas_info({CELL: ["1", "10,20", "3"]}, end=end)), at=now)
    map_counters(db, {"b.bin1": "prb_util_ul"})
    result = replay_quarantine(db, actor=SYSTEM, reason_code="unknown_counter")
    assert result.replayed == 4
    assert result.batch is not None
    assert result.batch.accepted == 1
    assert stored(db) == {(f"SubNetwork=North,{CELL}", "prb_util_ul"): (20.0, False)}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (BILLION_LAUGHS, "unsafe_xml"),
        (b"<html>gateway timeout</html>", "unsupported_format"),
        (pm_file(meas_info({CELL: ["1"]}))[:-30], "malformed_payload"),
        (pm_file(header=False), "missing_field"),
    ],
    ids=["billion-laughs", "html", "truncated", "no-header"],
)
def test_a_refused_file_is_one_quarantined_record(db: Database, payload: bytes, code: str) -> None:
    _, summary = ingest(db, payload, name="bad.xml")
    assert (summary.received, summary.quarantined, summary.reasons) == (1, 1, {code: 1})
    (record,) = quarantined(db)
    assert record.record["file"] == "bad.xml"
    assert record.record["error"]
    assert 0 < len(record.record["head"]) <= 200


def test_every_sample_conserves_counts(db: Database) -> None:
    map_counters(db, {"a": "prb_util_dl", "b": "prb_util_ul", "c": "active_users"})
    total = 0
    for path in FILES:
        _, summary = ingest(db, path.read_bytes(), at=SAMPLE_RECEIVED, name=path.name)
        total += summary.received
    with db.session() as session:
        batches = list(session.scalars(select(IngestBatch)))
    assert len(batches) == len(FILES)
    assert sum(b.received for b in batches) == total
    assert sum(b.accepted + b.duplicates + b.quarantined for b in batches) == total
