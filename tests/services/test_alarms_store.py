"""The alarm store and alarm batches on SQLite and PostgreSQL: out-of-order safe, nothing lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services import alarms
from services.db import Database, connect, upgrade_to_head
from services.db.models import Alarm, Element, IngestBatch, QuarantinedRecord, Source
from services.errors import InvalidInput, NotFound
from services.ingest.pipeline import ensure_source, read_raw
from services.ingest.sources import alarms_batch
from services.ingest.sources.alarms_alertmanager import parse_alertmanager
from services.ingest.sources.alarms_batch import ingest_alarms, replay_alarm_batch
from services.ingest.sources.alarms_tmf642 import parse_tmf642

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SITE = "SubNetwork=North,ManagedElement=SITE-0001"
CELL = f"{SITE},EUtranCellFDD=C1"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        for dn, name, kind in ((SITE, "SITE-0001", "site"), (CELL, "SITE-0001 C1", "cell")):
            session.add(Element(dn=dn, name=name, element_type=kind, domain="RAN"))
    yield database
    database.dispose()


@pytest.fixture
def source_id(db: Database) -> int:
    with db.session(write=True) as session:
        return ensure_source(session, name="alertmanager:test", kind="alertmanager").id


def raise_(db: Database, source_id: int, *, at: datetime = T0, **extra: Any) -> str:
    fields = {"key": "k1", "severity": "major", "raised_at": at, "text": "link down", **extra}
    with db.session(write=True) as session:
        return alarms.raise_alarm(session, source_id=source_id, **fields).outcome


def clear(db: Database, source_id: int, at: datetime | None, key: str = "k1") -> str:
    with db.session(write=True) as session:
        return alarms.clear_alarm(session, source_id=source_id, key=key, cleared_at=at).outcome


def states(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(a.fingerprint, a.state) for a in session.scalars(select(Alarm).order_by(Alarm.id))]


def test_fingerprint_ignores_label_order() -> None:
    assert alarms.fingerprint({"a": "1", "b": "2"}) == alarms.fingerprint({"b": "2", "a": "1"})
    assert alarms.fingerprint({"a": "1"}) != alarms.fingerprint({"a": "1", "b": "2"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("CRITICAL", "critical"),
        (" page ", "critical"),
        ("error", "major"),
        ("Major", "major"),
        ("medium", "minor"),
        ("warning", "warning"),
        ("info", "warning"),
        ("none", "indeterminate"),
        ("", "indeterminate"),
        (None, "indeterminate"),
    ],
)
def test_severity_spellings_map_onto_five(given: str | None, expected: str) -> None:
    assert alarms.normalise_severity(given) == expected


def test_repeats_update_or_change_nothing(db: Database, source_id: int) -> None:
    assert raise_(db, source_id) == "created"
    assert raise_(db, source_id) == "unchanged"
    assert raise_(db, source_id, severity="critical") == "updated"
    assert states(db) == [("k1", "active")]


def test_clear_then_repeated_clear_and_unmatched(db: Database, source_id: int) -> None:
    raise_(db, source_id)
    end = T0 + timedelta(minutes=30)
    assert clear(db, source_id, end) == "cleared"
    assert clear(db, source_id, end) == "repeated"
    assert clear(db, source_id, end + timedelta(minutes=5)) == "unmatched"
    assert clear(db, source_id, None, key="never-raised") == "unmatched"


def test_late_copies_do_not_reopen_or_close(db: Database, source_id: int) -> None:
    raise_(db, source_id)
    clear(db, source_id, T0 + timedelta(minutes=30))
    # A retried copy of the original raise arrives after the clear: the episode stays over.
    assert raise_(db, source_id) == "stale"
    # The same alarm firing again later is a new episode.
    later = T0 + timedelta(hours=2)
    assert raise_(db, source_id, at=later) == "created"
    # The clear of the first episode, delivered late, leaves the new one open.
    assert clear(db, source_id, T0 + timedelta(minutes=31)) == "stale"
    assert states(db) == [("k1", "cleared"), ("k1", "active")]


def test_fingerprints_are_per_source(db: Database, source_id: int) -> None:
    with db.session(write=True) as session:
        other = ensure_source(session, name="alertmanager:other", kind="alertmanager").id
    raise_(db, source_id)
    assert raise_(db, other) == "created"
    assert clear(db, other, T0 + timedelta(minutes=1)) == "cleared"
    assert states(db) == [("k1", "active"), ("k1", "cleared")]


def test_element_references_resolve_to_known_elements(db: Database, source_id: int) -> None:
    cases = {SITE: SITE, "SITE-0001": SITE, "SITE-0001:9100": SITE, "10.0.0.1:9100": None}
    for n, ref in enumerate(cases):
        raise_(db, source_id, key=f"k{n}", element_ref=ref)
    with db.session() as session:
        linked = {
            alarm.element_ref: session.get_one(Element, alarm.element_id).dn
            if alarm.element_id
            else None
            for alarm in session.scalars(select(Alarm))
        }
    assert linked == cases


def test_pattern_clears_need_the_anchor_and_respect_other_attributes(db: Database) -> None:
    with db.session(write=True) as session:
        sid = ensure_source(session, name="tmf642:EMS", kind="tmf642").id
        for n, (obj, cause) in enumerate([(CELL, "LOS"), (CELL, "AIS"), (SITE, "LOS")]):
            labels = {"alarmedObject.id": obj, "probableCause": cause, "alarmType": "comms"}
            alarms.raise_alarm(
                session,
                source_id=sid,
                key=f"t{n}",
                severity="major",
                raised_at=T0,
                element_ref=obj,
                labels=labels,
            )

    def clear_by(pattern: dict[str, str], anchor: str, at: datetime | None) -> tuple[str, int]:
        with db.session(write=True) as session:
            change = alarms.clear_matching(
                session, source_ids=[sid], pattern=pattern, anchor=anchor, cleared_at=at
            )
            return change.outcome, change.count

    at = T0 + timedelta(hours=1)
    # An id the alarms never had constrains nothing, except as the anchor.
    assert clear_by({"id": "7"}, "id", at) == ("unmatched", 0)
    before_raise = T0 - timedelta(minutes=1)
    los = {"alarmedObject.id": CELL, "probableCause": "LOS"}
    assert clear_by(los, "alarmedObject.id", before_raise) == ("stale", 0)
    pattern = {"alarmedObject.id": CELL, "probableCause": "LOS", "id": "7"}
    assert clear_by(pattern, "alarmedObject.id", at) == ("cleared", 1)
    assert clear_by(pattern, "alarmedObject.id", at) == ("repeated", 0)
    assert clear_by({"alarmedObject.id": CELL}, "alarmedObject.id", at) == ("cleared", 1)
    assert states(db) == [("t0", "cleared"), ("t1", "cleared"), ("t2", "active")]


def test_list_filters_and_pages(db: Database, source_id: int) -> None:
    for n in range(5):
        raise_(db, source_id, key=f"k{n}", at=T0 + timedelta(minutes=n), element_ref="SITE-0001")
    raise_(db, source_id, key="other", element_ref="somewhere")
    clear(db, source_id, T0 + timedelta(hours=1), key="k0")
    with db.session() as session:
        active, total = alarms.list_alarms(session, state="active", limit=2, offset=1)
        assert total == 5
        assert [a.fingerprint for a in active] == ["k3", "k2"]
        assert alarms.list_alarms(session, element=SITE)[1] == 5
        assert alarms.list_alarms(session, element="somewhere")[1] == 1
        assert alarms.list_alarms(session, state="cleared")[1] == 1
        with pytest.raises(NotFound):
            alarms.get_alarm(session, 999_999)


# --- Batches: raw first, every item in one bucket, failures replayable ---


def webhook(*alerts: dict[str, Any], receiver: str = "noc") -> bytes:
    return json.dumps({"version": "4", "receiver": receiver, "alerts": list(alerts)}).encode()


def am_alert(status: str = "firing", ends: str | None = None, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "LinkDown", "instance": "SITE-0001:9100", **labels},
        "startsAt": "2026-11-20T10:00:00Z",
        "endsAt": ends or "0001-01-01T00:00:00Z",
    }


def ingest(db: Database, raw: bytes, parser: Any = parse_alertmanager) -> Any:
    return ingest_alarms(db, parsed=parser(raw), raw=raw)


def assert_conserved(db: Database) -> None:
    with db.session() as session:
        for batch in session.scalars(select(IngestBatch)):
            assert batch.status == "done", batch.error
            assert batch.received == batch.accepted + batch.duplicates + batch.quarantined
            stored = session.scalar(
                select(func.count()).where(QuarantinedRecord.batch_id == batch.id)
            )
            assert stored == batch.quarantined
            assert sum(batch.reasons.values()) == batch.quarantined


def test_batch_counts_every_item_once(db: Database) -> None:
    raw = webhook(am_alert(), am_alert(), {"status": "firing"}, am_alert("resolved", ends="x"))
    summary = ingest(db, raw)
    assert (summary.received, summary.accepted, summary.duplicates, summary.quarantined) == (
        4,
        1,
        1,
        2,
    )
    assert summary.raised == 1
    assert summary.reasons == {"missing_field": 1, "bad_timestamp": 1}
    assert_conserved(db)
    with db.session() as session:
        batch = session.get_one(IngestBatch, summary.batch_id)
        assert read_raw(batch) == raw
        assert batch.raw_format == "alertmanager-json"
        source = session.scalars(select(Source).where(Source.name == "alertmanager:noc")).one()
        assert (source.kind, source.stale_after_s) == ("alertmanager", 86400)
        assert source.last_received_at is not None
        assert source.watermark == T0


def test_unmatched_resolved_keeps_the_episode_so_a_late_firing_is_stale(db: Database) -> None:
    resolved = am_alert("resolved", ends="2026-11-20T10:30:00Z")
    first = ingest(db, webhook(resolved))
    assert (first.accepted, first.unmatched_clears) == (1, 1)
    again = ingest(db, webhook(resolved, am_alert()))
    assert (again.accepted, again.duplicates) == (0, 2)
    assert states(db)[0][1] == "cleared"
    assert len(states(db)) == 1


def test_pattern_clear_reaches_every_tmf642_source_or_the_named_one(db: Database) -> None:
    def create(system: str) -> dict[str, Any]:
        return {
            "alarmType": "Equipment Alarm",
            "perceivedSeverity": "critical",
            "probableCause": "Power problem",
            "alarmedObject": {"id": SITE},
            "sourceSystemId": system,
            "state": "raised",
            "alarmRaisedTime": "2026-11-20T10:00:00Z",
        }

    for system in ("EMS-A", "EMS-B"):
        assert ingest(db, json.dumps(create(system)).encode(), parse_tmf642).raised == 1
    named = {"state": "cleared", "sourceSystemId": "EMS-A", "alarmedObject": {"id": SITE}}
    assert ingest(db, json.dumps(named).encode(), parse_tmf642).cleared == 1
    task = {
        "clearSystemId": "NOC",
        "clearUserId": "op",
        "alarmClearedTime": "2026-11-20T11:00:00Z",
        "alarmPattern": [{"alarmedObject": {"id": SITE}, "probableCause": "Power problem"}],
    }
    summary = ingest(db, json.dumps(task).encode(), parse_tmf642)
    assert (summary.source, summary.cleared, summary.accepted) == ("tmf642:NOC", 1, 1)
    assert [state for _, state in states(db)] == ["cleared", "cleared"]
    assert_conserved(db)


def test_a_failed_batch_keeps_its_raw_and_replays_idempotently(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = webhook(am_alert(), am_alert(severity="critical"), {"labels": {}})

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(alarms_batch.alarms, "raise_alarm", broken)
    with pytest.raises(RuntimeError):
        ingest(db, raw)
    monkeypatch.undo()
    with db.session() as session:
        batch = session.scalars(select(IngestBatch)).one()
        assert (batch.status, batch.error) == ("failed", "RuntimeError: database went away")
        assert read_raw(batch) == raw
        assert states(db) == []
    first = replay_alarm_batch(db, batch_id=batch.id)
    second = replay_alarm_batch(db, batch_id=batch.id)
    assert (first.accepted, first.quarantined) == (2, 1)
    assert (second.accepted, second.duplicates, second.quarantined) == (0, 2, 1)
    assert len(states(db)) == 2
    assert_conserved(db)
    with pytest.raises(NotFound):
        replay_alarm_batch(db, batch_id=batch.id + 100)
    with db.session(write=True) as session:
        source = ensure_source(session, name="csv", kind="csv")
        other = IngestBatch(source_id=source.id, raw_format="records-csv", checksum="x")
        session.add(other)
        session.flush()
        other_id = other.id
    with pytest.raises(InvalidInput):
        replay_alarm_batch(db, batch_id=other_id)
