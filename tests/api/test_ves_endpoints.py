"""The VES collector endpoints: access, answers, and what each domain stores."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
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

from services.db import Database
from services.db.models import (
    Alarm,
    AuditEvent,
    CounterMapping,
    DataHealthEvent,
    Element,
    Kpi,
    Measurement,
    Source,
)
from services.errors import InvalidInput
from services.ingest.pipeline import read_raw
from services.ingest.sources import ves_store

FAULT = RESOURCES / "ves7_valid_30_1_1_event.json"
HEARTBEAT = VES_DATA / "dcaegen2-services-heartbeat" / "tests" / "test1.json"


@pytest.fixture
def ves_token(token_for: Callable[..., str]) -> str:
    return token_for("operator", scopes=["ingest"], name="ves-sender")


@pytest.fixture(autouse=True)
def no_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run without the schema folder unless they ask for it (CI may set it)."""
    monkeypatch.delenv(SCHEMA_ENV, raising=False)


@pytest.fixture
def schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEMA_ENV, str(SCHEMA_DIR))


def fresh_fault(**fields: Any) -> dict[str, Any]:
    """The ONAP fault sample happening now, with faultFields overridden."""
    document = load(FAULT)
    micros = int(now_minute().timestamp() * 1e6)
    header = document["event"]["commonEventHeader"]
    header["startEpochMicrosec"] = header["lastEpochMicrosec"] = micros
    document["event"]["faultFields"].update(fields)
    return document


def tca(action: str, *, severity: str = "MAJOR", at_minute: int = 0) -> dict[str, Any]:
    """A VES 7 threshold crossing on interface ge-0/0/1 of router rtr-01."""
    micros = int((now_minute() + timedelta(minutes=at_minute)).timestamp() * 1e6)
    return {
        "event": {
            "commonEventHeader": {
                "domain": "thresholdCrossingAlert",
                "eventId": "tca-0001",
                "eventName": "TCA_Router_IfErrors",
                "priority": "High",
                "reportingEntityName": "nms-01",
                "sequence": at_minute,
                "sourceName": "rtr-01",
                "startEpochMicrosec": micros,
                "lastEpochMicrosec": micros,
                "version": "4.1",
                "vesEventListenerVersion": "7.2.1",
            },
            "thresholdCrossingAlertFields": {
                "thresholdCrossingFieldsVersion": "4.0",
                "alertAction": action,
                "alertDescription": "IF-ERRDROP",
                "alertType": "INTERFACE-ANOMALY",
                "alertValue": "7.5",
                "interfaceName": "ge-0/0/1",
                "eventSeverity": severity,
                "collectionTimestamp": "Sat, 13 Mar 2010 11:29:05 -0800",
                "eventStartTimestamp": "Sat, 13 Mar 2010 11:29:05 -0800",
                "additionalParameters": [],
            },
        }
    }


def alarms_of(db: Database) -> list[Alarm]:
    with db.session() as session:
        return list(session.scalars(select(Alarm).order_by(Alarm.id)))


# --- access -------------------------------------------------------------------------------


def test_without_credentials_is_401_and_nothing_is_stored(
    client: FlaskClient, db: Database
) -> None:
    before = last_batch_id(db)
    response = post(client, None, load(FAULT))
    assert response.status_code == 401
    assert response.is_json
    assert batches_after(db, before) == []


def test_a_wrong_token_is_401(client: FlaskClient, db: Database) -> None:
    assert post(client, "not-a-token", load(FAULT)).status_code == 401
    assert post(client, "not-a-token", load(FAULT), basic=True).status_code == 401


def test_basic_auth_with_the_token_as_password_is_accepted(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    response = post(client, ves_token, fresh_fault(), basic=True)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert len(alarms_of(db)) == 1


def test_a_token_without_ingest_scope_is_403_and_audited(
    client: FlaskClient, db: Database, token_for: Callable[..., str]
) -> None:
    reader = token_for("operator", scopes=["read"], name="reader")
    before = last_batch_id(db)
    detail = ves_error(post(client, reader, fresh_fault()), 403, "POL1009")
    assert "ingest" in detail["variables"][0]
    assert batches_after(db, before) == []
    with db.session() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "api:reader"))
        assert "access.denied" in list(actions)


def test_other_paths_and_methods_answer_in_ves_shape(client: FlaskClient, ves_token: str) -> None:
    headers = {"Authorization": f"Bearer {ves_token}"}
    ves_error(client.get("/eventListener/v7", headers=headers), 405, "SVC2000")
    ves_error(client.put("/eventListener/v7/eventBatch", headers=headers), 405, "SVC2000")
    ves_error(client.post("/eventListener/v7/other", headers=headers), 404, "SVC2000")


