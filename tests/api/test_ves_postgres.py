"""The VES collector end to end on a fresh database: SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_ves_support import (
    RESOURCES,
    SCHEMA_DIR,
    SCHEMA_ENV,
    VES_DATA,
    assert_conserved,
    batches_after,
    last_batch_id,
    load,
    now_minute,
    post,
    quarantine_of,
    redate,
    ves_error,
)
from testkit import settings_for

from app import create_app
from services import audit, auth
from services.db.models import (
    Alarm,
    CounterMapping,
    DataHealthEvent,
    Element,
    Kpi,
    Measurement,
    Source,
)
from services.ingest.pipeline import reprocess_batch
from services.ingest.sources.ves_measurements import parse_ves_measurements

CEF_LIST = (
    VES_DATA
    / "dcaegen2-analytics-tca-gen2/dcae-analytics/dcae-analytics-test/src/main/resources"
    / "data/json/cef/cef_messages.json"
)


@pytest.fixture
def ves_server(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv(SCHEMA_ENV, str(SCHEMA_DIR))
    server = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=database_url)).server
    yield server
    server.extensions["beacon"].db.dispose()


def test_ves_end_to_end(ves_server: Flask, database_url: str) -> None:
    db = ves_server.extensions["beacon"].db
    assert db.dialect == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    client = ves_server.test_client()
    with db.session(write=True) as session:
        token = auth.create_api_token(
            session, name="ves-e2e", role="operator", scopes=["ingest"], actor=audit.SYSTEM
        ).plaintext
        cpu = session.scalars(select(Kpi).where(Kpi.name == "cpu_util")).one()
        session.add(CounterMapping(counter="cpuUsage.percentUsage", kpi_id=cpu.id))
    at = now_minute()

    measurement = redate(load(RESOURCES / "measurement7x.json"), at=at)
    measurement["event"]["commonEventHeader"]["sourceName"] = "vnf-Åström-🚀"
    before = last_batch_id(db)
    assert post(client, token, measurement).status_code == 202
    (stored,) = batches_after(db, before)
    with db.session() as session:
        values = dict(
            session.execute(
                select(Element.dn, Measurement.value)
                .join(Element, Element.id == Measurement.element_id)
                .where(Measurement.kpi_id == cpu.id)
            ).all()
        )
    assert values["vnf-Åström-🚀,cpuUsage=cpu3"] == 0.33
    assert len(values) == 5

    fault = redate(load(RESOURCES / "ves7_valid_30_1_1_event.json"), at=at)
    assert post(client, token, fault).status_code == 202
    fault["event"]["faultFields"]["eventSeverity"] = "NORMAL"
    assert post(client, token, fault).status_code == 202
    with db.session() as session:
        (alarm,) = session.scalars(select(Alarm)).all()
    assert alarm.state == "cleared"

    heartbeat = VES_DATA / "dcaegen2-services-heartbeat" / "tests" / "test1.json"
    assert post(client, token, heartbeat.read_bytes()).status_code == 202
    with db.session() as session:
        source = session.scalars(select(Source).where(Source.name == "ves:ibcx0001vm002oam001"))
        assert source.one().stale_after_s == 60
        drift = session.scalars(select(DataHealthEvent.summary)).all()
    assert any("4.0.2" in line for line in drift)

    invalid = (RESOURCES / "ves_stdnDefined_invalid.json").read_bytes()
    ves_error(post(client, token, invalid), 400, "SVC2000")
    before = last_batch_id(db)
    valid = (RESOURCES / "ves_stdnDefined_valid.json").read_bytes()
    assert post(client, token, valid).status_code == 202
    (record,) = quarantine_of(db, [b.id for b in batches_after(db, before)])
    assert record.record["schema_check"] == "passed"

    listed = [item["event"] for item in json.loads(CEF_LIST.read_bytes())]
    before = last_batch_id(db)
    response = post(client, token, {"eventList": listed}, version="v5", batch=True)
    assert response.status_code == 202
    assert len(batches_after(db, before)) == 31
    assert_conserved(db)

    # A stored measurement batch replays to the same records: all duplicates now.
    replayed = reprocess_batch(db, batch_id=stored.id, parsers={"ves": parse_ves_measurements})
    assert replayed.received == stored.received
    assert replayed.duplicates == stored.accepted
    assert_conserved(db)


TEXT_FIELDS = [
    ("commonEventHeader", "sourceName"),
    ("commonEventHeader", "reportingEntityName"),
    ("commonEventHeader", "nfVendorName"),
    ("commonEventHeader", "eventId"),
    ("commonEventHeader", "eventName"),
    ("faultFields", "alarmCondition"),
    ("faultFields", "specificProblem"),
    ("faultFields", "alarmInterfaceA"),
    ("measurementFields", "additionalMeasurements"),
]


@st.composite
def long_texts(draw: st.DrawFn) -> dict:
    """A fault or measurement whose text fields hold any text, up to 600 characters."""
    base = draw(st.sampled_from(["ves7_valid_30_1_1_event.json", "measurement7x.json"]))
    document = redate(load(RESOURCES / base), at=now_minute())
    event = document["event"]
    for block, name in draw(st.lists(st.sampled_from(TEXT_FIELDS), min_size=1, max_size=4)):
        text = draw(st.text(max_size=600))
        if block not in event:
            continue
        if name == "additionalMeasurements":
            event[block][name] = [{"name": text or "x", "hashMap": {text: "1"}}]
        else:
            event[block][name] = text
    return document


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=long_texts())
def test_any_text_is_stored_or_refused_on_either_database(
    ves_server: Flask, document: dict
) -> None:
    """Column sizes, NUL and non-ASCII text are where PostgreSQL differs from SQLite."""
    db = ves_server.extensions["beacon"].db
    with db.session(write=True) as session:
        name = f"ves-text-{last_batch_id(db)}"
        token = auth.create_api_token(
            session, name=name, role="operator", scopes=["ingest"], actor=audit.SYSTEM
        ).plaintext
    response = post(ves_server.test_client(), token, document)
    assert response.status_code in (202, 400), response.get_data(as_text=True)[:500]
    assert_conserved(db)
