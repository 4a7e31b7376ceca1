"""Alarms end to end on a fresh database, once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import assert_error, bearer
from flask import Flask
from hypothesis import given
from sqlalchemy import func, select
from test_alarms_api_fuzz import FUZZ, SITE, am_alert, bodies, deliver, tmf
from testkit import settings_for

from app import create_app
from services import audit, auth
from services.db.models import Element, IngestBatch, QuarantinedRecord

AM = "/api/v1/alarms/alertmanager"
TMF = "/api/v1/alarms/tmf642"


@pytest.fixture
def e2e(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    server = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=database_url)).server
    db = server.extensions["beacon"].db
    with db.session(write=True) as session:
        session.add(Element(dn=SITE, name="SITE-0001", element_type="site", domain="RAN"))
    yield server
    db.dispose()


def token(server: Flask, role: str, **kwargs: object) -> dict[str, str]:
    with server.extensions["beacon"].db.session(write=True) as session:
        issued = auth.create_api_token(
            session,
            name=f"e2e-{role}-{secrets.token_hex(4)}",
            role=role,
            actor=audit.SYSTEM,
            **kwargs,
        )
    return bearer(issued.plaintext)


def test_alarm_flow_end_to_end(e2e: Flask, database_url: str) -> None:
    client, db = e2e.test_client(), e2e.extensions["beacon"].db
    ingest, viewer = token(e2e, "engineer"), token(e2e, "viewer")

    def post(path: str, body: object) -> dict:
        response = client.post(path, data=json.dumps(body), headers=ingest)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    webhook = {"version": "4", "receiver": "e2e", "status": "firing"}
    nul = {**am_alert("firing"), "labels": {"alertname": "Nul\x00", "instance": "SITE-0001"}}
    first = post(AM, {**webhook, "alerts": [am_alert("firing"), nul, {"labels": {}}]})
    assert (first["raised"], first["quarantined"]) == (2, 1)
    assert post(AM, {**webhook, "alerts": [am_alert("resolved")]})["cleared"] == 1
    assert post(TMF, tmf())["raised"] == 1
    assert post(TMF, tmf(state="cleared", alarmClearedTime="2026-11-20T12:00:00Z"))["cleared"] == 1
    assert_error(client.post(AM, data=b"\x00not json", headers=ingest), 400, "malformed_body")
    assert_error(client.post(TMF, data=b"{}", headers=viewer), 403, "forbidden")

    listed = client.get("/api/v1/alarms?state=active", headers=viewer).get_json()
    assert listed["total"] == 1
    [alarm] = listed["items"]
    assert alarm["labels"]["alertname"] == "Nul\ufffd"
    assert alarm["element_id"] is not None
    assert client.get(f"/api/v1/alarms/{alarm['id']}", headers=viewer).status_code == 200
    cleared = client.get("/api/v1/alarms?state=cleared", headers=viewer).get_json()
    assert {item["source"] for item in cleared["items"]} == {"alertmanager:e2e", "tmf642:EMS-North"}

    with db.session() as session:
        batches = list(session.scalars(select(IngestBatch)))
        assert len(batches) == 5
        for batch in batches:
            assert batch.received == batch.accepted + batch.duplicates + batch.quarantined
        assert session.scalar(select(func.count()).select_from(QuarantinedRecord)) == 2
    assert db.dialect == ("postgresql" if database_url.startswith("postgresql") else "sqlite")


@FUZZ
@given(am=bodies("alertmanager"), tmf_raw=bodies("tmf642"))
def test_mutated_deliveries_are_stored_on_every_database(
    e2e: Flask, am: bytes, tmf_raw: bytes
) -> None:
    client, db = e2e.test_client(), e2e.extensions["beacon"].db
    headers = token(e2e, "operator", scopes=["ingest"])
    deliver(client, db, headers, "alertmanager", am)
    deliver(client, db, headers, "tmf642", tmf_raw)
