"""Data for the recommendation and use-case page tests, made through the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from sqlalchemy import select

from services.automation.use_cases import assign_owners, ensure_use_cases
from services.db import Database
from services.db.models import Element, MaturityChange, UseCase, utcnow
from services.decisions import recommend
from services.decisions.demo import backfill_history
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources, register_topology

CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
CELL_2 = "SubNetwork=South,ManagedElement=SITE-0002,EUtranCellFDD=C1"
CELL_3 = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C2"


@dataclass(frozen=True)
class TrustSample:
    """Live recommendations: a minor ticket, a major ticket (two people), a simulated LB change."""

    ticket: int
    major: int
    simulated: int


def seed_network(db: Database, *, history_weeks: int = 0) -> None:
    """Inventory, use cases with owners, demo on-call, and optionally simulated history."""
    now = utcnow()
    simulator = NetworkSimulator(
        SimConfig(start=pd.Timestamp("2026-11-01", tz="UTC"), sites_per_region=1)
    )
    with db.session(write=True) as session:
        ensure_simulator_sources(session)
        register_topology(session, simulator.topology)
        ensure_use_cases(session, now=now - timedelta(days=60))
        seed_demo_oncall(session, now=now)
        assign_owners(session)
        if history_weeks:
            backfill_history(session, now=now, weeks=history_weeks)


def raise_sample(db: Database) -> TrustSample:
    """Three live recommendations raised the way the recommender raises them."""
    now = utcnow()
    ids = []
    with db.session(write=True) as session:
        for key, dn, severity, simulated in (
            ("capacity_carrier_add", CELL, "minor", False),
            ("capacity_carrier_add", CELL_2, "major", False),
            ("cell_congestion_lb", CELL_3, "minor", True),
        ):
            case = session.scalars(select(UseCase).where(UseCase.key == key)).one()
            element = session.scalars(select(Element).where(Element.dn == dn)).one()
            rec = recommend.create_recommendation(
                session,
                case=case,
                element=element,
                now=now,
                simulated=simulated,
                confidence=0.91,
                severity=severity,
                rationale=f"prb_util_dl on {element.name} is forecast to cross 85 within weeks.",
                explanation={
                    "source": {"kind": "forecast", "id": 1},
                    "kpi": "prb_util_dl",
                    "p_breach": {"30": 0.4, "60": 0.7, "90": 0.91},
                    "data_quality": {"text": "Complete daily history."},
                },
                context={"kpi": "prb_util_dl", "breach_date": None},
            )
            ids.append(rec.id)
    return TrustSample(*ids)


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
            reason="40 decisions, 90% accepted, precision 92%: every criterion holds.",
            evidence={},
            proposed_at=utcnow(),
        )
        session.add(change)
        session.flush()
        return change.id