# --- refused requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"event": ', "Expecting value"),
        (b"\xff\xfe not utf-8", "utf-8"),
        (b'{"event": {"x": NaN}}', "NaN is not a JSON number"),
        (b'{"event": {"x": 1e999}}', "out of range"),
        (b'{"event": {"x": "a\\u0000b"}}', "NUL"),
        (b'{"event": {"x": "\\ud800"}}', "surrogates"),
        (b"[1, 2]", "not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"event": ' + b"[" * 70 + b"]" * 70 + b"}", "deeper than 64 levels"),
    ],
)
def test_malformed_bodies_are_400_and_kept(
    client: FlaskClient, db: Database, ves_token: str, body: bytes, detail: str
) -> None:
    before = last_batch_id(db)
    error = ves_error(post(client, ves_token, body), 400, "SVC0002")
    assert detail in error["variables"][0]
    (batch,) = batches_after(db, before)
    assert read_raw(batch) == body
    (record,) = quarantine_of(db, [batch.id])
    assert record.reason_code == "malformed_payload"
    assert_conserved(db)


def test_an_unsupported_api_version_is_refused_and_kept(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    before = last_batch_id(db)
    body = (RESOURCES / "ves4_valid.json").read_bytes()
    detail = ves_error(post(client, ves_token, body, version="v4"), 400, "SVC0002")
    assert detail["variables"] == ["v4"]
    (batch,) = batches_after(db, before)
    (record,) = quarantine_of(db, [batch.id])
    assert record.reason_code == "unsupported_format"
    with db.session() as session:
        # The body is still read for who sent it: the quarantine sits with its sender.
        assert session.get(Source, batch.source_id).name == "ves:agilevm"


def test_an_oversized_body_is_413_and_recorded_without_its_bytes(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    before = last_batch_id(db)
    body = b" " * (10 * 1024 * 1024 + 1)
    ves_error(post(client, ves_token, body, batch=True), 413, "SVC2000")
    (batch,) = batches_after(db, before)
    assert (batch.raw_size, batch.received, batch.quarantined) == (0, 1, 1)
    (record,) = quarantine_of(db, [batch.id])
    assert record.reason_code == "payload_too_large"
    assert record.record["content_length"] == len(body)
    assert_conserved(db)


def test_a_mixed_domain_batch_is_refused_whole(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    fault = fresh_fault()["event"]
    heartbeat = load(HEARTBEAT)["event"]
    before = last_batch_id(db)
    response = post(client, ves_token, {"eventList": [fault, heartbeat]}, batch=True)
    ves_error(response, 400, "SVC0001")
    (batch,) = batches_after(db, before)
    (record,) = quarantine_of(db, [batch.id])
    assert record.reason_code == "mixed_domains"
    assert record.record["domains"] == "fault, heartbeat"
    assert alarms_of(db) == []


def test_each_endpoint_takes_its_own_shape(client: FlaskClient, ves_token: str) -> None:
    fault = fresh_fault()
    ves_error(post(client, ves_token, fault, batch=True), 400, "SVC0002")
    ves_error(post(client, ves_token, {"eventList": [fault["event"]]}), 400, "SVC0002")
    ves_error(post(client, ves_token, {"eventList": []}, batch=True), 400, "SVC2006")
    ves_error(post(client, ves_token, {"eventList": [1]}, batch=True), 400, "SVC0002")
    ves_error(post(client, ves_token, {}), 400, "SVC2006")


@pytest.mark.parametrize(
    ("path", "value", "message_id"),
    [
        (("commonEventHeader", "sourceName"), None, "SVC2006"),
        (("commonEventHeader", "sourceName"), "  ", "SVC2006"),
        (("commonEventHeader", "lastEpochMicrosec"), True, "SVC0002"),
        (("commonEventHeader", "domain"), "weather", "SVC0002"),
        (("faultFields", "eventSeverity"), "SEVERE", "SVC0002"),
        (("faultFields", "alarmCondition"), "", "SVC2006"),
    ],
)
def test_the_fields_beacon_uses_are_checked_without_schemas(
    client: FlaskClient,
    db: Database,
    ves_token: str,
    path: tuple[str, str],
    value: Any,
    message_id: str,
) -> None:
    document = fresh_fault()
    block, name = path
    if value is None:
        del document["event"][block][name]
    else:
        document["event"][block][name] = value
    detail = ves_error(post(client, ves_token, document), 400, message_id)
    assert name in json.dumps(detail)
    assert alarms_of(db) == []
    assert_conserved(db)


# --- schemas ------------------------------------------------------------------------------


@pytest.mark.usefixtures("schemas")
def test_v5_and_v7_are_checked_against_their_own_schema(
    client: FlaskClient, ves_token: str
) -> None:
    v5 = (RESOURCES / "measurement5x.json").read_bytes()
    v7 = (RESOURCES / "measurement7x.json").read_bytes()
    assert post(client, ves_token, v5, version="v5").status_code == 202
    assert post(client, ves_token, v7, version="v7").status_code == 202
    wrong = ves_error(post(client, ves_token, v5, version="v7"), 400, "SVC0002")
    assert "measurementsForVfScalingFields" in wrong["variables"][0]  # unknown to 30.2.1
    wrong = ves_error(post(client, ves_token, v7, version="v5"), 400, "SVC0002")
    assert "event.commonEventHeader" in wrong["variables"][0]  # a 7.x header fails 28.4.1


def test_an_unresolved_schema_reference_is_400_only_with_schemas(
    client: FlaskClient, db: Database, ves_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = load(RESOURCES / "ves_stdnDefined_valid.json")
    document["event"]["stndDefinedFields"]["schemaReference"] = (
        "https://forge.3gpp.org/rep/sa5/MnS/blob/SA88-Rel16/OpenAPI/nosuch.yaml"
        "#/components/schemas/Nothing"
    )
    before = last_batch_id(db)
    assert post(client, ves_token, document).status_code == 202
    (record,) = quarantine_of(db, [b.id for b in batches_after(db, before)])
    assert record.reason_code == "unsupported_event"
    assert record.record["schema_check"] == "not checked: BEACON_VES_SCHEMA_DIR is not set"
    assert "schema not checked" in record.reason

    monkeypatch.setenv(SCHEMA_ENV, str(SCHEMA_DIR))
    before = last_batch_id(db)
    ves_error(post(client, ves_token, document), 400, "SVC2004")
    (record,) = quarantine_of(db, [b.id for b in batches_after(db, before)])
    assert record.reason_code == "schema_reference_unresolved"
    assert_conserved(db)


def test_a_broken_schema_folder_answers_500_and_keeps_the_payload(
    client: FlaskClient, db: Database, ves_token: str, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv(SCHEMA_ENV, str(tmp_path / "empty"))
    before = last_batch_id(db)
    ves_error(post(client, ves_token, fresh_fault()), 500, "SVC2000")
    (batch,) = batches_after(db, before)
    (record,) = quarantine_of(db, [batch.id])
    assert record.reason_code == "internal_error"
    assert "no Common Event Format schema" in record.record["detail"]


@pytest.mark.usefixtures("schemas")
def test_a_coerced_header_version_is_recorded_once_as_schema_drift(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    body = HEARTBEAT.read_bytes()
    assert post(client, ves_token, body).status_code == 202
    assert post(client, ves_token, body).status_code == 202
    with db.session() as session:
        events = session.scalars(select(DataHealthEvent)).all()
    (event,) = [e for e in events if e.details.get("path") == "commonEventHeader.version"]
    assert event.kind == "schema_drift"
    assert (event.details["original"], event.details["accepted_as"]) == ("4.0.2", "4.1")


# --- what each domain stores -------------------------------------------------------------


def test_a_fault_is_raised_repeated_and_cleared_by_normal(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    assert post(client, ves_token, fresh_fault()).status_code == 202
    (alarm,) = alarms_of(db)
    assert (alarm.state, alarm.severity) == ("active", "critical")
    assert alarm.element_ref == "scfx0001vm002cap001"
    assert alarm.probable_cause == "PilotNumberPoolExhaustion"
    assert alarm.labels["info.PilotNumberPoolSize"] == "1000"
    with db.session() as session:
        assert session.get(Source, alarm.source_id).name == "ves:ibcx0001vm002oam001"

    before = last_batch_id(db)
    assert post(client, ves_token, fresh_fault()).status_code == 202  # a sender's retry
    (batch,) = batches_after(db, before)
    assert (batch.received, batch.accepted, batch.duplicates) == (1, 0, 1)

    clear = fresh_fault(eventSeverity="NORMAL")
    later = clear["event"]["commonEventHeader"]["startEpochMicrosec"] + 60_000_000
    clear["event"]["commonEventHeader"]["lastEpochMicrosec"] = later
    assert post(client, ves_token, clear).status_code == 202
    (alarm,) = alarms_of(db)
    assert alarm.state == "cleared"
    assert int(alarm.cleared_at.timestamp() * 1e6) == later
    before = last_batch_id(db)
    assert post(client, ves_token, clear).status_code == 202
    (batch,) = batches_after(db, before)
    assert batch.duplicates == 1
    assert_conserved(db)


def test_a_clear_without_a_raise_keeps_the_missed_episode(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    assert post(client, ves_token, fresh_fault(eventSeverity="NORMAL")).status_code == 202
    (alarm,) = alarms_of(db)
    assert alarm.state == "cleared"
    # A late copy of the raise falls inside the closed episode: it does not reopen it.
    before = last_batch_id(db)
    assert post(client, ves_token, fresh_fault()).status_code == 202
    (batch,) = batches_after(db, before)
    assert batch.duplicates == 1
    assert [a.state for a in alarms_of(db)] == ["cleared"]


def test_a_fault_with_an_implausible_time_is_raised_at_arrival(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    document = fresh_fault()
    header = document["event"]["commonEventHeader"]
    header["startEpochMicrosec"] = header["lastEpochMicrosec"] = 1_413_378_172_000  # ms
    assert post(client, ves_token, document).status_code == 202
    (alarm,) = alarms_of(db)
    assert alarm.raised_at.year >= 2025
    assert alarm.labels["event_time"].startswith("implausible")


def test_threshold_crossing_set_cont_clear(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    assert post(client, ves_token, tca("SET")).status_code == 202
    (alarm,) = alarms_of(db)
    assert (alarm.state, alarm.severity) == ("active", "major")
    assert alarm.text == "IF-ERRDROP = 7.5 on ge-0/0/1"
    assert post(client, ves_token, tca("CONT", severity="CRITICAL", at_minute=1)).status_code == 202
    (alarm,) = alarms_of(db)
    assert alarm.severity == "critical"
    assert post(client, ves_token, tca("CLEAR", at_minute=2)).status_code == 202
    (alarm,) = alarms_of(db)
    assert alarm.state == "cleared"
    assert_conserved(db)


def test_a_heartbeat_makes_its_sender_fresh_with_its_cadence(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    document = load(HEARTBEAT)
    document["event"]["heartbeatFields"]["heartbeatInterval"] = 60
    before = last_batch_id(db)
    assert post(client, ves_token, document).status_code == 202
    (batch,) = batches_after(db, before)
    with db.session() as session:
        query = select(Source).where(Source.name == "ves:ibcx0001vm002oam001")
        source = session.scalars(query).one()
    assert (source.expected_cadence_s, source.stale_after_s) == (60, 180)
    assert source.last_received_at == batch.received_at == source.last_good_batch_at
    assert (batch.received, batch.accepted) == (1, 1)


def test_measurements_become_kpis_through_counter_mappings(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    with db.session(write=True) as session:
        kpis = {k.name: k.id for k in session.scalars(select(Kpi))}
        session.add_all(
            [
                CounterMapping(counter="cpuUsage.percentUsage", kpi_id=kpis["cpu_util"]),
                CounterMapping(
                    counter="nicPerformance.receivedTotalPacketsDelta", kpi_id=kpis["sessions"]
                ),
                CounterMapping(counter="Sessions.active", kpi_id=kpis["sessions"]),
            ]
        )
    at = now_minute()
    v7 = load(RESOURCES / "measurement7x.json")
    v7["event"]["commonEventHeader"]["lastEpochMicrosec"] = int(at.timestamp() * 1e6)
    v7["event"]["commonEventHeader"]["nfVendorName"] = "Ericsson"
    v7["event"]["measurementFields"]["additionalMeasurements"] = [
        {"name": "Sessions", "hashMap": {"active": "412", "note": "n/a"}}
    ]
    v5 = load(RESOURCES / "measurement5x.json")
    v5["event"]["commonEventHeader"]["sourceName"] = "vnf-five"
    v5["event"]["commonEventHeader"]["lastEpochMicrosec"] = int(at.timestamp() * 1e6)
    v5["event"]["measurementsForVfScalingFields"]["additionalMeasurements"] = [
        {"name": "Sessions", "arrayOfFields": [{"name": "active", "value": "17"}]}
    ]
    before = last_batch_id(db)
    assert post(client, ves_token, v7).status_code == 202
    assert post(client, ves_token, v5, version="v5").status_code == 202

    with db.session() as session:
        rows = session.execute(
            select(Element.dn, Kpi.name, Measurement.value, Measurement.suspect, Element.vendor)
            .join(Element, Element.id == Measurement.element_id)
            .join(Kpi, Kpi.id == Measurement.kpi_id)
        ).all()
    stored = {(dn, kpi): (value, suspect) for dn, kpi, value, suspect, _ in rows}
    assert stored[("bgtnj05vmh01afx,cpuUsage=cpu0", "cpu_util")] == (0.36, False)
    assert stored[("vnf-five,cpuUsage=all", "cpu_util")] == (0.39, False)
    nic = "bgtnj05vmh01afx,nicPerformance=ens2   DNS2_RSLOTPORT_VLAN_CLASSTYPE"
    assert stored[(nic, "sessions")] == (7988.0, True)  # valuesAreSuspect: "true"
    assert stored[("bgtnj05vmh01afx", "sessions")] == (412.0, False)
    assert stored[("vnf-five", "sessions")] == (17.0, False)
    assert {vendor for dn, *_, vendor in rows if dn.startswith("bgtnj")} == {"Ericsson"}

    batches = batches_after(db, before)
    assert [b.raw_format for b in batches] == ["ves", "ves"]
    reasons = {q.reason_code for q in quarantine_of(db, [b.id for b in batches])}
    assert reasons == {"unknown_counter"}  # the counters nobody mapped, kept for replay
    assert_conserved(db)


def test_a_measurement_without_values_is_quarantined(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    document = load(RESOURCES / "measurement7x.json")
    document["event"]["measurementFields"] = {
        "measurementInterval": 300,
        "measurementFieldsVersion": "4.0",
    }
    before = last_batch_id(db)
    assert post(client, ves_token, document).status_code == 202
    (record,) = quarantine_of(db, [b.id for b in batches_after(db, before)])
    assert record.reason_code == "no_measurements"
    assert record.record["eventId"] == "measurementsForVfScaling_vAfx_127.0.0.1"


def test_a_batch_from_two_senders_is_split_per_source(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    first = fresh_fault()["event"]
    second = copy.deepcopy(first)
    second["commonEventHeader"]["reportingEntityName"] = ""  # falls back to sourceName
    second["commonEventHeader"]["sourceName"] = "other-vnf"
    before = last_batch_id(db)
    assert post(client, ves_token, {"eventList": [first, second]}, batch=True).status_code == 202
    batches = batches_after(db, before)
    with db.session() as session:
        names = [session.get(Source, b.source_id).name for b in batches]
    assert names == ["ves:ibcx0001vm002oam001", "ves:other-vnf"]
    kept = [json.loads(read_raw(b)) for b in batches]
    assert [k["eventList"] for k in kept] == [[first], [second]]


def test_a_storage_failure_answers_500_and_marks_the_batch_failed(
    client: FlaskClient, db: Database, ves_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ves_store, "_process_events", broken)
    before = last_batch_id(db)
    ves_error(post(client, ves_token, fresh_fault()), 500, "SVC2000")
    (batch,) = batches_after(db, before)
    assert (batch.status, batch.error) == ("failed", "RuntimeError: disk on fire")
    assert read_raw(batch)  # kept for replay


def test_an_event_batch_replays_without_doing_anything_twice(
    client: FlaskClient, db: Database, ves_token: str
) -> None:
    batch_events = load(RESOURCES / "ves7_batch_valid.json")
    before = last_batch_id(db)
    response = post(client, ves_token, redate(batch_events, at=now_minute()), batch=True)
    assert response.status_code == 202
    (batch,) = batches_after(db, before)
    assert (batch.received, batch.accepted) == (2, 2)
    assert post(client, ves_token, load(HEARTBEAT)).status_code == 202
    with db.session() as session:
        fresh = session.get(Source, batch.source_id).last_received_at

    ves_store.reprocess_event_batch(db, batch_id=batch.id)

    (again,) = [b for b in batches_after(db, before) if b.id == batch.id]
    assert (again.received, again.accepted, again.duplicates) == (2, 0, 2)
    assert len(alarms_of(db)) == 2
    with db.session() as session:
        assert session.get(Source, batch.source_id).last_received_at == fresh
    assert_conserved(db)
    post(client, ves_token, b"{}")  # refused: its batch is not an event batch
    with pytest.raises(InvalidInput):
        ves_store.reprocess_event_batch(db, batch_id=last_batch_id(db))
