"""On-call and incidents over the API on PostgreSQL: ownership lookup, lifecycle, row locks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import assert_error, beacon_settings, bearer
from flask import Flask
from testkit import drop_postgres_database, fresh_postgres_database, skip_or_fail_without_postgres

from app import create_app
from services import audit, auth
from services.db.models import utcnow
from services.oncall.demo import seed_demo_oncall

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Flask]:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_oncall_api")
    server = create_app(beacon_settings(tmp_path, BEACON_DATABASE_URL=url)).server
    assert server.extensions["beacon"].db.dialect == "postgresql"
    yield server
    server.extensions["beacon"].db.dispose()
    drop_postgres_database(url)


def test_oncall_and_incidents_on_postgresql(pg_server: Flask) -> None:
    db = pg_server.extensions["beacon"].db
    client = pg_server.test_client()
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())
        operator = bearer(
            auth.create_api_token(
                session, name="pg-op", role="operator", actor=audit.SYSTEM
            ).plaintext
        )
    now = client.get("/api/v1/oncall/now?domain=transport", headers=operator)
    assert now.status_code == 200, now.get_data(as_text=True)
    assert now.get_json()["team"]["key"] == "transport"
    assert now.get_json()["person"]["name"]
    assert_error(client.get("/api/v1/oncall/now?domain=Mars", headers=operator), 404, "not_found")
    schedules = client.get("/api/v1/oncall/schedules", headers=operator).get_json()
    assert len(schedules["items"]) == 5

    created = client.post(
        "/api/v1/incidents",
        json={"title": "Core packet loss", "severity": "sev2", "domain": "Core"},
        headers=operator,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    number = created.get_json()["id"]
    assert (
        client.post(f"/api/v1/incidents/{number}/acknowledge", headers=operator).status_code == 200
    )
    assert_error(
        client.post(f"/api/v1/incidents/{number}/resolve", json={"note": ""}, headers=operator),
        422,
        "resolution_note_required",
    )
    resolved = client.post(
        f"/api/v1/incidents/{number}/resolve", json={"note": "rerouted"}, headers=operator
    )
    assert resolved.get_json()["status"] == "resolved"
    listed = client.get(
        "/api/v1/incidents?status=resolved&domain=core", headers=operator
    ).get_json()
    assert [i["id"] for i in listed["items"]] == [number]
    assert listed["items"][0]["team"] == "Core"
