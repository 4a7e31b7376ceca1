"""Shared fixtures of the automation tests: a small simulated network, use cases and people."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from testkit import BACKENDS, backend_url, seeded_database

from services import audit
from services.audit import Actor
from services.automation.use_cases import ensure_use_cases
from services.db import Database
from services.db.models import (
    AuditEvent,
    Decision,
    Element,
    Kpi,
    Measurement,
    Recommendation,
    UseCase,
    User,
)
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.seed import register_topology

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SIM_START = pd.Timestamp("2026-11-01", tz="UTC")
ENGINEER = Actor(name="eng-1", role="engineer")
OPERATOR = Actor(name="op-1", role="operator")
ADMIN = Actor(name="admin-1", role="admin")
CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
SOUTH_CELL = "SubNetwork=South,ManagedElement=SITE-0002,EUtranCellFDD=C1"
LINK = "SubNetwork=Transport,ManagedElement=AGG-NORTH-1,Link=SITE-0001"


def small_simulator() -> NetworkSimulator:
    """The one-site-per-region network the automation tests act on."""
    return NetworkSimulator(SimConfig(start=SIM_START, sites_per_region=1))


def seed(database: Database) -> None:
    """The simulated inventory, the seeded use cases and users (admin, engineers, operator)."""
    with database.session(write=True) as session:
        register_topology(session, small_simulator().topology)
        ensure_use_cases(session, now=NOW - timedelta(days=60))
        for name, role in (
            ("admin-1", "admin"),
            ("eng-1", "engineer"),
            ("eng-2", "engineer"),
            ("op-1", "operator"),
        ):
            # Direct rows: password hashing is not what these tests are about.
            session.add(User(username=name, role=role, password_hash="x"))


@pytest.fixture(scope="module", params=BACKENDS)
def auto_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One seeded database per backend and test module."""
    name = f"auto_{request.module.__name__[-12:]}"
    with (
        backend_url(request.param, tmp_path_factory, name) as url,
        seeded_database(url) as database,
    ):
        seed(database)
        yield database


@pytest.fixture
def session(auto_db: Database) -> Iterator[Session]:
    """A session whose writes are thrown away, so every test starts from the seed."""
    with auto_db.session() as session:
        yield session


def use_case(session: Session, key: str, **changes: Any) -> UseCase:
    """A seeded use case, optionally changed for this test (level, guardrails, ...)."""
    case = session.scalars(select(UseCase).where(UseCase.key == key)).one()
    for name, value in changes.items():
        if name == "guardrails":
            value = {**case.guardrails, **value}
        setattr(case, name, value)
    session.flush()
    return case


def element(session: Session, dn: str) -> Element:
    return session.scalars(select(Element).where(Element.dn == dn)).one()


def user_id(session: Session, name: str) -> int:
    return session.scalars(select(User.id).where(User.username == name)).one()


def recommend(
    session: Session,
    key: str = "cell_congestion_lb",
    *,
    dn: str = CELL,
    state: str = "open",
    confidence: float = 0.95,
    severity: str = "minor",
    cells: int = 1,
    users: int = 50,
    parameters: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    created_at: datetime = NOW - timedelta(minutes=5),
) -> Recommendation:
    """A recommendation of a use case on an element, in a given state."""
    case = use_case(session, key)
    rec = Recommendation(
        use_case_id=case.id,
        element_id=element(session, dn).id,
        action=case.action,
        parameters=parameters or {},
        rationale="test",
        confidence=confidence,
        severity=severity,
        blast_radius_cells=cells,
        blast_radius_users=users,
        rollback_plan={"text": "undo"},
        maturity_level=case.maturity_level,
        state=state,
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(rec)
    session.flush()
    return rec


def accept(
    session: Session, rec: Recommendation, *, by: str = "eng-1", verdict: str = "accept"
) -> Decision:
    """A human decision row (the decisions service is tested elsewhere)."""
    decision = Decision(
        recommendation_id=rec.id,
        user_id=user_id(session, by),
        verdict=verdict,
        reason_code="other",
        created_at=NOW - timedelta(minutes=2),
    )
    session.add(decision)
    if verdict in ("accept", "approve"):
        rec.state = "accepted"
    session.flush()
    return decision


def measure(
    session: Session, dn: str, kpi: str, values: list[float], *, end: datetime, step_min: int = 15
) -> None:
    """Store a KPI series for an element, the last value at `end`."""
    el = element(session, dn)
    kpi_id = session.scalars(select(Kpi.id).where(Kpi.name == kpi)).one()
    for i, value in enumerate(values):
        at = end - timedelta(minutes=step_min * (len(values) - 1 - i))
        session.add(Measurement(element_id=el.id, kpi_id=kpi_id, period_end=at, value=value))
    session.flush()


def audit_actions(session: Session, *, prefix: str = "automation.") -> list[str]:
    """The audit trail's actions with a prefix, oldest first."""
    rows = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.startswith(prefix))
        .order_by(AuditEvent.seq)
    )
    return list(rows)


def verify_chain(session: Session) -> None:
    assert audit.verify(session).ok
