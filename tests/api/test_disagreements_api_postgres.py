"""The disagreement queue and adoption report over the API on PostgreSQL (row-locked review)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import assert_error, beacon_settings, bearer
from disagreement_support import reject_one, seed_trust
from flask import Flask
from testkit import drop_postgres_database, fresh_postgres_database, skip_or_fail_without_postgres

from app import create_app
from services import audit, auth
from services.db.models import utcnow
from services.decisions.demo import backfill_history

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[Flask]:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database("beacon_disagreements_api")
    server = create_app(beacon_settings(tmp_path, BEACON_DATABASE_URL=url)).server
    assert server.extensions["beacon"].db.dialect == "postgresql"
    yield server
    server.extensions["beacon"].db.dispose()
    drop_postgres_database(url)


def test_queue_review_and_adoption_on_postgresql(pg_server: Flask) -> None:
    db = pg_server.extensions["beacon"].db
    client = pg_server.test_client()
    now = utcnow()
    with db.session(write=True) as session:
        seed_trust(session, now=now)
        backfill_history(session, now=now, weeks=3)
        case = reject_one(session, now=now)
        engineer = bearer(
            auth.create_api_token(
                session, name="pg-eng", role="engineer", actor=audit.SYSTEM
            ).plaintext
        )
        viewer = bearer(
            auth.create_api_token(
                session, name="pg-view", role="viewer", actor=audit.SYSTEM
            ).plaintext
        )
    listed = client.get("/api/v1/disagreements?state=open&simulated=false", headers=viewer)
    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert [i["id"] for i in listed.get_json()["items"]] == [case.case_id]
    url = f"/api/v1/disagreements/{case.case_id}/review"
    assert_error(client.post(url, json={"outcome": "ai_right"}, headers=viewer), 403, "forbidden")
    assert_error(client.post(url, json={"outcome": "nope"}, headers=engineer), 422, "invalid_input")
    done = client.post(url, json={"outcome": "data_issue", "note": "probe"}, headers=engineer)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert (done.get_json()["state"], done.get_json()["outcome"]) == ("resolved", "data_issue")
    assert_error(client.post(url, json={"outcome": "ai_right"}, headers=engineer), 409, "conflict")
    report = client.get("/api/v1/adoption?weeks=3", headers=viewer)
    assert report.status_code == 200, report.get_data(as_text=True)
    assert len(report.get_json()["use_cases"]) == 4
    assert report.get_json()["network"]["decided"] > 0
