"""Data for the trust API tests: the simulated inventory, use cases, on-call, recommendations."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.automation.use_cases import assign_owners, ensure_use_cases
from services.db import Database
from services.db.models import Element, MaturityChange, Recommendation, UseCase, utcnow
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources, register_topology

CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
CELL_2 = "SubNetwork=South,ManagedElement=SITE-0002,EUtranCellFDD=C1"


def seed_trust(db: Database, *, now: datetime | None = None) -> None:
    """A one-site-per-region network, the seeded use cases and the demo on-call teams."""
    now = now or utcnow()
    simulator = NetworkSimulator(
        SimConfig(start=pd.Timestamp("2026-11-01", tz="UTC"), sites_per_region=1)
    )
    with db.session(write=True) as session:
        ensure_simulator_sources(session)
        register_topology(session, simulator.topology)
        ensure_use_cases(session, now=now - timedelta(days=60))
        seed_demo_oncall(session, now=now)
        assign_owners(session)  # the teams exist only now


def use_case_id(session: Session, key: str) -> int:
    return session.scalars(select(UseCase.id).where(UseCase.key == key)).one()


def add_recommendation(
    db: Database,
    key: str = "capacity_carrier_add",
    *,
    dn: str = CELL,
    severity: str = "minor",
    confidence: float = 0.9,
    state: str = "open",
    simulated: bool = False,
) -> int:
    """A recommendation of a use case on an element, as the recommender stores them."""
    now = utcnow()
    with db.session(write=True) as session:
        case = session.scalars(select(UseCase).where(UseCase.key == key)).one()
        element = session.scalars(select(Element).where(Element.dn == dn)).one()
        rec = Recommendation(
            use_case_id=case.id,
            element_id=element.id,
            action=case.action,
            parameters={"element_dn": dn},
            rationale=f"{case.action} looks right for {element.name}",
            explanation={"element": {"dn": dn, "name": element.name}, "kpi": "prb_util_dl"},
            confidence=confidence,
            severity=severity,
            expected_impact="Less congestion",
            blast_radius_cells=1,
            blast_radius_users=40,
            rollback_plan={"text": "close the ticket"},
            maturity_level=case.maturity_level,
            state=state,
            simulated=simulated,
            created_at=now - timedelta(minutes=5),
            expires_at=now + timedelta(hours=2),
        )
        session.add(rec)
        session.flush()
        return rec.id


def propose(db: Database, key: str = "transport_link_reroute") -> int:
    """A proposed promotion one level up, as the maturity job writes it."""
    with db.session(write=True) as session:
        case = session.scalars(select(UseCase).where(UseCase.key == key)).one()
        change = MaturityChange(
            use_case_id=case.id,
            from_level=case.maturity_level,
            to_level=case.maturity_level + 1,
            kind="promotion",
            status="proposed",
            reason="every criterion holds",
            evidence={"metrics": {"decisions": 40}},
            proposed_at=utcnow(),
        )
        session.add(change)
        session.flush()
        return change.id
