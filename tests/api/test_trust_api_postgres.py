"""The trust endpoints on PostgreSQL: decide, a guardrail's 409, execute, roll back, calendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from api_support import assert_error, beacon_settings, bearer
from flask import Flask
from testkit import drop_postgres_database, fresh_postgres_database, skip_or_fail_without_postgres
from trust_api_support import add_recommendation, seed_trust

from app import create_app
from services import audit, auth
from services.db.models import utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Flask]:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_trust_api")
    server = create_app(beacon_settings(tmp_path, BEACON_DATABASE_URL=url)).server
    assert server.extensions["beacon"].db.dialect == "postgresql"
    yield server
    server.extensions["beacon"].db.dispose()
    drop_postgres_database(url)


def test_trust_flow_on_postgresql(pg_server: Flask) -> None:
    db = pg_server.extensions["beacon"].db
    client = pg_server.test_client()
    seed_trust(db)
    with db.session(write=True) as session:
        operator, engineer = (
            bearer(
                auth.create_api_token(
                    session, name=f"pg-{role}", role=role, actor=audit.SYSTEM
                ).plaintext
            )
            for role in ("operator", "engineer")
        )
    cases = client.get("/api/v1/use-cases", headers=operator).get_json()["items"]
    assert {c["maturity_level"] for c in cases} == {"L1", "L2", "L3"}

    rec = add_recommendation(db)
    blocked = assert_error(
        client.post(f"/api/v1/recommendations/{rec}/execute", headers=operator),
        409,
        "guardrail_blocked",
    )
    assert blocked["details"]["blocking"]["name"] == "human_approval"
    assert_error(
        client.post(
            f"/api/v1/recommendations/{rec}/decision", json={"verdict": "accept"}, headers=operator
        ),
        422,
        "invalid_input",
    )
    decided = client.post(
        f"/api/v1/recommendations/{rec}/decision",
        json={"verdict": "accept", "reason_code": "other", "note": "pg"},
        headers=operator,
    )
    assert decided.status_code == 201, decided.get_data(as_text=True)
    run = client.post(f"/api/v1/recommendations/{rec}/execute", headers=operator)
    assert run.status_code == 200, run.get_data(as_text=True)
    assert run.get_json()["state"] == "succeeded"
    back = client.post(
        f"/api/v1/recommendations/{rec}/rollback", json={"reason": "pg test"}, headers=engineer
    )
    assert back.get_json()["state"] == "rolled_back"

    start = (utcnow() + timedelta(days=1)).isoformat()
    end = (utcnow() + timedelta(days=1, hours=3)).isoformat()
    imported = client.post(
        "/api/v1/change-windows",
        data=f"title,kind,starts_at,ends_at\nNight works,maintenance,{start},{end}\nBad,x,,\n",
        headers={**engineer, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.get_data(as_text=True)
    assert imported.get_json()["created"] == 1
    assert [e["line"] for e in imported.get_json()["errors"]] == [3]
    listed = client.get("/api/v1/change-windows", headers=operator).get_json()["items"]
    assert [w["title"] for w in listed] == ["Night works"]
