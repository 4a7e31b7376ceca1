"""Incident fixtures: a migrated database with the demo on-call seed, wiped after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from incident_support import NOW, OPERATOR, VIEWER
from sqlalchemy import delete, update
from testkit import drop_postgres_database, fresh_postgres_database, skip_or_fail_without_postgres

from services import audit, auth
from services.db import Database, connect, upgrade_to_head
from services.db.models import (
    Alarm,
    Anomaly,
    AuditEvent,
    ChangeWindow,
    EscalationPolicy,
    Incident,
    IncidentChangeWindow,
    IncidentEvent,
    IncidentRole,
    JobRun,
    Notification,
    OncallOverride,
    Person,
    Source,
)
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_kpis, ensure_simulator_sources

_WIPE = (
    Notification,
    IncidentEvent,
    IncidentRole,
    IncidentChangeWindow,
    Anomaly,
    Incident,
    ChangeWindow,
    Alarm,
    JobRun,
    OncallOverride,
    AuditEvent,
)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """Built once per module and backend: KPIs, simulator sources, users, demo on-call."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('incidents') / 'beacon.db'}"
    else:
        skip_or_fail_without_postgres()
        url = fresh_postgres_database(f"beacon_{request.module.__name__[5:30]}")
    database = connect(url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
        ensure_simulator_sources(session)
        seed_demo_oncall(session, now=NOW)
        for actor in (OPERATOR, VIEWER):
            auth.create_user(
                session,
                username=actor.name,
                role=actor.role or "viewer",
                password="user-pass-12345",
                actor=audit.SYSTEM,
            )
    yield database
    database.dispose()
    if request.param == "postgres":
        drop_postgres_database(url)


@pytest.fixture
def db(seeded_db: Database) -> Iterator[Database]:
    """The seeded database; whatever a test adds to incidents and their kin is removed after."""
    yield seeded_db
    with seeded_db.session(write=True) as session:
        for model in _WIPE:
            session.execute(delete(model))
        session.execute(update(Source).values(last_received_at=None, status="unknown"))
        session.execute(update(Person).values(user_id=None))
        session.execute(delete(EscalationPolicy).where(EscalationPolicy.name.like("test-%")))
