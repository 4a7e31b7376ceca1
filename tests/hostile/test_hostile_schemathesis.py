"""Every operation of /api/v1/openapi.json, fuzzed in-process: no answer is ever a 5xx.

Schemathesis generates valid (positive) and invalid (negative) requests from the published
schema for every operation and sends them to the Flask app through WSGI, with an admin
token so the views themselves run rather than the authorisation check alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from dash import Dash
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from testkit import (
    drop_postgres_database,
    fresh_postgres_database,
    settings_for,
    skip_or_fail_without_postgres,
)

from app import create_app
from services import audit, auth
from services.db import Database
from services.oncall.demo import seed_demo_oncall

# Per operation and generation mode; 50 operations × 2 modes keep this near a minute.
EXAMPLES = 12
POSTGRES_EXAMPLES = 4
SITE = "SubNetwork=North,ManagedElement=SITE-0001"
FUZZ = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _admin_token(db: Database) -> str:
    with db.session(write=True) as session:
        issued = auth.create_api_token(
            session, name="schema-fuzz", role="admin", actor=audit.SYSTEM
        )
    return issued.plaintext


def _seed(db: Database, client: FlaskClient, headers: dict[str, str]) -> None:
    """A few rows of each kind, so fuzzed small ids reach real objects, not only 404s."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=now)
    period = (now - timedelta(minutes=now.minute % 15)).isoformat()
    answers = [
        client.post(
            "/api/v1/telemetry?source=fuzz",
            data=f"dn,kpi,period_end,value\n{SITE},prb_util_dl,{period},41.5\n",
            headers={**headers, "Content-Type": "text/csv"},
        ),
        client.post(
            "/api/v1/incidents",
            json={"title": "Fuzz seed", "severity": "sev3", "domain": "RAN"},
            headers=headers,
        ),
        client.post(
            "/api/v1/alarms/tmf642",
            json={
                "alarmType": "Communications Alarm",
                "perceivedSeverity": "major",
                "probableCause": "Loss of signal",
                "alarmedObject": {"id": SITE},
                "sourceSystemId": "EMS-Fuzz",
                "state": "raised",
                "alarmRaisedTime": now.isoformat(),
            },
            headers=headers,
        ),
        client.post(
            "/api/v1/change-windows",
            json={
                "title": "Fuzz window",
                "kind": "maintenance",
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=2)).isoformat(),
            },
            headers=headers,
        ),
    ]
    assert [a.status_code for a in answers] == [202, 201, 200, 201], [
        a.get_data(as_text=True)[:300] for a in answers
    ]


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
) -> Callable[[], None]:
    @settings(FUZZ, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    return run


def _fuzz_every_operation(app: Dash, examples: int) -> None:
    db = app.server.extensions["beacon"].db
    token = _admin_token(db)
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app.server, headers={"Authorization": f"Bearer {token}"}
    )
    _seed(db, app.server.test_client(), {"Authorization": f"Bearer {token}"})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, "the published schema lost operations"
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # A fresh token per run: a fuzzed DELETE /tokens may have revoked the last one.
            headers = {"Authorization": f"Bearer {_admin_token(db)}"}
            try:
                _fuzz(operation, mode, headers, examples)()
            except (AssertionError, BaseExceptionGroup) as error:  # collect all, then report
                failures.append(f"{operation.label} [{mode.value}]: {error}"[:2000])
    assert not failures, "\n\n".join(failures)


def test_no_operation_answers_5xx_on_sqlite(app: Dash) -> None:
    _fuzz_every_operation(app, EXAMPLES)


@pytest.mark.postgres
def test_no_operation_answers_5xx_on_postgres(tmp_path: Path, worker_id: str) -> None:
    """PostgreSQL refuses what SQLite stores (NUL characters, integers past int4)."""
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_schemathesis_{worker_id}")
    app = create_app(settings_for(tmp_path, BEACON_DATABASE_URL=url))
    try:
        _fuzz_every_operation(app, POSTGRES_EXAMPLES)
    finally:
        app.server.extensions["beacon"].db.dispose()
        drop_postgres_database(url)
