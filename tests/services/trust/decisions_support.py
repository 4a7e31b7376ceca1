"""Fixtures of the decisions tests: a small simulated network, use cases, users and on-call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from testkit import BACKENDS, backend_url, seeded_database

from services.audit import Actor
from services.automation.use_cases import ensure_use_cases
from services.db import Database
from services.db.models import (
    Anomaly,
    AuditEvent,
    Element,
    Kpi,
    Measurement,
    Recommendation,
    UseCase,
    User,
)
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources, register_topology

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
CELL_2 = "SubNetwork=South,ManagedElement=SITE-0002,EUtranCellFDD=C1"
LINK = "SubNetwork=Transport,ManagedElement=AGG-NORTH-1,Link=SITE-0001"
OPERATOR = Actor(name="op-1", role="operator")
ENGINEER = Actor(name="eng-1", role="engineer")
ENGINEER_2 = Actor(name="eng-2", role="engineer")
TOKEN = Actor(name="api:robot", role="engineer", kind="api")
READERS = (
    Actor(name="viewer-1", role="viewer"),
    Actor(name="exec-1", role="executive"),
    Actor(name="wall", role="viewer", kind="kiosk"),
)


def seed(database: Database) -> None:
    """Inventory of a one-site-per-region network, use cases, users and the demo on-call."""
    simulator = NetworkSimulator(
        SimConfig(start=pd.Timestamp("2026-11-01", tz="UTC"), sites_per_region=1)
    )
    with database.session(write=True) as session:
        ensure_simulator_sources(session)
        register_topology(session, simulator.topology)
        ensure_use_cases(session, now=NOW - timedelta(days=60))
        seed_demo_oncall(session, now=NOW)  # owns "usecase:<key>" once use cases exist
        for actor in (OPERATOR, ENGINEER, ENGINEER_2, READERS[0], READERS[1]):
            # Direct rows: password hashing is not what these tests are about.
            session.add(User(username=actor.name, role=actor.role or "viewer", password_hash="x"))


@pytest.fixture(scope="module", params=BACKENDS)
def dec_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One seeded database per backend and test module."""
    name = f"dec_{request.module.__name__[-14:]}"
    with (
        backend_url(request.param, tmp_path_factory, name) as url,
        seeded_database(url) as database,
    ):
        seed(database)
        yield database


@pytest.fixture
def session(dec_db: Database) -> Iterator[Session]:
    """A session whose writes are thrown away, so every test starts from the seed."""
    with dec_db.session() as session:
        yield session


def use_case(session: Session, key: str, **changes: Any) -> UseCase:
    """A seeded use case, optionally changed for this test (level, enabled, ...)."""
    case = session.scalars(select(UseCase).where(UseCase.key == key)).one()
    for name, value in changes.items():
        setattr(case, name, value)
    session.flush()
    return case


def element(session: Session, dn: str) -> Element:
    return session.scalars(select(Element).where(Element.dn == dn)).one()


def kpi_id(session: Session, name: str) -> int:
    return session.scalars(select(Kpi.id).where(Kpi.name == name)).one()


def anomaly(
    session: Session,
    *,
    dn: str = CELL,
    kpi: str = "prb_util_dl",
    observed: float = 97.0,
    expected: float = 55.0,
    confidence: float = 0.9,
    severity: str = "major",
    started_at: datetime = NOW - timedelta(minutes=45),
    data_quality: dict[str, Any] | None = None,
) -> Anomaly:
    """An ongoing episode on an element's KPI, explained like the detector does."""
    row = Anomaly(
        element_id=element(session, dn).id,
        kpi_id=kpi_id(session, kpi),
        started_at=started_at,
        peak_at=started_at + timedelta(minutes=15),
        last_evaluated_at=NOW - timedelta(minutes=5),
        observed=observed,
        expected=expected,
        band_low=expected - 10,
        band_high=expected + 10,
        score=6.0,
        confidence=confidence,
        severity=severity,
        detector="robust-seasonal",
        model_version="test-1",
        explanation={"summary": f"{kpi} is {observed:g}, typically {expected:g}."},
        data_quality=data_quality or {"flags": [], "text": "complete"},
        created_at=started_at,
    )
    session.add(row)
    session.flush()
    return row


def recommendation(
    session: Session,
    key: str = "cell_congestion_lb",
    *,
    dn: str = CELL,
    state: str = "open",
    severity: str = "minor",
    confidence: float = 0.9,
    level: int | None = None,
    created_at: datetime = NOW - timedelta(minutes=10),
    expires_at: datetime | None = NOW + timedelta(hours=2),
    simulated: bool = False,
) -> Recommendation:
    """A recommendation row of a use case on an element, in a given state."""
    case = use_case(session, key)
    rec = Recommendation(
        use_case_id=case.id,
        element_id=element(session, dn).id,
        action=case.action,
        parameters={"element_dn": dn},
        rationale="test rationale",
        confidence=confidence,
        severity=severity,
        maturity_level=case.maturity_level if level is None else level,
        state=state,
        simulated=simulated,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(rec)
    session.flush()
    return rec


def measure(session: Session, dn: str, kpi: str, value: float, *, at: datetime = NOW) -> None:
    """One stored KPI value of an element."""
    session.add(
        Measurement(
            element_id=element(session, dn).id,
            kpi_id=kpi_id(session, kpi),
            period_end=at,
            value=value,
        )
    )
    session.flush()


def audit_trail(session: Session, *, object_type: str, object_id: int) -> list[str]:
    """The audit actions on one object, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
            .order_by(AuditEvent.seq)
        )
    )
