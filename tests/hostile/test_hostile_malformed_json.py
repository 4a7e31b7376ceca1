"""Malformed JSON on every JSON endpoint: a clear 4xx (and a quarantined batch where the
endpoint keeps raw input), never a 500.

Covers what has crashed JSON readers before: nesting deep enough to exhaust the decoder's
recursion, integers longer than Python converts, invalid UTF-8, NaN, NUL and lone
surrogates, and XML sent where JSON is expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dash import Dash
from sqlalchemy import select
from testkit import (
    add_user,
    drop_postgres_database,
    fresh_postgres_database,
    settings_for,
    sign_in,
    skip_or_fail_without_postgres,
)

from app import create_app
from services import audit, auth
from services.db import Database
from services.db.models import ChangeWindow, IngestBatch, QuarantinedRecord

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
BODIES = {
    "deep_array": DEEP_ARRAY,
    "deep_object": DEEP_OBJECT,
    "long_integer": b"[" + b"7" * 5000 + b"]",
    "long_integer_value": b'{"records": [{"dn": "a", "kpi": "k", "period_end": "t", "value": '
    + b"9" * 5000
    + b"}]}",
    "truncated": b'{"title": "x", "severity": ',
    "not_utf8": b'{"title": "\xff\xfe", "severity": "sev3"}',
    "nan": b'{"title": NaN, "severity": "sev3"}',
    "nul": b'{"title": "a\\u0000b", "severity": "sev3", "text": "a\\u0000b"}',
    "lone_surrogate": b'{"title": "\\ud800", "severity": "sev3", "text": "\\ud800"}',
    "xml": b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
}
JSON_ENDPOINTS = [
    "/api/v1/incidents",
    "/api/v1/incidents/1/notes",
    "/api/v1/tokens/api",
    "/api/v1/change-windows",
    "/api/v1/telemetry",
    "/api/v1/alarms/alertmanager",
    "/api/v1/alarms/tmf642",
    "/eventListener/v7",
    "/eventListener/v7/eventBatch",
]
# Endpoints that keep every body as a raw batch and quarantine what they cannot read.
QUARANTINING = {"/api/v1/telemetry", "/api/v1/alarms/alertmanager", "/api/v1/alarms/tmf642"}


def _admin(db: Database) -> dict[str, str]:
    with db.session(write=True) as session:
        issued = auth.create_api_token(session, name="malformed", role="admin", actor=audit.SYSTEM)
    return {"Authorization": f"Bearer {issued.plaintext}"}


def _incident(client, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(
        "/api/v1/incidents", json={"title": "target", "severity": "sev3"}, headers=headers
    )
    assert answer.status_code == 201


@pytest.mark.parametrize("label", sorted(BODIES))
def test_malformed_json_is_a_4xx_everywhere(app: Dash, db: Database, label: str) -> None:
    client = app.server.test_client()
    headers = _admin(db)
    _incident(client, headers)
    body = BODIES[label]
    for path in JSON_ENDPOINTS:
        with db.session() as session:
            before = len(session.scalars(select(IngestBatch.id)).all())
        answer = client.post(
            path, data=body, headers={**headers, "Content-Type": "application/json"}
        )
        text = answer.get_data(as_text=True)
        assert answer.status_code < 500, (label, path, text[:300])
        assert "Traceback" not in text
        if answer.status_code >= 400:
            assert answer.is_json, (label, path)
        if path in QUARANTINING and label in ("deep_array", "deep_object", "truncated", "xml"):
            with db.session() as session:
                batches = session.scalars(select(IngestBatch.id)).all()
                assert len(batches) == before + 1, (label, path)
                refused = session.scalars(
                    select(QuarantinedRecord).where(QuarantinedRecord.batch_id == batches[-1])
                ).all()
            assert refused, (label, path)
            assert {r.reason_code for r in refused} <= {"malformed_payload", "unsupported_format"}


def test_deep_nesting_answers_say_why(app: Dash, db: Database) -> None:
    client = app.server.test_client()
    headers = {**_admin(db), "Content-Type": "application/json"}
    for path in ("/api/v1/incidents", "/api/v1/change-windows", "/api/v1/tokens/api"):
        answer = client.post(path, data=DEEP_ARRAY, headers=headers)
        assert answer.status_code == 400
        assert answer.get_json()["error"]["code"] == "malformed_body"
        assert "nested too deeply" in answer.get_json()["error"]["message"]
    pushed = client.post("/api/v1/telemetry", data=DEEP_ARRAY, headers=headers)
    assert pushed.status_code == 202
    assert pushed.get_json()["reasons"] == {"malformed_payload": 1}


def test_nul_in_query_and_model_text_is_refused(app: Dash, db: Database) -> None:
    client = app.server.test_client()
    headers = _admin(db)
    for url in ("/api/v1/alarms?element=a%00b", "/api/v1/forecasts/a%00b/prb_util_dl"):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 422, url
        assert "NUL" in answer.get_json()["error"]["message"]
    answer = client.post(
        "/api/v1/incidents",
        data=BODIES["nul"],
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422


def test_xml_sent_as_xml_to_json_endpoints_is_415(app: Dash, db: Database) -> None:
    client = app.server.test_client()
    headers = {**_admin(db), "Content-Type": "application/xml"}
    for path in ("/api/v1/incidents", "/api/v1/telemetry", "/api/v1/change-windows"):
        answer = client.post(path, data=BODIES["xml"], headers=headers)
        assert answer.status_code == 415, path
        assert answer.get_json()["error"]["code"] == "unsupported_media_type"


def test_malformed_dash_callback_bodies_are_4xx(app: Dash, db: Database) -> None:
    add_user(db, "callback-user", "engineer")
    client = app.server.test_client()
    sign_in(client, "callback-user")
    headers = {"Content-Type": "application/json", "Origin": "http://localhost"}
    for body in (b"{", b"[]", b'{"output": 1}', b"\xff", BODIES["long_integer"]):
        answer = client.post("/_dash-update-component", data=body, headers=headers)
        assert 400 <= answer.status_code < 500, body[:20]


def test_deeply_nested_dash_callback_body_is_4xx(app: Dash, db: Database) -> None:
    add_user(db, "callback-deep", "engineer")
    client = app.server.test_client()
    sign_in(client, "callback-deep")
    answer = client.post(
        "/_dash-update-component",
        data=DEEP_ARRAY,
        headers={"Content-Type": "application/json", "Origin": "http://localhost"},
    )
    assert 400 <= answer.status_code < 500


@pytest.mark.postgres
def test_calendar_text_postgres_cannot_store_is_refused_per_row(
    tmp_path: Path, worker_id: str
) -> None:
    """NUL, over-long ids and times before year 1 in UTC are row errors, not a failed import."""
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_hostile_calendar_{worker_id}")
    app = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=url))
    try:
        db = app.server.extensions["beacon"].db
        client = app.server.test_client()
        headers = {**_admin(db), "Content-Type": "text/csv"}
        csv_text = (
            "external_id,title,kind,starts_at,ends_at\n"
            "ok-1,Good,maintenance,2026-11-26T22:00:00Z,2026-11-26T23:00:00Z\n"
            "nul-1,Bad\x00title,maintenance,2026-11-26T22:00:00Z,2026-11-26T23:00:00Z\n"
            f"{'x' * 150},Long id,maintenance,2026-11-26T22:00:00Z,2026-11-26T23:00:00Z\n"
            "old-1,Old,freeze,0001-01-01T00:00:00+01:00,2026-11-26T23:00:00Z\n"
        )
        answer = client.post("/api/v1/change-windows", data=csv_text.encode(), headers=headers)
        assert answer.status_code == 201, answer.get_data(as_text=True)
        summary = answer.get_json()
        assert summary["created"] == 1
        assert [e["line"] for e in summary["errors"]] == [3, 4, 5]
        window = {"title": "a\x00b", "kind": "freeze", "starts_at": "2026-11-26T22:00:00Z"}
        window["ends_at"] = "2026-11-26T23:00:00Z"
        refused = client.post(
            "/api/v1/change-windows",
            data=json.dumps(window),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert refused.status_code == 422
        with db.session() as session:
            assert len(session.scalars(select(ChangeWindow)).all()) == 1
    finally:
        app.server.extensions["beacon"].db.dispose()
        drop_postgres_database(url)
