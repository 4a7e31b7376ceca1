"""Incident fixtures: a migrated database with the demo on-call seed, wiped after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from incident_support import NOW, OPERATOR, VIEWER
from sqlalchemy import delete, update
from testkit import BACKENDS, backend_url, seeded_database

from services import audit, auth
from services.db import Database
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
from services.seed import ensure_simulator_sources

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


@pytest.fixture(scope="module", params=BACKENDS)
def seeded_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """Built once per module and backend: KPIs, simulator sources, users, demo on-call."""
    name = request.module.__name__[5:30]
    with (
        backend_url(request.param, tmp_path_factory, name) as url,
        seeded_database(url) as database,
    ):
        with database.session(write=True) as session:
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
