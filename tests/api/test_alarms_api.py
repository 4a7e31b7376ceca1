"""Alarm receivers and the alarm list over the API: Alertmanager webhook and TMF642."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from api_support import assert_error
from sqlalchemy import func, select
from testkit import SHARED_DATA

from services.db import Database
from services.db.models import Element, IngestBatch, QuarantinedRecord
from services.ingest.pipeline import read_raw

AM = "/api/v1/alarms/alertmanager"
TMF = "/api/v1/alarms/tmf642"
LIST = "/api/v1/alarms"
SITE = "SubNetwork=North,ManagedElement=SITE-0001"
WEBHOOK_DOC = (
    SHARED_DATA
    / "alarms"
    / "alertmanager"
    / "webhook_payload_format_excerpt_from_docs_configuration.md"
)
# Typed sample values for the placeholders of the documented format.
DOC_VALUES = {
    '"<resolved|firing>"': '"firing"',
    '"<rfc3339>"': '"2026-11-20T10:00:00Z"',
    "<int>": "0",
    '"receiver": <string>': '"receiver": "noc"',
    "<string>": '"example"',
    "<object>": '{"alertname": "DocExample"}',
}
SUMMARY_KEYS = {
    "received",
    "accepted",
    "duplicates",
    "quarantined",
    "raised",
    "cleared",
    "unmatched_clears",
    "batch_id",
}


def alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "LinkDown", "instance": "SITE-0001:9100", **labels},
        "annotations": {"summary": "Link down", "description": "Backhaul link lost"},
        "startsAt": "2026-11-20T10:00:00Z",
        "endsAt": "2026-11-20T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": "5bd1a4e1d3d0c4f2",
    }


def webhook(*alerts: Any, receiver: str = "beacon") -> dict[str, Any]:
    statuses = {a.get("status") for a in alerts if isinstance(a, dict)}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="LinkDown"}',
        "truncatedAlerts": 0,
        "status": "resolved" if statuses == {"resolved"} else "firing",
        "receiver": receiver,
        "groupLabels": {"alertname": "LinkDown"},
        "commonLabels": {"alertname": "LinkDown"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def tmf_alarm(**overrides: Any) -> dict[str, Any]:
    return {
        "alarmType": "Communications Alarm",
        "perceivedSeverity": "major",
        "probableCause": "Loss of signal",
        "specificProblem": "LOS on port 3",
        "alarmedObject": {"id": SITE, "@type": "ManagedElement"},
        "alarmedObjectType": "ManagedElement",
        "sourceSystemId": "EMS-North",
        "externalAlarmId": "EMS-4711",
        "state": "raised",
        "alarmRaisedTime": "2026-11-20T10:00:00Z",
        "alarmDetails": "Loss of signal on backhaul port 3",
        **overrides,
    }


@pytest.fixture
def ingest(as_role) -> dict[str, str]:
    return as_role("operator")


@pytest.fixture
def site(db: Database) -> int:
    with db.session(write=True) as session:
        element = Element(dn=SITE, name="SITE-0001", element_type="site", domain="RAN")
        session.add(element)
        session.flush()
        return element.id


def post(client, path: str, body: Any, headers: dict[str, str]) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, headers=headers, content_type="application/json")


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= SUMMARY_KEYS
    assert body["received"] == body["accepted"] + body["duplicates"] + body["quarantined"]
    return body


def active(client, headers: dict[str, str], **filters: str) -> list[dict[str, Any]]:
    response = client.get(LIST, query_string={"state": "active", **filters}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def assert_every_batch_conserved(db: Database) -> None:
    with db.session() as session:
        batches = list(session.scalars(select(IngestBatch)))
        assert batches
        for batch in batches:
            assert batch.status == "done"
            assert batch.received == batch.accepted + batch.duplicates + batch.quarantined
            kept = session.scalar(
                select(func.count()).where(QuarantinedRecord.batch_id == batch.id)
            )
            assert kept == batch.quarantined


# --- Alertmanager ---


def test_firing_raises_and_resolved_clears_the_same_label_set(client, db, ingest, site) -> None:
    raised = ok(post(client, AM, webhook(alert(), alert(alertname="HighLatency")), ingest))
    assert (raised["raised"], raised["source"]) == (2, "alertmanager:beacon")
    [first, second] = active(client, ingest)
    assert {first["probable_cause"], second["probable_cause"]} == {"LinkDown", "HighLatency"}
    assert first["element_id"] == site  # instance SITE-0001:9100 -> element SITE-0001
    assert first["text"] == "Backhaul link lost"
    assert first["external_id"] == "5bd1a4e1d3d0c4f2"

    # Same alertname but one more label: another alert, so it clears nothing.
    other = ok(post(client, AM, webhook(alert("resolved", team="core")), ingest))
    assert (other["cleared"], other["unmatched_clears"]) == (0, 1)
    cleared = ok(post(client, AM, webhook(alert("resolved")), ingest))
    assert (cleared["cleared"], cleared["accepted"]) == (1, 1)
    [left] = active(client, ingest)
    assert left["probable_cause"] == "HighLatency"
    history = client.get(LIST, query_string={"state": "cleared"}, headers=ingest).get_json()
    done = next(i for i in history["items"] if i["labels"] == alert()["labels"])
    assert done["cleared_at"] == "2026-11-20T10:30:00Z"
    assert_every_batch_conserved(db)


def test_resolved_with_nothing_open_is_an_unmatched_clear_not_an_error(client, ingest) -> None:
    body = ok(post(client, AM, webhook(alert("resolved")), ingest))
    assert (body["unmatched_clears"], body["accepted"], body["cleared"]) == (1, 1, 0)
    assert active(client, ingest) == []
    # The same notification again is a duplicate, not a second unmatched clear.
    again = ok(post(client, AM, webhook(alert("resolved")), ingest))
    assert (again["duplicates"], again["unmatched_clears"]) == (1, 0)


def test_repeated_firing_is_a_duplicate(client, ingest) -> None:
    ok(post(client, AM, webhook(alert()), ingest))
    repeat = ok(post(client, AM, webhook(alert(), alert()), ingest))
    assert (repeat["duplicates"], repeat["raised"], repeat["updated"]) == (2, 0, 0)
    changed = alert()
    changed["annotations"]["description"] = "Backhaul link lost, failover active"
    update = ok(post(client, AM, webhook(changed), ingest))
    assert (update["accepted"], update["updated"]) == (1, 1)
    assert len(active(client, ingest)) == 1


def test_mixed_webhook_stores_good_alerts_and_quarantines_bad_ones(client, db, ingest) -> None:
    bad_time = {**alert(alertname="B"), "startsAt": "20/11/2026 10:00"}
    no_labels = {**alert(), "labels": {}}
    body = ok(post(client, AM, webhook(alert(), no_labels, bad_time, alert("resolved")), ingest))
    assert (body["received"], body["accepted"], body["quarantined"]) == (4, 2, 2)
    assert body["reasons"] == {"missing_field": 1, "bad_timestamp": 1}
    assert [(p["index"], p["field"]) for p in body["problems"]] == [
        (1, "labels"),
        (2, "startsAt"),
    ]
    with db.session() as session:
        kept = list(session.scalars(select(QuarantinedRecord).order_by(QuarantinedRecord.id)))
        assert [(q.reason_code, q.field, q.batch_id) for q in kept] == [
            ("missing_field", "labels", body["batch_id"]),
            ("bad_timestamp", "startsAt", body["batch_id"]),
        ]
        assert kept[1].record == {"index": 2, "item": bad_time}
    assert_every_batch_conserved(db)


def test_nothing_usable_is_422_with_the_summary(client, db, ingest) -> None:
    body = webhook({**alert(), "labels": {}}, {"status": "firing"})
    error = assert_error(post(client, AM, body, ingest), 422, "payload_quarantined")
    assert error["details"]["quarantined"] == 2
    assert error["details"]["batch_id"] >= 1
    assert "missing_field" in error["message"]
    empty = ok(post(client, AM, webhook(), ingest))
    assert empty["received"] == 0
    assert_every_batch_conserved(db)


@pytest.mark.parametrize(
    ("raw", "status", "code", "reason"),
    [
        (b"alerts: [firing]", 400, "malformed_body", "malformed_payload"),
        (b"", 400, "malformed_body", "malformed_payload"),
        (b"[]", 422, "payload_quarantined", "schema_invalid"),
        (
            b'{"version": "2", "receiver": "x", "alerts": []}',
            422,
            "payload_quarantined",
            "unsupported_format",
        ),
        (b'{"version": "4", "receiver": "x"}', 422, "payload_quarantined", "missing_field"),
    ],
)
def test_malformed_bodies_are_refused_and_kept_raw(client, db, ingest, raw, status, code, reason):
    error = assert_error(post(client, AM, raw, ingest), status, code)
    details = error["details"]
    assert (details["received"], details["quarantined"]) == (1, 1)
    with db.session() as session:
        batch = session.get_one(IngestBatch, details["batch_id"])
        assert read_raw(batch) == raw
        record = session.scalars(select(QuarantinedRecord)).one()
        assert record.reason_code == reason
        assert record.batch_id == batch.id
    assert_every_batch_conserved(db)


def test_the_documented_webhook_excerpt(client, db, ingest) -> None:
    """Verbatim it is no JSON (placeholders): refused, kept; filled in, it raises an alarm."""
    verbatim = WEBHOOK_DOC.read_text().split("```")[1]
    assert_error(post(client, AM, verbatim.encode(), ingest), 400, "malformed_body")
    with db.session() as session:
        assert session.scalars(select(QuarantinedRecord)).one().record["body"] == verbatim
    filled = re.sub(r"//.*$", "", verbatim, flags=re.MULTILINE)
    filled = "\n".join(line for line in filled.splitlines() if line.strip() != "...")
    for placeholder, value in DOC_VALUES.items():
        filled = filled.replace(placeholder, value)
    filled = re.sub(r",(\s*[}\]])", r"\1", filled)
    body = ok(post(client, AM, filled.encode(), ingest))
    assert (body["source"], body["raised"]) == ("alertmanager:noc", 1)
    assert active(client, ingest)[0]["labels"] == {"alertname": "DocExample"}
    assert_every_batch_conserved(db)


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("error", "major"),
        ("warning", "warning"),
        ("info", "warning"),
        ("none", "indeterminate"),
    ],
)
def test_severity_labels_are_normalised(client, ingest, label: str, severity: str) -> None:
    ok(post(client, AM, webhook(alert(severity=label)), ingest))
    assert [a["severity"] for a in active(client, ingest)] == [severity]


def test_content_type_is_not_required_to_be_json(client, ingest) -> None:
    response = client.post(
        AM, data=json.dumps(webhook(alert())), headers=ingest, content_type="text/plain"
    )
    assert ok(response)["raised"] == 1


# --- TMF642 ---


def test_tmf642_create_then_clear(client, db, ingest, site) -> None:
    created = ok(post(client, TMF, tmf_alarm(), ingest))
    assert (created["raised"], created["source"]) == (1, "tmf642:EMS-North")
    [alarm] = active(client, ingest)
    assert alarm["element_id"] == site
    assert (alarm["severity"], alarm["probable_cause"]) == ("major", "Loss of signal")
    assert alarm["specific_problem"] == "LOS on port 3"
    update = ok(post(client, TMF, tmf_alarm(perceivedSeverity="critical", state="updated"), ingest))
    assert update["updated"] == 1
    assert active(client, ingest)[0]["severity"] == "critical"
    clear = tmf_alarm(
        perceivedSeverity="cleared", state="cleared", alarmClearedTime="2026-11-20T10:45:00Z"
    )
    cleared = ok(post(client, TMF, clear, ingest))
    assert (cleared["cleared"], cleared["accepted"]) == (1, 1)
    assert active(client, ingest) == []
    again = ok(post(client, TMF, clear, ingest))
    assert again["duplicates"] == 1
    detail = client.get(f"{LIST}/{alarm['id']}", headers=ingest).get_json()
    assert (detail["state"], detail["cleared_at"]) == ("cleared", "2026-11-20T10:45:00Z")
    assert detail["raw"]["alarmDetails"] == "Loss of signal on backhaul port 3"
    assert_every_batch_conserved(db)


def test_tmf642_clear_alarms_task_and_notifications(client, ingest) -> None:
    other = tmf_alarm(probableCause="Power problem", alarmType="Equipment Alarm")
    notification = {"eventId": "9", "eventType": "AlarmCreateEvent", "event": {"alarm": other}}
    listed = ok(post(client, TMF, [tmf_alarm(), notification], ingest))
    assert listed["raised"] == 2
    task = {
        "clearSystemId": "NOC-portal",
        "clearUserId": "operator-7",
        "alarmClearedTime": "2026-11-20T11:00:00Z",
        "alarmPattern": [{"alarmedObject": {"id": SITE}, "probableCause": "Loss of signal"}],
    }
    body = ok(post(client, TMF, task, ingest))
    assert (body["source"], body["cleared"]) == ("tmf642:NOC-portal", 1)
    [left] = active(client, ingest)
    assert left["probable_cause"] == "Power problem"
    by_external_id = {"state": "cleared", "externalAlarmId": "EMS-4711"}
    assert ok(post(client, TMF, by_external_id, ingest))["cleared"] == 1


def test_tmf642_missing_required_fields_are_quarantined(client, db, ingest) -> None:
    missing = {k: v for k, v in tmf_alarm().items() if k not in ("alarmType", "alarmedObject")}
    error = assert_error(post(client, TMF, missing, ingest), 422, "payload_quarantined")
    assert error["details"]["reasons"] == {"missing_field": 1}
    mixed = [tmf_alarm(), missing, tmf_alarm(alarmType=5), tmf_alarm(sourceSystemId="EMS-X")]
    body = ok(post(client, TMF, mixed, ingest))
    assert body["reasons"] == {"missing_field": 1, "schema_invalid": 1, "mixed_sources": 1}
    assert body["accepted"] == 1
    assert_every_batch_conserved(db)


# --- The alarm list ---


def test_list_filters_and_pages(client, ingest, as_role, site) -> None:
    alerts = [alert(alertname=f"A{n}", dn=SITE if n % 2 else "elsewhere") for n in range(5)]
    ok(post(client, AM, webhook(*alerts), ingest))
    ok(post(client, AM, webhook(alert("resolved", alertname="A0", dn="elsewhere")), ingest))
    viewer = as_role("viewer")
    page = client.get(LIST, query_string={"limit": 2, "offset": 1}, headers=viewer).get_json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (5, 2, 1, 2)
    assert len(active(client, viewer)) == 4
    assert {a["probable_cause"] for a in active(client, viewer, element=SITE)} == {"A1", "A3"}
    assert {a["probable_cause"] for a in active(client, viewer, element="SITE-0001")} == {
        "A1",
        "A3",
    }
    assert len(active(client, viewer, element="elsewhere")) == 2
    for bad in ({"state": "open"}, {"limit": 0}, {"colour": "red"}):
        assert_error(client.get(LIST, query_string=bad, headers=viewer), 422, "invalid_input")
    assert_error(client.get(f"{LIST}/999999", headers=viewer), 404, "not_found")


# --- Who may call ---


@pytest.mark.parametrize(
    ("method", "path"), [("POST", AM), ("POST", TMF), ("GET", LIST), ("GET", f"{LIST}/1")]
)
def test_no_token_is_401(client, method: str, path: str) -> None:
    assert_error(client.open(path, method=method, json={}), 401, "unauthorized")


def test_ingest_needs_the_ingest_scope(client, db, as_role) -> None:
    for headers in (as_role("viewer"), as_role("operator", scopes=["read"])):
        for path in (AM, TMF):
            error = assert_error(post(client, path, webhook(alert()), headers), 403, "forbidden")
            assert error["details"]["required_scope"] == "ingest"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(IngestBatch)) == 0
    assert client.get(LIST, headers=as_role("viewer")).status_code == 200
    assert client.get(LIST, headers=as_role("executive")).status_code == 200


def test_openapi_documents_the_alarm_endpoints(client, as_role) -> None:
    document = client.get("/api/v1/openapi.json", headers=as_role("viewer")).get_json()
    for path in (AM, TMF):
        operation = document["paths"][path]["post"]
        assert operation["x-beacon-scope"] == "ingest"
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" not in json.dumps(schema)
        assert {"200", "400", "422"} <= set(operation["responses"])
    am_schema = document["paths"][AM]["post"]["requestBody"]["content"]["application/json"]
    assert set(am_schema["schema"]["required"]) == {"version", "receiver", "alerts"}
    listed = document["paths"][LIST]["get"]
    assert listed["x-beacon-scope"] == "read"
    assert {p["name"] for p in listed["parameters"]} == {"state", "element", "limit", "offset"}
    assert "/api/v1/alarms/{alarm_id}" in document["paths"]


def test_raw_batches_keep_the_exact_bytes(client, db, ingest) -> None:
    raw = json.dumps(webhook(alert()), indent=3).encode() + b"\n"
    body = ok(post(client, AM, raw, ingest))
    with db.session() as session:
        assert read_raw(session.get_one(IngestBatch, body["batch_id"])) == raw
